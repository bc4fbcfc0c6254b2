/** The dense workloads of the benchmark: matmul and conv2d, forward and forward + backward, focalgrad vs tfjs. */

import { conv2d, Generator, matmul, type Tensor, tensor } from "@focalgrad/core";
import type * as tfTypes from "@tensorflow/tfjs";
import { type Check, checksums } from "./checks.js";
import type { Case, Implementation, ImplName, Prepared } from "./run.js";
import { isFocalgrad, withSetting } from "./settings.js";
import { loadTfjs, type TfBackend, useBackend } from "./tfjs.js";

const tolerance = 1e-3;

/** A dense op on focalgrad's layout, with how tfjs computes the same in its own layout. */
interface DenseSpec {
  workload: string;
  /** Inputs in focalgrad's layout, then the upstream gradient (shape of the output). */
  inputs: { name: string; data: Float32Array; shape: number[] }[];
  upstream: { data: Float32Array; shape: number[] };
  /** Floating-point operations of the forward pass; forward + backward counts three times as many. */
  flops: number;
  focalgrad: ((inputs: Tensor[]) => Tensor) | string;
  tfjs: {
    op: (tf: typeof tfTypes, inputs: tfTypes.Tensor[]) => tfTypes.Tensor;
    /** Permutation from focalgrad's layout to tfjs's, per input (null: same layout). */
    inputPerms: (number[] | null)[];
    /** Permutation of the output (and the upstream gradient) from focalgrad's layout to tfjs's. */
    outputPerm: number[] | null;
    /** Kernels the backward pass needs, which a backend may lack. */
    backwardKernels: string[];
  };
}

function inverse(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
}

function seeded(size: number, gen: Generator): Float32Array {
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = gen.uniform(-1, 1);
  return data;
}

function focalgradDense(spec: DenseSpec, pass: Case["pass"]): Implementation {
  return {
    name: "focalgrad",
    prepare: async () => {
      const op = spec.focalgrad;
      if (typeof op === "string") return op;
      const inputs = spec.inputs.map((x) => tensor(x.data, { shape: x.shape, dtype: "float32" }));
      const upstream = tensor(spec.upstream.data, { shape: spec.upstream.shape, dtype: "float32" });
      const iterate = (probe: () => void) => {
        if (pass === "fwd") {
          const out = op(inputs);
          probe();
          return { out, grads: [] as Tensor[] };
        }
        const leaves = inputs.map((x) => {
          const leaf = x.detach();
          leaf.requiresGrad = true;
          return leaf;
        });
        const out = op(leaves);
        probe();
        out.backward(upstream);
        probe();
        return { out, grads: leaves.map((leaf) => leaf.grad!) };
      };
      const none = () => {};
      return {
        run: () => {
          iterate(none);
        },
        check: (probe) => {
          const { out, grads } = iterate(probe);
          return [
            ...checksums("out", out.read(), tolerance),
            ...grads.flatMap((g, i) => checksums(`d${spec.inputs[i].name}`, g.read(), tolerance)),
          ];
        },
        dispose: () => {},
      } satisfies Prepared;
    },
  };
}

function tfjsDense(spec: DenseSpec, pass: Case["pass"], backend: TfBackend): Implementation {
  return {
    name: `tfjs-${backend}` as ImplName,
    prepare: async () => {
      const tf = await loadTfjs();
      const activate = () => useBackend(tf, backend);
      await activate();
      const missing =
        pass === "fwd+bwd"
          ? spec.tfjs.backwardKernels.filter((k) => tf.getKernel(k, backend) === undefined)
          : [];
      if (missing.length > 0) {
        return `tfjs has no ${missing.join(" or ")} kernel on its ${backend} backend, so no gradient`;
      }
      const toTf = (data: Float32Array, shape: number[], perm: number[] | null) =>
        tf.tidy(() => {
          const t = tf.tensor(data, shape, "float32");
          return perm === null ? t : tf.transpose(t, perm);
        });
      const inputs = spec.inputs.map((x, i) => toTf(x.data, x.shape, spec.tfjs.inputPerms[i]));
      const upstream = toTf(spec.upstream.data, spec.upstream.shape, spec.tfjs.outputPerm);
      const op = (...xs: tfTypes.Tensor[]) => spec.tfjs.op(tf, xs);
      const valueAndGrads = tf.valueAndGrads(op);
      const iterate = (probe: () => void): tfTypes.Tensor[] => {
        if (pass === "fwd") {
          const out = op(...inputs);
          probe();
          return [out];
        }
        const { value, grads } = valueAndGrads(inputs, upstream);
        probe();
        return [value, ...grads];
      };
      // Results back in focalgrad's layout, so that every checksum compares like with like.
      const toReference = (t: tfTypes.Tensor, perm: number[] | null) =>
        (perm === null ? t : tf.transpose(t, inverse(perm))).dataSync();
      let peak = 0;
      return {
        activate,
        run: () => {
          tf.tidy(() => {
            iterate(() => {});
          });
        },
        check: async (probe) => {
          const start = tf.memory().numBytes;
          let result: Check[] = [];
          const profile = await tf.profile(() => {
            tf.tidy(() => {
              const [out, ...grads] = iterate(probe);
              result = [
                ...checksums("out", toReference(out, spec.tfjs.outputPerm), tolerance),
                ...grads.flatMap((g, i) =>
                  checksums(
                    `d${spec.inputs[i].name}`,
                    toReference(g, spec.tfjs.inputPerms[i]),
                    tolerance,
                  ),
                ),
              ];
            });
          });
          peak = profile.peakBytes - start;
          return result;
        },
        trackedPeakBytes: () => peak,
        dispose: () => {
          for (const t of [...inputs, upstream]) t.dispose();
        },
      } satisfies Prepared;
    },
  };
}

