/** Selection: where, argwhere, gather and gatherNd, and the scatter-adds that are their gradients. */

import { allocate, promoteTypes } from "../dtype.js";
import { record, ScatteredGradient } from "../engine.js";
import { elementwise, lazyGatherRows, scatterPendingRows } from "../kernels/elementwise.js";
import {
  gatherAxis,
  gatherRows,
  ndOffsets,
  scatterAddAxis,
  scatterAddRows,
} from "../kernels/gather.js";
import {
  broadcastShapes,
  formatShape,
  normalizeAxis,
  type Shape,
  shapesEqual,
  sizeOf,
  stridesOf,
} from "../shape.js";
import { Tensor } from "../tensor.js";
import {
  checkBool,
  checkInt32,
  checkTensor,
  describe,
  operandPair,
  scalarTensor,
  type TensorLike,
} from "./util.js";

/**
 * `a` where `cond` holds, else `b`, broadcasting all three. The gradient goes to `a` where `cond`
 * holds and to `b` elsewhere; the unselected side gets an exact 0.
 *
 * To select away a branch that would be infinite or NaN, make its *input* safe too ("double where"):
 * `where(ok, log(where(ok, x, 1)), 0)`, never `where(ok, log(x), 0)`, whose gradient is 0 * inf = NaN.
 *
 * Two plain numbers give a float32 result (PyTorch's default dtype).
 *
 * @example
 * where(equal(labels, 1), sub(1, p), p); // the seed's focal weight base
 * where(equal(labels, 1), 0.25, 0.75);   // float32 alpha factor
 */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  checkBool("where", "cond", cond);
  // Two plain numbers make a float32 result, PyTorch's default dtype; pass a tensor for another.
  const [x, y] =
    typeof a === "number" && typeof b === "number"
      ? [scalarTensor(a, "float32"), scalarTensor(b, "float32")]
      : operandPair("where", a, b);
  const shape = broadcastShapes("where", cond.shape, x.shape, y.shape);
  const out = elementwise("a ? b : c", [cond, x, y], shape, promoteTypes(x.dtype, y.dtype));
  return record(
    "where",
    out,
    [cond, x, y],
    [null, (g) => where(cond, g, 0), (g) => where(cond, 0, g)],
  );
}

/**
 * The coordinates of the true (non-zero) entries of `cond`, in row-major order, as an int32 tensor
 * of shape [K, rank]: the one-argument `tf.where`.
 *
 * @example
 * argwhere(tensor([[true, false], [false, true]])); // [[0, 0], [1, 1]]
 */
export function argwhere(cond: Tensor): Tensor {
  checkTensor("argwhere", "cond", cond);
  const data = cond.data;
  const rank = cond.rank;
  let count = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) count++;
  const out = new Int32Array(count * rank);
  const index = new Int32Array(rank);
  const sides = Int32Array.from(cond.shape);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0) for (let d = 0; d < rank; d++) out[o++] = index[d];
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d] < sides[d]) break;
      index[d] = 0;
    }
  }
  return new Tensor(out, [count, rank], "int32");
}

function checkIndices(op: string, indices: Int32Array, size: number, what: string): void {
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i];
    if (v < 0 || v >= size) {
      throw new Error(
        `${op}: index ${v} (at position ${i} of indices) is out of range for ${what} of size ${size}`,
      );
    }
  }
}

/**
 * Takes entries of `x` along `axis` at `indices` (int32, any shape): the result has shape
 * x.shape[:axis] + indices.shape + x.shape[axis+1:]. The gradient scatter-adds, so repeated
 * indices accumulate.
 *
 * @example
 * gather(tensor([10, 20, 30]), tensor([2, 0, 2], { dtype: "int32" })); // [30, 10, 30]
 */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  checkTensor("gather", "x", x);
  checkInt32("gather", "indices", indices);
  const ax = normalizeAxis("gather", axis, x.rank);
  const axisSize = x.shape[ax];
  checkIndices(
    "gather",
    indices.data as Int32Array,
    axisSize,
    `axis ${ax} of x (shape ${formatShape(x.shape)})`,
  );
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1));
  const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
  const out = allocate(x.dtype, sizeOf(shape));
  const index = indices.data as Int32Array;
  gatherAxis(x.data, index, outer, axisSize, inner, out);
  const result = new Tensor(out, shape, x.dtype);
  return record(
    "gather",
    result,
    [x, indices],
    [
      (g) =>
        new ScatteredGradient(
          x.shape,
          g.dtype,
          (dest) => scatterAddAxis(g.data, index, outer, axisSize, inner, dest),
          () => scatterAdd(indices, g, ax, x.shape),
        ),
      null,
    ],
  );
}

/**
 * The adjoint of `gather`: a zero tensor of `shape` into which `updates` are added at `indices`
 * along `axis`; repeated indices accumulate.
 *
 * @example
 * scatterAdd(tensor([0, 0], { dtype: "int32" }), tensor([1, 2]), 0, [3]); // [3, 0, 0]
 */
