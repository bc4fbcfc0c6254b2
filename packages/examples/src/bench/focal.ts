/** The focal loss workloads of the benchmark and their implementations: focalgrad, the fused loop, tfjs. */

import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { focal } from "@focalgrad/losses";
import type * as tfTypes from "@tensorflow/tfjs";
import { type AnchorBatch, syntheticAnchorBatch } from "../data/anchors.js";
import { fusedFocal, fusedFocalInto } from "../fused/focal.js";
import { FusedFocalThreads } from "../fused/threads.js";
import { type Check, checksums } from "./checks.js";
import { pytorchImplementation } from "./pytorch.js";
import type { Case, Implementation, ImplName, Prepared, RunOptions } from "./run.js";
import { isFocalgrad, withSetting } from "./settings.js";
import { loadTfjs, type TfBackend, tfjsFocal, useBackend } from "./tfjs.js";

/** A focal workload: the anchor tensors of a real detector's classification head. */
export interface FocalWorkload {
  name: string;
  batch: number;
  anchors: number;
  classes: number;
  description: string;
}

export const FOCAL_WORKLOADS: readonly FocalWorkload[] = [
  {
    name: "voc512",
    batch: 8,
    anchors: 49_104,
    classes: 20,
    description: "RetinaNet 512 px, 9 anchors per location over P3–P7, Pascal VOC",
  },
  {
    name: "coco800",
    batch: 2,
    anchors: 120_087,
    classes: 80,
    description: "RetinaNet 800 px, COCO",
  },
];

const focalOptions = { alpha: 0.25, gamma: 2 };
const lossTolerance = 1e-4;
const gradTolerance = 1e-3;

/** The seed's loss as `@focalgrad/losses` exports it. */
export type FocalFactory = typeof focal;

function focalChecks(loss: number, grad: ArrayLike<number>): Check[] {
  return [
    { label: "loss", value: loss, rtol: lossTolerance },
    ...checksums("grad", grad, gradTolerance),
  ];
}

/** The hand-fused loop: loss and gradient in one pass, into a gradient array kept between runs. */
export function fusedImplementation(batch: AnchorBatch): Implementation {
  return {
    name: "fused",
    prepare: async () => {
      // Timed runs write into one gradient array, as a training step that keeps its gradient
      // buffer would: the loop's own work, without page-faulting a fresh array every call.
      const [b, n, classes] = batch.yPred.shape;
      const grad = new Float32Array(batch.yPred.size);
      return {
        run: () => {
          fusedFocalInto(
            batch.yTrue.read(),
            batch.yPred.read(),
            grad,
            b * n,
            classes,
            focalOptions,
            "float32",
          );
        },
        check: (probe) => {
          const { loss, grad } = fusedFocal(batch.yTrue, batch.yPred, focalOptions);
          probe();
          return focalChecks(loss, grad.read());
        },
        dispose: () => {},
      };
    },
  };
}

/**
 * The hand-fused loop on `threads` worker threads (`FusedFocalThreads`), the batch copied into
 * shared memory once before timing and one shared gradient array kept between runs.
 */
export function fusedThreadsImplementation(batch: AnchorBatch, threads: number): Implementation {
  return {
    name: "fused-2t",
    prepare: async () => {
      const [b, n, classes] = batch.yPred.shape;
      const fused = new FusedFocalThreads(
        batch.yTrue.read() as Float32Array,
        batch.yPred.read() as Float32Array,
        b * n,
        classes,
        threads,
        focalOptions,
      );
      return {
        run: () => {
          fused.run();
        },
        check: (probe) => {
          const loss = fused.run();
          probe();
          return focalChecks(loss, fused.grad);
        },
        // Its shared copies of the batch and its gradient are made before timing, but held throughout.
        trackedPeakBytes: () => fused.sharedBytes,
        dispose: () => fused.close(),
      };
    },
  };
}

/** focalgrad's `focal()` forward, then `backward()` through the autodiff engine to `yPred.grad`. */
export function focalgradImplementation(
  batch: AnchorBatch,
  focal: FocalFactory | string,
): Implementation {
  return {
    name: "focalgrad",
    prepare: async () => {
      if (typeof focal === "string") return focal;
      const loss = focal(focalOptions);
      // One prediction leaf whose gradient is zeroed before each run and added into by
      // backward(), as a training loop's zeroGrad() and backward() do.
      const yPred = batch.yPred.detach();
      yPred.requiresGrad = true;
      const forwardBackward = (probe: () => void) => {
        if (yPred.grad !== null) {
          yPred.grad.write((g) => g.fill(0));
        }
        const value = loss(batch.yTrue, yPred);
        probe();
        value.backward();
        probe();
        return { loss: value.item(), grad: yPred.grad! };
      };
      const none = () => {};
      return {
        run: () => {
          forwardBackward(none);
        },
        check: (probe) => {
          const { loss: value, grad } = forwardBackward(probe);
          if (grad === null) throw new Error("focalgrad: backward() left yPred.grad empty");
          return focalChecks(value, grad.read());
        },
        dispose: () => {},
      } satisfies Prepared;
    },
  };
}

/**
 * The same loss in PyTorch (`pytorch.py`'s `focal_loss`) on `threads` threads, timed by the script:
 * the batch handed over as raw float32 files, the gradient read back for the cross-check.
 */
