/** Shape ops: reshape, permute, expand and squeeze, concat and stack, slice and pad, broadcast. */

import { allocate } from "../dtype.js";
import type { Expr } from "../kernels/ir.js";
import { elementwise, lazyView, strided } from "../lazy/index.js";
import {
  broadcastShapes,
  checkShape,
  checkSize,
  formatShape,
  normalizeAxes,
  normalizeAxis,
  type Shape,
  shapesEqual,
  sizeOf,
  stridesOf,
} from "../shape.js";
import { record } from "../tape.js";
import { Tensor } from "../tensor.js";
import { checkInteger, checkOptions, checkTensor } from "./util.js";

/** The expression of a copy: each element as it is. */
const copy = (x: Expr): Expr => x;

/** @internal The same tensor as a new graph node: how `grad` watches an argument. */
export function identity(x: Tensor): Tensor {
  const out = x.view(x.shape);
  return record("identity", out, [x], [(g) => g], [[]]);
}

/**
 * The same elements in a new shape; one size may be -1 and is inferred. Shares `data` (no copy).
 *
 * @example
 * reshape(arange(6), [2, -1]); // shape [2, 3]
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  checkTensor("reshape", "x", x);
  const inferred = shape.indexOf(-1);
  if (shape.some((d, i) => !Number.isInteger(d) || d < -1 || (d === -1 && i !== inferred))) {
    throw new Error(
      `reshape: shape ${formatShape(shape)} must hold non-negative integers and at most one -1`,
    );
  }
  const target = [...shape];
  if (inferred >= 0) {
    const known = sizeOf(shape.filter((_, i) => i !== inferred));
    if (known === 0 || x.size % known !== 0) {
      throw new Error(
        `reshape: cannot infer the -1 in ${formatShape(shape)} for ${x.size} elements`,
      );
    }
    target[inferred] = x.size / known;
  }
  checkSize("reshape", target); // an empty tensor may not take an axis beyond the limit either
  if (sizeOf(target) !== x.size) {
    throw new Error(
      `reshape: cannot reshape ${formatShape(x.shape)} (${x.size} elements) into ${formatShape(shape)} (${sizeOf(target)})`,
    );
  }
  if (shapesEqual(target, x.shape)) return x;
  const out = x.view(target);
  return record("reshape", out, [x], [(g) => reshape(g, x.shape)], [[]]);
}

/**
 * The axes of `x` reordered: axis i of the result is axis `perm[i]` of `x`.
 *
 * @example
 * permute(zeros([2, 3, 4]), [2, 0, 1]).shape; // [4, 2, 3]
 */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkTensor("permute", "x", x);
  const axes = perm.map((p) => normalizeAxis("permute", p, x.rank));
  if (axes.length !== x.rank || new Set(axes).size !== x.rank) {
    throw new Error(
      `permute: [${perm.join(", ")}] is not a permutation of the ${x.rank} axes of ${formatShape(x.shape)}`,
    );
  }
  if (axes.every((a, i) => a === i)) return x;
  const shape = axes.map((a) => x.shape[a]);
  const strides = stridesOf(x.shape);
  const out = allocate(x.dtype, x.size);
  strided(copy, out, shape, [{ data: x.read(), strides: axes.map((a) => strides[a]), offset: 0 }]);
  const inverse = new Array<number>(axes.length);
  axes.forEach((a, i) => {
    inverse[a] = i;
  });
  return record(
    "permute",
    new Tensor(out, shape, x.dtype),
    [x],
    [(g) => permute(g, inverse)],
    [[]],
    { perm: axes },
  );
}

/**
 * Swaps two axes; by default the last two (a matrix transpose, batched).
 *
 * @example
 * transpose(zeros([5, 2, 3])).shape; // [5, 3, 2]
 */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  checkTensor("transpose", "x", x);
  if (x.rank < 2 && axis0 === -2 && axis1 === -1) return x;
  const a = normalizeAxis("transpose", axis0, x.rank);
  const b = normalizeAxis("transpose", axis1, x.rank);
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/**
 * Inserts an axis of size 1 at `axis` (negative counts from the end of the result).
 *
 * @example
 * expandDims(zeros([3]), 0).shape; // [1, 3]
 */
