/** The training-step workloads of the benchmark: a tiny RetinaNet-shaped conv net and an MLP, one optimiser step each, focalgrad against PyTorch. */

import {
  abs,
  add,
  div,
  Generator,
  logSoftmax,
  mean,
  mul,
  neg,
  nn,
  optim,
  relu,
  sub,
  sum,
  type Tensor,
  tensor,
} from "@focalgrad/core";
import { sigmoidFocalLoss } from "@focalgrad/losses";
import type { Check } from "./checks.js";
import { pytorchImplementation } from "./pytorch.js";
import type { Case, Implementation, ImplName, Prepared, RunOptions } from "./run.js";
import { isFocalgrad, withSetting } from "./settings.js";

export type TrainingWorkload = "trainstep" | "mlp";

/** A net as a list of parameters (in PyTorch's registration order) and its loss on fixed data. */
interface Net {
  params: Tensor[];
  loss(): Tensor;
  /** The data in PyTorch's argument order, for the reference script. */
  inputs: { data: number[]; shape: number[]; dtype: "float32" | "int64" }[];
  scalars: number[];
}

function seeded(shape: number[], gen: Generator, low = -1, high = 1): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = gen.uniform(low, high);
  return tensor(data, { shape, dtype: "float32" });
}

const asInput = (t: Tensor) => ({
  data: Array.from(t.data),
  shape: [...t.shape],
  dtype: "float32" as const,
});

/**
 * The tiny RetinaNet-shaped net: B 16, 64 × 64 RGB, 3 × 3 convs 3→16→32→64 each followed
 * by ReLU and a 2 × 2 max-pool, then at stride 8 two heads, conv 64→64, ReLU, conv 64→9 (class
 * logits) and 64→12 (box offsets); sigmoid focal loss (α 0.25, γ 2, summed over the positives)
 * plus the mean L1 distance of the boxes.
 */
function trainstepNet(): Net {
  const gen = new Generator(11);
  const conv = (cin: number, cout: number) =>
    new nn.Conv2d(cin, cout, 3, { padding: 1, generator: gen });
  const backbone = [conv(3, 16), conv(16, 32), conv(32, 64)];
  const cls = [conv(64, 64), conv(64, 9)];
  const box = [conv(64, 64), conv(64, 12)];
  const x = seeded([16, 3, 64, 64], gen);
  const clsTarget = Float32Array.from(seeded([16, 9, 8, 8], gen).data, (v) => (v > 0.96 ? 1 : 0));
  const positives = clsTarget.reduce((a, b) => a + b, 0);
  const clsTargets = tensor(clsTarget, { shape: [16, 9, 8, 8], dtype: "float32" });
  const boxTargets = seeded([16, 12, 8, 8], gen);
  const pool = new nn.MaxPool2d({ kernelSize: 2 });
  const head = ([hidden, out]: nn.Conv2d[], f: Tensor) => out.forward(relu(hidden.forward(f)));
  return {
    params: [...backbone, ...cls, ...box].flatMap((c) => [c.weight, c.bias!]),
    loss: () => {
      let f = x;
      for (const c of backbone) f = pool.forward(relu(c.forward(f)));
      const focal = sigmoidFocalLoss(head(cls, f), clsTargets, {
        alpha: 0.25,
        gamma: 2,
        reduction: "sum",
      });
      return add(div(focal, positives), mean(abs(sub(head(box, f), boxTargets))));
    },
    inputs: [asInput(x), asInput(clsTargets), asInput(boxTargets)],
    scalars: [positives],
  };
}

/** MLP 784→256→10 with ReLU, batch 64, softmax cross-entropy against integer labels. */
function mlpNet(): Net {
  const gen = new Generator(12);
  const hidden = new nn.Linear(784, 256, { generator: gen });
  const out = new nn.Linear(256, 10, { generator: gen });
  const x = seeded([64, 784], gen, 0, 1);
  const labels = Array.from({ length: 64 }, () => Math.floor(gen.uniform(0, 10)));
  const oneHot = new Float32Array(64 * 10);
  labels.forEach((label, i) => {
    oneHot[i * 10 + label] = 1;
  });
  const targets = tensor(oneHot, { shape: [64, 10], dtype: "float32" });
  return {
    params: [hidden.weight, hidden.bias!, out.weight, out.bias!],
    loss: () => {
      const logits = out.forward(relu(hidden.forward(x)));
      return div(neg(sum(mul(targets, logSoftmax(logits, 1)))), 64);
    },
    inputs: [asInput(x), { data: labels, shape: [64], dtype: "int64" }],
    scalars: [],
  };
}

const NETS: Record<TrainingWorkload, () => Net> = { trainstep: trainstepNet, mlp: mlpNet };

function stepChecks(loss: number, gradAbs: number): Check[] {
  return [
    { label: "loss", value: loss, rtol: 1e-4 },
    { label: "sum |grad|", value: gradAbs, rtol: 1e-3 },
  ];
}

/** zeroGrad, loss, backward, Adam step (lr 1e-3); returns the loss and Σ|grad| over the parameters. */
function focalgradTraining(workload: TrainingWorkload): Implementation {
  return {
    name: "focalgrad",
    prepare: async () => {
      const net = NETS[workload]();
      for (const p of net.params) p.requiresGrad = true;
      const opt = new optim.Adam(net.params, { lr: 1e-3 });
      const step = (probe: () => void) => {
        opt.zeroGrad();
        const loss = net.loss();
        probe();
        loss.backward();
        probe();
        let gradAbs = 0;
        for (const p of net.params) for (const g of p.grad!.data) gradAbs += Math.abs(g);
        opt.step();
        return stepChecks(loss.item(), gradAbs);
      };
      return {
        run: () => {
          opt.zeroGrad();
          net.loss().backward();
          opt.step();
        },
        check: (probe) => step(probe),
        dispose: () => {},
      } satisfies Prepared;
    },
  };
}

/** The same net, weights and data in PyTorch (`pytorch.py`), timed by the script itself. */
function pytorchTraining(
  workload: TrainingWorkload,
  threads: 1 | 2,
  options: RunOptions,
): Implementation {
  return pytorchImplementation(
    threads,
    options,
    () => {
      const net = NETS[workload]();
      return {
        workload,
        params: net.params.map((p) => Array.from(p.data)),
        inputs: net.inputs,
        scalars: net.scalars,
      };
    },
    (result) => stepChecks(result.loss, result.gradAbs ?? Number.NaN),
  );
}

/**
 * One optimiser step of `workload` for the chosen implementations (focalgrad's first: the
 * reference of the cross-check, on the loss and Σ|grad| of the first step from the same weights).
 *
 * @example
 * const c = trainingCase("mlp", ["focalgrad", "pytorch-1t"], options);
 */
export function trainingCase(
  workload: TrainingWorkload,
  impls: readonly ImplName[],
  options: RunOptions,
): Case {
  const implementations: Implementation[] = [];
  for (const name of impls) {
    if (isFocalgrad(name)) implementations.push(withSetting(name, focalgradTraining(workload)));
    else if (name === "pytorch-1t") implementations.push(pytorchTraining(workload, 1, options));
    else if (name === "pytorch-2t") implementations.push(pytorchTraining(workload, 2, options));
  }
  return {
    workload,
    pass: "step",
    reference: implementations[0]?.name ?? "focalgrad",
    ratioToReference: false,
    implementations,
  };
}