export function pytorchFocalImplementation(
  batch: AnchorBatch,
  threads: 1 | 2,
  options: RunOptions,
): Implementation {
  return pytorchImplementation(
    threads,
    options,
    () => ({ workload: "focal", ...focalOptions }),
    (result, grad: Float32Array) => focalChecks(result.loss, grad),
    (dir) => {
      const files: Record<string, unknown> = { gradPath: path.join(dir, "grad.f32") };
      for (const [name, t] of [
        ["yTrue", batch.yTrue],
        ["yPred", batch.yPred],
      ] as const) {
        const file = path.join(dir, `${name}.f32`);
        writeFileSync(file, t.read() as Float32Array);
        files[`${name}Path`] = file;
        files[`${name}Shape`] = [...t.shape];
      }
      return files;
    },
    (dir) => {
      const bytes = readFileSync(path.join(dir, "grad.f32"));
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    },
  );
}

/**
 * What tfjs holds at the peak of this loss's forward and backward pass, over the bytes of `yPred`:
 * every forward intermediate stays alive until the gradient is done (`tf.profile` measures 65 ×
 * on voc512, at B = 1 and B = 8 alike).
 */
const tfjsPeakOverPrediction = 65;
/** The wasm backend's heap is a 32-bit WebAssembly memory: at most 4 GiB, then it aborts. */
const wasmHeapMax = 4 * 2 ** 30;

/** The same loss in TensorFlow.js on `backend`, through `tf.valueAndGrad`, inside `tf.tidy`. */
export function tfjsImplementation(batch: AnchorBatch, backend: TfBackend): Implementation {
  return {
    name: `tfjs-${backend}` as ImplName,
    prepare: async () => {
      const needed = tfjsPeakOverPrediction * batch.yPred.read().byteLength;
      if (backend === "wasm" && needed > wasmHeapMax) {
        return `needs ~${(needed / 2 ** 30).toFixed(1)} GiB at its peak (${tfjsPeakOverPrediction} × yPred), beyond the wasm backend's 4 GiB heap (it aborts)`;
      }
      const tf = await loadTfjs();
      const activate = () => useBackend(tf, backend);
      await activate();
      const yTrue = tf.tensor(
        batch.yTrue.read() as Float32Array,
        [...batch.yTrue.shape],
        "float32",
      );
      const yPred = tf.tensor(
        batch.yPred.read() as Float32Array,
        [...batch.yPred.shape],
        "float32",
      );
      const loss = tfjsFocal(tf, focalOptions);
      const valueAndGrad = tf.valueAndGrad((p: tfTypes.Tensor) => loss(yTrue, p));
      let peak = 0;
      return {
        activate,
        run: () => {
          tf.tidy(() => {
            const { value } = valueAndGrad(yPred);
            value.dataSync();
          });
        },
        check: async (probe) => {
          const start = tf.memory().numBytes;
          let result: Check[] = [];
          const profile = await tf.profile(() => {
            tf.tidy(() => {
              const { value, grad } = valueAndGrad(yPred);
              probe();
              result = focalChecks(value.dataSync()[0], grad.dataSync());
            });
          });
          peak = profile.peakBytes - start;
          return result;
        },
        trackedPeakBytes: () => peak,
        dispose: () => {
          yTrue.dispose();
          yPred.dispose();
        },
      } satisfies Prepared;
    },
  };
}

/**
 * The focal case of `workload` for the chosen implementations; the fused loop always runs, as the
 * unit of the ratios and the reference of the cross-check. `focal` is `focal` of
 * `@focalgrad/losses`, or why it is missing (the focalgrad row is then skipped with that reason).
 * `options.batch` overrides the workload's batch size (the workload is then named with it).
 *
 * @example
 * const c = focalCase(FOCAL_WORKLOADS[0], ["focalgrad", "tfjs-wasm"], focal);
 * const rows = await runCase(c, { warmup: 3, iterations: 20, maxSeconds: 15 });
 */
export function focalCase(
  workload: FocalWorkload,
  impls: readonly ImplName[],
  focal: FocalFactory | string,
  options: { batch?: number; seed?: number; timing?: RunOptions } = {},
): Case {
  const images = options.batch ?? workload.batch;
  const batch = syntheticAnchorBatch({
    batch: images,
    anchors: workload.anchors,
    classes: workload.classes,
    objectFraction: 0.01,
    ignoredFraction: 0.02,
    seed: options.seed ?? 2017,
    dtype: "float32",
  });
  const implementations: Implementation[] = [fusedImplementation(batch)];
  const timing = options.timing ?? { warmup: 1, iterations: 5, maxSeconds: 10 };
  for (const name of impls) {
    if (isFocalgrad(name)) {
      implementations.push(withSetting(name, focalgradImplementation(batch, focal)));
    } else if (name === "pytorch-1t" || name === "pytorch-2t") {
      implementations.push(
        pytorchFocalImplementation(batch, name === "pytorch-1t" ? 1 : 2, timing),
      );
    } else if (name === "fused-2t") implementations.push(fusedThreadsImplementation(batch, 2));
    else if (name === "tfjs-cpu") implementations.push(tfjsImplementation(batch, "cpu"));
    else if (name === "tfjs-wasm") implementations.push(tfjsImplementation(batch, "wasm"));
  }
  return {
    workload: images === workload.batch ? workload.name : `${workload.name} (B=${images})`,
    pass: "fwd+bwd",
    predictionBytes: batch.yPred.read().byteLength,
    reference: "fused",
    ratioToReference: true,
    implementations,
  };
}