export function expandDims(x: Tensor, axis: number): Tensor {
  checkTensor("expandDims", "x", x);
  const ax = normalizeAxis("expandDims", axis, x.rank + 1);
  return reshape(x, [...x.shape.slice(0, ax), 1, ...x.shape.slice(ax)]);
}

/**
 * Removes axes of size 1: the given ones (an error if one is not 1), or all of them.
 *
 * @example
 * squeeze(zeros([1, 3, 1])).shape;    // [3]
 * squeeze(zeros([1, 3, 1]), 0).shape; // [3, 1]
 */
export function squeeze(x: Tensor, axis?: number | readonly number[]): Tensor {
  checkTensor("squeeze", "x", x);
  const axes =
    axis === undefined
      ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : normalizeAxes("squeeze", axis, x.rank);
  for (const a of axes) {
    if (x.shape[a] !== 1)
      throw new Error(
        `squeeze: axis ${a} of ${formatShape(x.shape)} has size ${x.shape[a]}, not 1`,
      );
  }
  return reshape(
    x,
    x.shape.filter((_, i) => !axes.includes(i)),
  );
}

/**
 * `x` broadcast to `shape` (NumPy rules), as a new tensor.
 *
 * @example
 * broadcastTo(tensor([1, 2]), [3, 2]); // [[1, 2], [1, 2], [1, 2]]
 */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  checkTensor("broadcastTo", "x", x);
  checkShape("broadcastTo", shape);
  const target = broadcastShapes("broadcastTo", x.shape, shape);
  if (!shapesEqual(target, shape)) {
    throw new Error(
      `broadcastTo: ${formatShape(x.shape)} cannot be broadcast to ${formatShape(shape)}`,
    );
  }
  if (shapesEqual(x.shape, shape)) return x;
  // An elementwise copy, so that on large shapes it fuses into its consumer instead of filling memory.
  const out = elementwise(copy, [x], shape, x.dtype);
  // The engine sums the gradient back to x's shape.
  return record("broadcastTo", out, [x], [(g) => g], [[]]);
}

/**
 * The block of `x` starting at `begin` with `size` elements per axis (TensorFlow's `slice`);
 * a size of -1 takes everything to the end of that axis.
 *
 * @example
 * slice(yTrue, [0, 0, 0], [-1, -1, 4]); // the regression targets of [B, N, 5]
 */
export function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
  checkTensor("slice", "x", x);
  if (begin.length !== x.rank || size.length !== x.rank) {
    throw new Error(
      `slice: begin [${begin.join(", ")}] and size [${size.join(", ")}] must each have one entry per axis of ${formatShape(x.shape)}`,
    );
  }
  const shape = size.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
  for (let i = 0; i < x.rank; i++) {
    if (
      !Number.isInteger(begin[i]) ||
      !Number.isInteger(shape[i]) ||
      begin[i] < 0 ||
      shape[i] < 0 ||
      begin[i] + shape[i] > x.shape[i]
    ) {
      throw new Error(
        `slice: begin ${begin[i]} with size ${size[i]} does not fit in axis ${i} of ${formatShape(x.shape)}`,
      );
    }
  }
  if (shapesEqual(shape, x.shape)) return x;
  const strides = stridesOf(x.shape);
  const offset = begin.reduce((acc, b, i) => acc + b * strides[i], 0);
  // Large slices stay lazy views, read by their consumers (a gatherNd reads the sliced tensor).
  let result = lazyView(x, shape, strides, offset);
  if (result === null) {
    const out = allocate(x.dtype, sizeOf(shape));
    strided(copy, out, shape, [{ data: x.read(), strides, offset }]);
    result = new Tensor(out, shape, x.dtype);
  }
  const padding = begin.map((b, i): [number, number] => [b, x.shape[i] - b - shape[i]]);
  return record("slice", result, [x], [(g) => pad(g, padding)], [[]], { begin });
}

/**
 * `x` surrounded by `value` (default 0): `padding[i] = [before, after]` elements on axis i.
 *
 * @example
 * pad(ones([2, 2]), [[1, 1], [0, 0]]).shape; // [4, 2]
 */