function denseCase(spec: DenseSpec, pass: Case["pass"], impls: readonly ImplName[]): Case {
  const implementations: Implementation[] = [];
  for (const name of impls) {
    if (isFocalgrad(name)) implementations.push(withSetting(name, focalgradDense(spec, pass)));
    else if (name === "tfjs-cpu") implementations.push(tfjsDense(spec, pass, "cpu"));
    else if (name === "tfjs-wasm") implementations.push(tfjsDense(spec, pass, "wasm"));
  }
  return {
    workload: spec.workload,
    pass,
    flops: pass === "fwd" ? spec.flops : 3 * spec.flops,
    reference: implementations[0]?.name ?? "focalgrad",
    ratioToReference: false,
    implementations,
  };
}

/**
 * `matmul` of two seeded `size × size` float32 matrices, forward (2·n³ flops) or forward and the
 * gradients of both operands for a seeded upstream gradient (3 × as many).
 *
 * @example
 * const c = matmulCase(256, "fwd+bwd", ["focalgrad", "tfjs-wasm"]);
 */
export function matmulCase(size: number, pass: Case["pass"], impls: readonly ImplName[]): Case {
  const gen = new Generator(size);
  const shape = [size, size];
  const spec: DenseSpec = {
    workload: `matmul${size}`,
    inputs: [
      { name: "a", data: seeded(size * size, gen), shape },
      { name: "b", data: seeded(size * size, gen), shape },
    ],
    upstream: { data: seeded(size * size, gen), shape },
    flops: 2 * size * size * size,
    focalgrad: ([a, b]) => matmul(a, b),
    tfjs: {
      op: (tf, [a, b]) => tf.matMul(a, b),
      inputPerms: [null, null],
      outputPerm: null,
      backwardKernels: [],
    },
  };
  return denseCase(spec, pass, impls);
}

/** Sizes of the conv2d workload: one 3 × 3 layer of a small detector's FPN head (B = 8, the size the dense kernels are held to). */
export const CONV2D = { batch: 8, channels: 32, height: 64, width: 64, filters: 32, kernel: 3 };

/**
 * `conv2d(x, w, { padding: "same" })` of `@focalgrad/core` (NCHW, w `[Cout, Cin, kh, kw]`) against
 * tfjs's `conv2d` on the same numbers in NHWC (filter `[kh, kw, Cin, Cout]`); flops
 * 2·B·Cout·H·W·Cin·kh·kw forward, 3 × as many forward + backward.
 *
 * @example
 * const c = conv2dCase("fwd", ["focalgrad", "tfjs-cpu"]);
 */
export function conv2dCase(
  pass: Case["pass"],
  impls: readonly ImplName[],
  sizes: typeof CONV2D = CONV2D,
): Case {
  const { batch, channels, height, width, filters, kernel } = sizes;
  const gen = new Generator(3);
  const spec: DenseSpec = {
    workload: "conv2d",
    inputs: [
      {
        name: "x",
        data: seeded(batch * channels * height * width, gen),
        shape: [batch, channels, height, width],
      },
      {
        name: "w",
        data: seeded(filters * channels * kernel * kernel, gen).map((v) => v / kernel),
        shape: [filters, channels, kernel, kernel],
      },
    ],
    upstream: {
      data: seeded(batch * filters * height * width, gen),
      shape: [batch, filters, height, width],
    },
    flops: 2 * batch * filters * height * width * channels * kernel * kernel,
    focalgrad: ([x, w]) => conv2d(x, w, { padding: "same" }),
    tfjs: {
      op: (tf, [x, w]) => tf.conv2d(x as tfTypes.Tensor4D, w as tfTypes.Tensor4D, 1, "same"),
      inputPerms: [
        [0, 2, 3, 1],
        [2, 3, 1, 0],
      ],
      outputPerm: [0, 2, 3, 1],
      backwardKernels: ["Conv2DBackpropInput", "Conv2DBackpropFilter"],
    },
  };
  return denseCase(spec, pass, impls);
}