export function scatterAdd(indices: Tensor, updates: Tensor, axis: number, shape: Shape): Tensor {
  checkInt32("scatterAdd", "indices", indices);
  checkTensor("scatterAdd", "updates", updates);
  const ax = normalizeAxis("scatterAdd", axis, shape.length);
  const expected = [...shape.slice(0, ax), ...indices.shape, ...shape.slice(ax + 1)];
  if (!shapesEqual(updates.shape, expected)) {
    throw new Error(
      `scatterAdd: updates must have shape ${formatShape(expected)} for indices ${formatShape(indices.shape)} ` +
        `into ${formatShape(shape)} along axis ${ax}, got ${formatShape(updates.shape)}`,
    );
  }
  checkIndices(
    "scatterAdd",
    indices.data as Int32Array,
    shape[ax],
    `axis ${ax} of shape ${formatShape(shape)}`,
  );
  const out = allocate(updates.dtype, sizeOf(shape));
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  scatterAddAxis(updates.data, indices.data as Int32Array, outer, shape[ax], inner, out);
  const result = new Tensor(out, shape, updates.dtype);
  return record("scatterAdd", result, [indices, updates], [null, (g) => gather(g, indices, ax)]);
}

interface NdLayout {
  offsets: Int32Array;
  slice: number;
  outShape: number[];
}

/** The last layout computed for each index tensor: the seed gathers labels and predictions alike. */
const ndLayouts = new WeakMap<Tensor, { shape: string; version: number; layout: NdLayout }>();

function ndLayout(op: string, indices: Tensor, shape: Shape): NdLayout {
  const key = shape.join(",");
  const known = ndLayouts.get(indices);
  if (known !== undefined && known.shape === key && known.version === indices.version)
    return known.layout;
  const layout = computeNdLayout(op, indices, shape);
  ndLayouts.set(indices, { shape: key, version: indices.version, layout });
  return layout;
}

function computeNdLayout(op: string, indices: Tensor, shape: Shape): NdLayout {
  if (indices.rank < 1) throw new Error(`${op}: indices must have rank >= 1, got a scalar`);
  const m = indices.shape[indices.rank - 1];
  if (m > shape.length) {
    throw new Error(
      `${op}: the last axis of indices (${m}) is longer than the rank of the indexed shape ${formatShape(shape)}`,
    );
  }
  const rows = sizeOf(indices.shape.slice(0, -1));
  const idx = indices.data as Int32Array;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < m; j++) {
      const v = idx[r * m + j];
      if (v < 0 || v >= shape[j]) {
        throw new Error(
          `${op}: index ${v} at indices[${r}][${j}] is out of range for axis ${j} of size ${shape[j]} ` +
            `(indexed shape ${formatShape(shape)})`,
        );
      }
    }
  }
  const strides = stridesOf(shape);
  return {
    offsets: ndOffsets(idx, rows, m, strides),
    slice: sizeOf(shape.slice(m)),
    outShape: [...indices.shape.slice(0, -1), ...shape.slice(m)],
  };
}

/**
 * TensorFlow's `gather_nd`: the last axis of `indices` (length M) indexes the first M axes of `x`;
 * the result has shape indices.shape[:-1] + x.shape[M:]. The gradient is `scatterNd`, which adds
 * up repeated indices.
 *
 * @example
 * const objIdx = argwhere(equal(anchorState, 1)); // [K, 2] (batch, anchor)
 * gatherNd(yPred, objIdx);                        // [K, C]
 */
export function gatherNd(x: Tensor, indices: Tensor): Tensor {
  checkTensor("gatherNd", "x", x);
  checkInt32("gatherNd", "indices", indices);
  const { offsets, slice, outShape } = ndLayout("gatherNd", indices, x.shape);
  // Large gathers stay lazy: their consumers read the rows of x through the offsets table.
  let result = lazyGatherRows(x, offsets, slice, outShape);
  if (result === null) {
    const out = allocate(x.dtype, sizeOf(outShape));
    gatherRows(x.data, offsets, slice, out);
    result = new Tensor(out, outShape, x.dtype);
  }
  return record(
    "gatherNd",
    result,
    [x, indices],
    [
      (g) =>
        new ScatteredGradient(
          x.shape,
          g.dtype,
          (dest) => {
            // A pending gradient runs its program inside the scatter loop, with no array of its own.
            if (!scatterPendingRows(g, offsets, slice, dest))
              scatterAddRows(g.data, offsets, slice, dest);
          },
          () => scatterNd(indices, g, x.shape),
        ),
      null,
    ],
  );
}

/**
 * TensorFlow's `scatter_nd`: a zero tensor of `shape` with `updates` added at `indices`; repeated
 * indices accumulate. The adjoint of `gatherNd`.
 *
 * @example
 * scatterNd(tensor([[1], [1]], { dtype: "int32" }), tensor([2, 3]), [3]); // [0, 5, 0]
 */
export function scatterNd(indices: Tensor, updates: Tensor, shape: Shape): Tensor {
  checkInt32("scatterNd", "indices", indices);
  checkTensor("scatterNd", "updates", updates);
  const { offsets, slice, outShape } = ndLayout("scatterNd", indices, shape);
  if (!shapesEqual(updates.shape, outShape)) {
    throw new Error(
      `scatterNd: updates must have shape ${formatShape(outShape)} for indices ${formatShape(indices.shape)} ` +
        `into ${formatShape(shape)}, got ${describe(updates)}`,
    );
  }
  const out = allocate(updates.dtype, sizeOf(shape));
  scatterAddRows(updates.data, offsets, slice, out);
  const result = new Tensor(out, shape, updates.dtype);
  return record("scatterNd", result, [indices, updates], [null, (g) => gatherNd(g, indices)]);
}