export function pad(x: Tensor, padding: readonly (readonly [number, number])[], value = 0): Tensor {
  checkTensor("pad", "x", x);
  if (padding.length !== x.rank) {
    throw new Error(
      `pad: padding needs one [before, after] pair per axis of ${formatShape(x.shape)}, got ${padding.length}`,
    );
  }
  padding.forEach(([before, after], i) => {
    checkInteger("pad", `padding[${i}][0]`, before, 0);
    checkInteger("pad", `padding[${i}][1]`, after, 0);
  });
  const shape = x.shape.map((d, i) => d + padding[i][0] + padding[i][1]);
  const out = allocate(x.dtype, checkSize("pad", shape));
  if (value !== 0) out.fill(value);
  const outStrides = stridesOf(shape);
  const offset = padding.reduce((acc, [before], i) => acc + before * outStrides[i], 0);
  // Write x into the interior by reading the interior window of `out` as the destination.
  const interior = out.subarray(offset);
  const src = x.read();
  scatterInto(interior, outStrides, x.shape, src);
  const begin = padding.map(([before]) => before);
  return record(
    "pad",
    new Tensor(out, shape, x.dtype),
    [x],
    [(g) => slice(g, begin, x.shape)],
    [[]],
    { padding: padding.flat(), value },
  );
}

/** Copies contiguous `src` of `shape` into `dest` laid out with `destStrides`. */
function scatterInto(
  dest: Tensor["data"],
  destStrides: readonly number[],
  shape: Shape,
  src: Tensor["data"],
): void {
  const rank = shape.length;
  const n = sizeOf(shape);
  if (n === 0) return;
  if (rank === 0) {
    dest[0] = src[0];
    return;
  }
  const inner = shape[rank - 1];
  const index = new Array<number>(rank).fill(0);
  let base = 0;
  for (let s = 0; s < n; s += inner) {
    dest.set(src.subarray(s, s + inner), base);
    for (let d = rank - 2; d >= 0; d--) {
      base += destStrides[d];
      if (++index[d] < shape[d]) break;
      index[d] = 0;
      base -= destStrides[d] * shape[d];
    }
  }
}

/**
 * Joins tensors along an existing axis; all other sizes and the dtypes must match.
 *
 * @example
 * concat([zeros([2, 3]), ones([1, 3])], 0).shape; // [3, 3]
 */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0)
    throw new Error("concat: expected a non-empty array of tensors");
  tensors.forEach((t, i) => {
    checkTensor("concat", `tensors[${i}]`, t);
  });
  const first = tensors[0];
  const ax = normalizeAxis("concat", axis, first.rank);
  tensors.forEach((t, i) => {
    if (t.dtype !== first.dtype) {
      throw new Error(
        `concat: tensors[${i}] is ${t.dtype} but tensors[0] is ${first.dtype}; cast them to one dtype`,
      );
    }
    if (
      t.rank !== first.rank ||
      t.shape.some((d: number, k: number) => k !== ax && d !== first.shape[k])
    ) {
      throw new Error(
        `concat: tensors[${i}] has shape ${formatShape(t.shape)}, which does not match ${formatShape(first.shape)} outside axis ${ax}`,
      );
    }
  });
  const sizes = tensors.map((t) => t.shape[ax]);
  const shape = [...first.shape];
  shape[ax] = sizes.reduce((a, b) => a + b, 0);
  const out = allocate(first.dtype, checkSize("concat", shape));
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  const rowLength = shape[ax] * inner;
  let start = 0;
  for (const t of tensors) {
    const chunk = t.shape[ax] * inner;
    for (let o = 0; o < outer; o++)
      out.set(t.read().subarray(o * chunk, (o + 1) * chunk), o * rowLength + start);
    start += chunk;
  }
  const result = new Tensor(out, shape, first.dtype);
  const begins = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  return record(
    "concat",
    result,
    tensors,
    tensors.map((t, i) => (g: Tensor) => {
      const begin = shape.map((_, k) => (k === ax ? begins[i] : 0));
      return slice(g, begin, t.shape);
    }),
    undefined,
    { axis: ax },
  );
}

