/** Reductions over axes (`sum mean max min logSumExp`) and the max-shifted `softmax`/`logSoftmax`. */

import { allocate, type DType, isFloat } from "../dtype.js";
import { getBackend } from "../kernels/backend.js";
import type { ReduceKind } from "../kernels/reduce.js";
import { deferredSum, sumPending } from "../lazy/index.js";
import { formatShape, normalizeAxes, normalizeAxis, type Shape, sizeOf } from "../shape.js";
import { isGradEnabled, record } from "../tape.js";
import { Tensor } from "../tensor.js";
import { add, div, mul, sub } from "./arithmetic.js";
import { cast } from "./cast.js";
import { equal } from "./compare.js";
import { exp, log } from "./math.js";
import { broadcastTo, permute, reshape } from "./shape.js";
import { checkFloat, checkNumeric, checkOptions, checkTensor, describeValue } from "./util.js";

/** Options of the reductions (`sum`, `mean`, `max`, `min`, `logSumExp`): which axes, and whether to keep them. */
export interface ReduceOptions {
  /** The axis or axes to reduce (negative counts from the end); default: all. */
  axis?: number | readonly number[];
  /** Keep reduced axes with size 1, so the result broadcasts against the input. */
  keepdims?: boolean;
}

const reduceOptions = { axis: "axes", keepdims: "boolean" } as const;

/** The validated options of a reduction and its normalised axes. */
function reduction(
  op: string,
  x: Tensor,
  options: ReduceOptions | undefined,
): { axes: number[]; keepdims: boolean } {
  const { axis, keepdims = false } = checkOptions(op, options, reduceOptions);
  return { axes: normalizeAxes(op, axis, x.rank), keepdims };
}