/**
 * Stacks same-shaped tensors along a new axis.
 *
 * @example
 * stack([zeros([3]), ones([3])], 1).shape; // [3, 2]
 */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0)
    throw new Error("stack: expected a non-empty array of tensors");
  tensors.forEach((t, i) => {
    checkTensor("stack", `tensors[${i}]`, t);
    if (!shapesEqual(t.shape, tensors[0].shape)) {
      throw new Error(
        `stack: tensors[${i}] has shape ${formatShape(t.shape)} but tensors[0] has ${formatShape(tensors[0].shape)}`,
      );
    }
  });
  const ax = normalizeAxis("stack", axis, tensors[0].rank + 1);
  return concat(
    tensors.map((t) => expandDims(t, ax)),
    ax,
  );
}

/**
 * Coordinate grids from 1-D tensors (PyTorch's `meshgrid`): for tensors of sizes n0, n1, …, each
 * result has shape [n0, n1, …] and varies along its own axis only. `indexing: "ij"` (the default,
 * matrix indexing) as above; `"xy"` (Cartesian, NumPy's default) swaps the first two axes, so that
 * x varies along the columns. Differentiable (each result is a broadcast of its input).
 *
 * @example
 * const [ys, xs] = meshgrid([arange(2), arange(3)]); // both [2, 3]
 * xs; // [[0, 1, 2], [0, 1, 2]]
 * const [gx, gy] = meshgrid([arange(3), arange(2)], { indexing: "xy" }); // both [2, 3]
 */
export function meshgrid(
  tensors: readonly Tensor[],
  options: { indexing?: "ij" | "xy" } = {},
): Tensor[] {
  if (!Array.isArray(tensors) || tensors.length === 0) {
    throw new Error("meshgrid: expected a non-empty array of 1-D tensors");
  }
  tensors.forEach((t, i) => {
    checkTensor("meshgrid", `tensors[${i}]`, t);
    if (t.rank > 1) {
      throw new Error(
        `meshgrid: tensors[${i}] must be 1-D (or a scalar), got shape ${formatShape(t.shape)}`,
      );
    }
  });
  const { indexing = "ij" } = checkOptions("meshgrid", options, { indexing: "string" });
  if (indexing !== "ij" && indexing !== "xy") {
    throw new Error(`meshgrid: indexing must be "ij" or "xy", got ${JSON.stringify(indexing)}`);
  }
  const swap = indexing === "xy" && tensors.length >= 2;
  // Axis of the result along which tensors[i] varies.
  const axisOf = (i: number) => (swap && i < 2 ? 1 - i : i);
  const shape: number[] = [];
  tensors.forEach((t, i) => {
    shape[axisOf(i)] = t.size;
  });
  checkSize("meshgrid", shape);
  return tensors.map((t, i) =>
    broadcastTo(
      reshape(
        t,
        shape.map((d, k) => (k === axisOf(i) ? d : 1)),
      ),
      shape,
    ),
  );
}

/**
 * `x` repeated `reps[i]` times along axis i (PyTorch's `tile`, NumPy's `tile`). When `reps` is
 * shorter than x's rank it is padded with leading 1s; when longer, x gets leading axes of size 1.
 * Differentiable: the gradient sums over the copies.
 *
 * @example
 * tile(tensor([1, 2]), [2]);    // [1, 2, 1, 2]
 * tile(tensor([1, 2]), [2, 1]); // [[1, 2], [1, 2]]
 */
export function tile(x: Tensor, reps: readonly number[]): Tensor {
  checkTensor("tile", "x", x);
  if (!Array.isArray(reps)) {
    throw new Error(`tile: reps must be an array of repetition counts, got ${typeof reps}`);
  }
  reps.forEach((r, i) => {
    checkInteger("tile", `reps[${i}]`, r, 0);
  });
  const rank = Math.max(x.rank, reps.length);
  const shape = [...new Array<number>(rank - x.rank).fill(1), ...x.shape];
  const counts = [...new Array<number>(rank - reps.length).fill(1), ...reps];
  checkSize(
    "tile",
    shape.map((d, i) => d * counts[i]),
  );
  // [d0, d1, …] as [1, d0, 1, d1, …], broadcast to [r0, d0, r1, d1, …], then merged pairwise.
  const spread = reshape(
    x,
    shape.flatMap((d) => [1, d]),
  );
  const copies = broadcastTo(
    spread,
    shape.flatMap((d, i) => [counts[i], d]),
  );
  return reshape(
    copies,
    shape.map((d, i) => d * counts[i]),
  );
}