/** The shape with reduced axes kept as 1. */
function keptShape(shape: Shape, axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function resultShape(shape: Shape, axes: readonly number[], keepdims: boolean): number[] {
  return keepdims ? keptShape(shape, axes) : shape.filter((_, i) => !axes.includes(i));
}

/** Runs a reduction kernel; reorders the axes first when the reduced ones are not one block. */
function runReduce(
  kind: ReduceKind,
  x: Tensor,
  axes: readonly number[],
  dtype: DType,
): Tensor["data"] {
  const out = allocate(dtype, sizeOf(keptShape(x.shape, axes)));
  const live = x.shape.flatMap((d, i) => (d === 1 ? [] : [i]));
  const reducedLive = live.filter((i) => axes.includes(i));
  const first = live.indexOf(reducedLive[0]);
  const contiguous = reducedLive.every((a, k) => live[first + k] === a);
  if (reducedLive.length === 0 || contiguous) {
    const before = reducedLive.length === 0 ? x.rank : reducedLive[0];
    const after = reducedLive.length === 0 ? x.rank : reducedLive[reducedLive.length - 1] + 1;
    const outer = sizeOf(x.shape.slice(0, before));
    const length = sizeOf(x.shape.slice(before, after));
    getBackend().reduce(kind, x.read(), outer, length, sizeOf(x.shape.slice(after)), out);
  } else {
    const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
    const moved = permute(x, [...kept, ...axes]);
    const outer = sizeOf(kept.map((i) => x.shape[i]));
    getBackend().reduce(kind, moved.read(), outer, x.size / Math.max(outer, 1), 1, out);
  }
  return out;
}

/** The gradient of a reduction, `g`, spread back over the input's shape. */
function spread(g: Tensor, shape: Shape, axes: readonly number[]): Tensor {
  return broadcastTo(reshape(g, keptShape(shape, axes)), shape);
}

/**
 * Sum over `axis` (default all). Floats keep their dtype (accumulated in double precision);
 * int32 and bool sum to int32.
 *
 * @example
 * sum(tensor([[1, 2], [3, 4]]), { axis: 0 }); // [4, 6]
 */
export function sum(x: Tensor, options?: ReduceOptions): Tensor {
  checkTensor("sum", "x", x);
  const { axes, keepdims } = reduction("sum", x, options);
  const dtype: DType = x.dtype === "bool" ? "int32" : x.dtype;
  const shape = resultShape(x.shape, axes, keepdims);
  const full = axes.length === x.rank;
  // A full sum of a pending elementwise result runs its program inside the reduction loop. When it
  // will be differentiated, it waits: the backward pass then computes it in its own loop over the
  // same elements, which recomputes the same intermediate values anyway.
  const deferred = full && x.requiresGrad && isGradEnabled() ? deferredSum(x, shape, dtype) : null;
  const out = deferred ?? new Tensor(summed(x, axes, dtype, full), shape, dtype);
  return record("sum", out, [x], [(g) => spread(g, x.shape, axes)], [[]], { axes, keepdims });
}

/** The data of a sum computed now: inside a pending program's own loop when it can be. */
function summed(x: Tensor, axes: readonly number[], dtype: DType, full: boolean): Tensor["data"] {
  // int32 sums wrap step by step in the kernel; a fused loop's double total could round first.
  const total = full && x.dtype !== "int32" ? sumPending(x) : null;
  if (total === null) return runReduce("sum", x, axes, dtype);
  const data = allocate(dtype, 1);
  data[0] = total;
  return data;
}

/**
 * Mean over `axis` (default all); floats only. The mean of no elements is NaN (0 / 0, as in
 * PyTorch and NumPy).
 *
 * @example
 * mean(tensor([1, 2, 3, 4])); // 2.5
 */
export function mean(x: Tensor, options?: ReduceOptions): Tensor {
  checkFloat("mean", "x", x);
  const { axes, keepdims } = reduction("mean", x, options);
  const count = sizeOf(axes.map((a) => x.shape[a]));
  return div(sum(x, { axis: axes, keepdims }), count);
}

function extremum(op: "max" | "min", x: Tensor, options: ReduceOptions | undefined): Tensor {
  checkNumeric(op, "x", x);
  const { axes, keepdims } = reduction(op, x, options);
  // An empty reduction has no maximum: an error, as in PyTorch (NumPy too), not -Infinity.
  for (const a of axes) {
    if (x.shape[a] === 0)
      throw new Error(
        `${op}: cannot reduce axis ${a} of size 0 (shape ${formatShape(x.shape)}): an empty set has no ${op === "max" ? "maximum" : "minimum"}`,
      );
  }
  const kept = keptShape(x.shape, axes);
  const out = new Tensor(
    runReduce(op, x, axes, x.dtype),
    resultShape(x.shape, axes, keepdims),
    x.dtype,
  );
  return record(
    op,
    out,
    [x],
    [
      (g) => {
        // Ties share the gradient evenly (tf.reduce_max, torch.amax): mask / count of winners.
        const winners = cast(equal(x, reshape(out, kept)), g.dtype);
        const share = div(winners, sum(winners, { axis: axes, keepdims: true }));
        return mul(spread(g, x.shape, axes), share);
      },
    ],
  );
}

/**
 * Maximum over `axis` (default all). Where several elements tie for the maximum, the gradient is
 * shared evenly among them (as `tf.reduce_max` and `torch.amax`). NaN propagates.
 *
 * @example
 * max(tensor([[1, 5], [7, 2]]), { axis: 1 }); // [5, 7]
 */
export function max(x: Tensor, options?: ReduceOptions): Tensor {
  return extremum("max", x, options);
}

/** Minimum over `axis` (default all); ties share the gradient evenly, as in `max`. @example min(x, { axis: -1 }) */
export function min(x: Tensor, options?: ReduceOptions): Tensor {
  return extremum("min", x, options);
}

/**
 * `x − m` and `m` for a max-shifted reduction over `axes`: `m` is the maximum of each reduced
 * group (kept as size 1), detached (it cancels in the gradient), with infinite maxima replaced by
 * 0 so that the shift itself never makes ∞ − ∞; an empty group has shift 0.
 */
function shifted(x: Tensor, axes: readonly number[]): { centred: Tensor; shift: Tensor } {
  const kept = keptShape(x.shape, axes);
  const groupSize = sizeOf(axes.map((a) => x.shape[a]));
  let shiftData: Tensor["data"];
  if (groupSize === 0 || x.size === 0) shiftData = allocate(x.dtype, sizeOf(kept));
  else {
    shiftData = runReduce("max", x, axes, x.dtype);
    for (let i = 0; i < shiftData.length; i++) {
      if (!Number.isFinite(shiftData[i])) shiftData[i] = 0;
    }
  }
  const shift = new Tensor(shiftData, kept, x.dtype);
  return { centred: sub(x, shift), shift };
}

/** `log(sum(exp(centred)))` over `axes`, kept as size 1: −∞ for an empty group. */
function logSumExpOfCentred(centred: Tensor, axes: readonly number[]): Tensor {
  return log(sum(exp(centred), { axis: axes, keepdims: true }));
}

/**
 * `log(sum(exp(x)))` over `axis`, computed max-shifted so that it neither overflows nor underflows.
 * The log-sum-exp of no elements is −∞ (as in PyTorch); NaN propagates; a +∞ element gives +∞,
 * with gradient 0 where PyTorch gives NaN (the 1 / ∞ = 0 of the logarithm's derivative is an
 * exactly-zero upstream for the exponential, see the README's gradient conventions).
 *
 * @example
 * logSumExp(tensor([1000, 1000])); // 1000.693…
 */
export function logSumExp(x: Tensor, options?: ReduceOptions): Tensor {
  checkFloat("logSumExp", "x", x);
  const { axes, keepdims } = reduction("logSumExp", x, options);
  const { centred, shift } = shifted(x, axes);
  const out = add(logSumExpOfCentred(centred, axes), shift);
  return keepdims ? out : reshape(out, resultShape(x.shape, axes, false));
}

function checkAxisArgument(op: string, x: Tensor, axis: unknown): number {
  if (typeof axis !== "number") {
    throw new Error(
      `${op}: axis must be an integer (the second argument, default -1), got ${describeValue(axis)}`,
    );
  }
  return normalizeAxes(op, axis, x.rank)[0];
}

/**
 * `x − logSumExp(x)` along `axis` (default the last), computed as `(x − m) − log Σ exp(x − m)`,
 * so that the log-sum-exp is never rounded at the magnitude of `x` before the subtraction:
 * float32 `logSoftmax([1e4, 1e4, 0])` is `[−0.6931472, −0.6931472, −10000.693]`. A −∞ logit has
 * log-probability −∞ and gradient 0 (a masked class); a +∞ logit, or a row of only −∞, gives NaN
 * (as in PyTorch). An empty axis gives an empty result.
 *
 * @example
 * logSoftmax(tensor([[1, 2, 3]])); // [[-2.41, -1.41, -0.41]]
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkFloat("logSoftmax", "x", x);
  const ax = checkAxisArgument("logSoftmax", x, axis);
  const { centred } = shifted(x, [ax]);
  return sub(centred, logSumExpOfCentred(centred, [ax]));
}

/**
 * `exp(x) / sum(exp(x))` along `axis` (default the last), max-shifted.
 *
 * @example
 * softmax(tensor([[1, 1]])); // [[0.5, 0.5]]
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  checkFloat("softmax", "x", x);
  checkAxisArgument("softmax", x, axis);
  return exp(logSoftmax(x, axis));
}

/** Options of `argmax` and `argmin`: the axis (default: the flattened tensor) and `keepdims`. */
export interface ArgReduceOptions {
  /** The axis to reduce (negative counts from the end); default: the flattened tensor. */
  axis?: number;
  /** Keep the reduced axis (all axes, without `axis`) with size 1. */
  keepdims?: boolean;
}

function argExtremum(
  op: string,
  kind: "max" | "min",
  x: Tensor,
  options: ArgReduceOptions,
): Tensor {
  checkNumeric(op, "x", x);
  const { axis, keepdims = false } = checkOptions(op, options, {
    axis: "axis",
    keepdims: "boolean",
  });
  // A scalar reduces along its one element, as PyTorch allows axis 0 or -1 on it.
  const shape = x.rank === 0 ? [1] : x.shape;
  const axes =
    axis === undefined ? shape.map((_, i) => i) : [normalizeAxis(op, axis, shape.length)];
  const before = axes[0];
  const after = axes[axes.length - 1] + 1;
  const length = sizeOf(shape.slice(before, after));
  if (length === 0) {
    const what = axis === undefined ? "an empty tensor" : `axis ${before} of size 0`;
    throw new Error(`${op}: cannot reduce ${what} (shape ${formatShape(x.shape)})`);
  }
  const outer = sizeOf(shape.slice(0, before));
  const inner = sizeOf(shape.slice(after));
  const out = new Int32Array(outer * inner);
  getBackend().argReduce(kind, x.read(), outer, length, inner, out);
  const outShape = x.rank === 0 ? [] : resultShape(x.shape, axes, keepdims);
  return new Tensor(out, outShape, "int32");
}

/**
 * The int32 position of the largest element along `axis` (default: of the flattened tensor), as
 * PyTorch's `argmax`: the first one where several tie, and the first NaN if there is one (NaN
 * counts as the largest). No gradient.
 *
 * @example
 * argmax(tensor([[1, 5, 5], [7, 2, 0]]), { axis: 1 }); // [1, 0]
 * argmax(tensor([[1, 5], [7, 2]]));                    // 2 (flat position of 7)
 */
export function argmax(x: Tensor, options: ArgReduceOptions = {}): Tensor {
  return argExtremum("argmax", "max", x, options);
}

/**
 * The int32 position of the smallest element along `axis` (default: of the flattened tensor), as
 * PyTorch's `argmin`: the first one where several tie, and the first NaN if there is one (NaN
 * propagates, as in `min`). No gradient.
 *
 * @example
 * argmin(tensor([[3, 1, 1], [0, 2, 0]]), { axis: 1 }); // [1, 0]
 */
export function argmin(x: Tensor, options: ArgReduceOptions = {}): Tensor {
  return argExtremum("argmin", "min", x, options);
}

/** Running sums along axis `ax` (from the end with `reverse`); each direction is the other's gradient. */
function scan(x: Tensor, ax: number, reverse: boolean): Tensor {
  const shape = x.rank === 0 ? [1] : x.shape;
  const dtype: DType = isFloat(x.dtype) ? x.dtype : "int32";
  const out = allocate(dtype, x.size);
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  getBackend().cumulativeSum(x.read(), outer, shape[ax], inner, reverse, out);
  const result = new Tensor(out, x.shape, dtype);
  return record("cumsum", result, [x], [(g) => scan(g, ax, !reverse)], [[]]);
}

/**
 * Running sums along `axis`: out[…, i, …] = x[…, 0, …] + … + x[…, i, …] (PyTorch's `cumsum`),
 * accumulated in double precision. Floats keep their dtype; int32 and bool sum to int32. The
 * gradient is the running sum of the upstream gradient taken from the other end.
 *
 * @example
 * cumsum(tensor([[1, 2, 3], [4, 5, 6]]), 1); // [[1, 3, 6], [4, 9, 15]]
 */
export function cumsum(x: Tensor, axis: number): Tensor {
  checkTensor("cumsum", "x", x);
  if (typeof axis !== "number") {
    throw new Error(`cumsum: axis must be a number (PyTorch's dim is required), got ${axis}`);
  }
  return scan(x, normalizeAxis("cumsum", axis, Math.max(x.rank, 1)), false);
}
