/** Selection: where, argwhere, gather and gatherNd, and the scatter-adds that are their gradients. */

import { allocate, type DType, isDType, promoteTypes } from "../dtype.js";
import { getBackend } from "../kernels/backend.js";
import { ndOffsets, oneHotInto } from "../kernels/gather.js";
import { ir } from "../kernels/ir.js";
import { coordinatesSource, pendingCoordinates } from "../lazy/coordinates.js";
import {
  elementwise,
  lazyGatherRows,
  type RowStarts,
  scatterPendingRows,
  viewOf,
} from "../lazy/index.js";
import {
  broadcastShapes,
  checkShape,
  checkSize,
  formatShape,
  normalizeAxis,
  type Shape,
  shapesEqual,
  sizeOf,
  stridesOf,
} from "../shape.js";
import { record, ScatteredGradient } from "../tape.js";
import { Tensor } from "../tensor.js";
import {
  checkBool,
  checkInt32,
  checkInteger,
  checkOptions,
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
 * That exact 0 stays 0 through the unselected branch's own derivatives (an exactly-zero upstream
 * gives an exactly-zero gradient), so `where(ok, log(x), 0)` has a finite gradient; make the
 * branch's *input* safe too (`where(ok, log(where(ok, x, 1)), 0)`) to keep its value free of NaN.
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
  const out = elementwise(ir.select, [cond, x, y], shape, promoteTypes(x.dtype, y.dtype));
  return record(
    "where",
    out,
    [cond, x, y],
    [null, (g) => where(cond, g, 0), (g) => where(cond, 0, g)],
    [[], [cond], [cond]],
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
  const positions = getBackend().nonzeroPositions(cond.read());
  // The coordinates are written out only if something reads them: a gatherNd through them uses
  // the flat positions.
  return pendingCoordinates(positions, cond.shape);
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
    indices.read() as Int32Array,
    axisSize,
    `axis ${ax} of x (shape ${formatShape(x.shape)})`,
  );
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1));
  const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
  const out = allocate(x.dtype, checkSize("gather", shape));
  const index = indices.read() as Int32Array;
  getBackend().gatherAxis(x.read(), index, outer, axisSize, inner, out);
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
          (dest) => getBackend().scatterAddAxis(g.read(), index, outer, axisSize, inner, dest),
          () => scatterAdd(indices, g, ax, x.shape),
          g.size,
        ),
      null,
    ],
    undefined,
    { axis: ax },
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
  checkShape("scatterAdd", shape);
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
    indices.read() as Int32Array,
    shape[ax],
    `axis ${ax} of shape ${formatShape(shape)}`,
  );
  const out = allocate(updates.dtype, sizeOf(shape));
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  getBackend().scatterAddAxis(
    updates.read(),
    indices.read() as Int32Array,
    outer,
    shape[ax],
    inner,
    out,
  );
  const result = new Tensor(out, shape, updates.dtype);
  return record("scatterAdd", result, [indices, updates], [null, (g) => gather(g, indices, ax)]);
}

/** Where the rows that an index tensor selects start in a tensor of some shape and strides. */
interface NdLayout {
  /** The flat start of each row (in elements of the tensor's data). */
  rows: RowStarts;
  /** Elements per row: the product of the indexed shape's axes past the indexed ones. */
  slice: number;
  outShape: number[];
  /** Whether the rows are in increasing order and do not overlap (each element selected once). */
  disjoint: boolean;
}

/** Layouts computed for each index tensor (the seed gathers labels and predictions alike). */
const ndLayouts = new WeakMap<Tensor, { version: number; byKey: Map<string, NdLayout> }>();

/**
 * The layout of `indices` over a tensor of `shape` read with `strides` from `offset` (a view, or a
 * tensor's own row-major strides). Checks the indices the first time, unless `argwhere` made them
 * over exactly the indexed axes.
 */
function ndLayout(
  op: string,
  indices: Tensor,
  shape: Shape,
  strides: readonly number[] = stridesOf(shape),
  offset = 0,
): NdLayout {
  const key = `${shape.join(",")}|${strides.join(",")}|${offset}`;
  // Indices whose memory was handed out may change without a version bump: never cached.
  if (indices.isExposed) return computeNdLayout(op, indices, shape, strides, offset);
  let known = ndLayouts.get(indices);
  if (known === undefined || known.version !== indices.version) {
    known = { version: indices.version, byKey: new Map() };
    ndLayouts.set(indices, known);
  }
  let layout = known.byKey.get(key);
  if (layout === undefined) {
    layout = computeNdLayout(op, indices, shape, strides, offset);
    known.byKey.set(key, layout);
  }
  return layout;
}

function computeNdLayout(
  op: string,
  indices: Tensor,
  shape: Shape,
  strides: readonly number[],
  offset: number,
): NdLayout {
  if (indices.rank < 1) throw new Error(`${op}: indices must have rank >= 1, got a scalar`);
  const m = indices.shape[indices.rank - 1];
  if (m > shape.length) {
    throw new Error(
      `${op}: the last axis of indices (${m}) is longer than the rank of the indexed shape ${formatShape(shape)}`,
    );
  }
  const rows = sizeOf(indices.shape.slice(0, -1));
  const found = coordinatesSource(indices);
  const fromArgwhere = found !== undefined && shapesEqual(found.shape, shape.slice(0, m));
  if (!fromArgwhere) {
    const idx = indices.read() as Int32Array;
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
  }
  const slice = sizeOf(shape.slice(m));
  const outShape = [...indices.shape.slice(0, -1), ...shape.slice(m)];
  checkSize(op, outShape);
  // Strides that step through the indexed axes as one row-major run make each row start a
  // multiple of the flat position argwhere recorded: no table of offsets to build.
  const unit = m === 0 ? 0 : strides[m - 1];
  const regular = strides.slice(0, m).every((s, d) => s === unit * sizeOf(shape.slice(d + 1, m)));
  if (fromArgwhere && regular) {
    // Positions increase strictly, so rows at least `slice` apart never overlap.
    const disjoint = unit >= slice || rows <= 1;
    return {
      rows: { index: found.positions, scale: unit, start: offset },
      slice,
      outShape,
      disjoint,
    };
  }
  const offsets = ndOffsets(indices.read() as Int32Array, rows, m, strides.slice(0, m), offset);
  let disjoint = true;
  for (let r = 1; r < rows && disjoint; r++) disjoint = offsets[r] - offsets[r - 1] >= slice;
  return { rows: { index: offsets, scale: 1, start: 0 }, slice, outShape, disjoint };
}

/** The single stride with which the last `width` elements (row-major) of a view are spaced, if any. */
function trailingRun(shape: Shape, strides: readonly number[], width: number): number | null {
  let covered = 1;
  let step: number | null = null;
  for (let d = shape.length - 1; d >= 0 && covered < width; d--) {
    if (shape[d] === 1) continue;
    if (step === null) step = strides[d];
    else if (strides[d] !== step * covered) return null;
    covered *= shape[d];
  }
  if (covered !== width) return width === 1 ? 1 : null;
  return step ?? 1;
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
  // Large gathers stay lazy: their consumers read the rows of x through the offsets table, and a
  // gather from a lazy slice reads the sliced tensor itself when each row is one evenly spaced run.
  let result: Tensor | null = null;
  const view = viewOf(x);
  const m = indices.rank === 0 ? 0 : indices.shape[indices.rank - 1];
  const width = sizeOf(x.shape.slice(m));
  const run = view === null ? null : trailingRun(x.shape.slice(m), view.strides.slice(m), width);
  if (view !== null && run !== null) {
    const through = ndLayout("gatherNd", indices, x.shape, view.strides, view.offset);
    result = lazyGatherRows(view, through.rows, width, run, through.outShape);
  }
  // x's own row-major layout: the gradient scatters through it.
  const own = () => ndLayout("gatherNd", indices, x.shape);
  if (result === null) {
    const { rows, slice, outShape } = own();
    result = lazyGatherRows(x, rows, slice, 1, outShape);
    if (result === null) {
      const out = allocate(x.dtype, sizeOf(outShape));
      getBackend().gatherRows(x.read(), rows, slice, out);
      result = new Tensor(out, outShape, x.dtype);
    }
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
          (dest, zero) => {
            // A pending gradient runs its program inside the scatter loop, with no array of its
            // own; into a zero buffer through disjoint rows it stores rather than adds.
            const { rows, slice, disjoint } = own();
            if (
              !scatterPendingRows(g, rows, slice, dest, { disjoint, overwrite: zero && disjoint })
            )
              getBackend().scatterAddRows(g.read(), rows, slice, dest);
          },
          () => scatterNd(indices, g, x.shape),
          g.size,
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
  checkShape("scatterNd", shape);
  const { rows, slice, outShape } = ndLayout("scatterNd", indices, shape);
  if (!shapesEqual(updates.shape, outShape)) {
    throw new Error(
      `scatterNd: updates must have shape ${formatShape(outShape)} for indices ${formatShape(indices.shape)} ` +
        `into ${formatShape(shape)}, got ${describe(updates)}`,
    );
  }
  const out = allocate(updates.dtype, sizeOf(shape));
  getBackend().scatterAddRows(updates.read(), rows, slice, out);
  const result = new Tensor(out, shape, updates.dtype);
  return record("scatterNd", result, [indices, updates], [null, (g) => gatherNd(g, indices)]);
}

/** x viewed as [outer, axisSize, inner] and indices as [outer, count, inner], for take/scatter along an axis. */
function alongLayout(op: string, shape: Shape, indices: Tensor, axis: number) {
  const ax = normalizeAxis(op, axis, shape.length);
  if (indices.rank !== shape.length || indices.shape.some((d, i) => i !== ax && d !== shape[i])) {
    throw new Error(
      `${op}: indices of shape ${formatShape(indices.shape)} must match ${formatShape(shape)} on every axis but axis ${ax}`,
    );
  }
  checkIndices(
    op,
    indices.read() as Int32Array,
    shape[ax],
    `axis ${ax} of shape ${formatShape(shape)}`,
  );
  return {
    ax,
    outer: sizeOf(shape.slice(0, ax)),
    axisSize: shape[ax],
    count: indices.shape[ax],
    inner: sizeOf(shape.slice(ax + 1)),
  };
}

/**
 * Takes from `x` along `axis` the entries that `indices` (int32, x's shape except along `axis`)
 * name, one per position: out[…, j, …] = x[…, indices[…, j, …], …] (NumPy's `take_along_axis`,
 * PyTorch's `gather`). The gradient scatter-adds back to the positions taken.
 *
 * @example
 * const x = tensor([[10, 20, 30], [40, 50, 60]]);
 * takeAlongAxis(x, tensor([[2, 0], [1, 1]], { dtype: "int32" }), 1); // [[30, 10], [50, 50]]
 */
export function takeAlongAxis(x: Tensor, indices: Tensor, axis: number): Tensor {
  checkTensor("takeAlongAxis", "x", x);
  checkInt32("takeAlongAxis", "indices", indices);
  const { ax, outer, axisSize, count, inner } = alongLayout(
    "takeAlongAxis",
    x.shape,
    indices,
    axis,
  );
  const out = allocate(x.dtype, indices.size);
  getBackend().gatherAlong(
    x.read(),
    indices.read() as Int32Array,
    outer,
    axisSize,
    count,
    inner,
    out,
  );
  return record(
    "takeAlongAxis",
    new Tensor(out, indices.shape, x.dtype),
    [x, indices],
    [(g) => scatterAlongAxis(indices, g, ax, x.shape), null],
    [[indices], []],
  );
}

/**
 * The adjoint of `takeAlongAxis`: a zero tensor of `shape` into which `updates` (of indices'
 * shape) are added along `axis` at `indices`; repeated indices accumulate (PyTorch's
 * `scatter_add`).
 *
 * @example
 * scatterAlongAxis(tensor([[1, 1]], { dtype: "int32" }), tensor([[2, 3]]), 1, [1, 3]); // [[0, 5, 0]]
 */
export function scatterAlongAxis(
  indices: Tensor,
  updates: Tensor,
  axis: number,
  shape: Shape,
): Tensor {
  checkInt32("scatterAlongAxis", "indices", indices);
  checkTensor("scatterAlongAxis", "updates", updates);
  if (!shapesEqual(updates.shape, indices.shape)) {
    throw new Error(
      `scatterAlongAxis: updates must have the shape of indices ${formatShape(indices.shape)}, got ${describe(updates)}`,
    );
  }
  const { ax, outer, axisSize, count, inner } = alongLayout(
    "scatterAlongAxis",
    shape,
    indices,
    axis,
  );
  const out = allocate(updates.dtype, sizeOf(shape));
  getBackend().scatterAddAlong(
    updates.read(),
    indices.read() as Int32Array,
    outer,
    axisSize,
    count,
    inner,
    out,
  );
  return record(
    "scatterAlongAxis",
    new Tensor(out, shape, updates.dtype),
    [indices, updates],
    [null, (g) => takeAlongAxis(g, indices, ax)],
    [[], [indices]],
  );
}

/**
 * One-hot encoding (PyTorch's `one_hot`): for int32 `indices` of any shape, a tensor of shape
 * [...indices.shape, numClasses] that is 1 at each index and 0 elsewhere. `numClasses` defaults to
 * the largest index + 1; the dtype to int32 (PyTorch's integer result), or pass `dtype`.
 *
 * @example
 * oneHot(tensor([0, 2], { dtype: "int32" }), 3); // [[1, 0, 0], [0, 0, 1]]
 * oneHot(labels, 10, { dtype: "float32" });      // targets for a per-class BCE
 */
export function oneHot(
  indices: Tensor,
  numClasses?: number,
  options: { dtype?: DType } = {},
): Tensor {
  checkInt32("oneHot", "indices", indices);
  checkOptions("oneHot", options, { dtype: "any" }); // the dtype is checked below, by name
  const index = indices.read() as Int32Array;
  let classes = numClasses;
  if (classes === undefined) {
    if (index.length === 0) {
      throw new Error("oneHot: cannot infer numClasses from empty indices; pass numClasses");
    }
    classes = index.reduce((a, b) => Math.max(a, b), 0) + 1;
  }
  checkInteger("oneHot", "numClasses", classes, 1);
  const dtype = options.dtype ?? "int32";
  if (!isDType(dtype)) {
    throw new Error(
      `oneHot: unknown dtype ${JSON.stringify(dtype)} (expected float32, float64, int32 or bool)`,
    );
  }
  for (let i = 0; i < index.length; i++) {
    if (index[i] < 0 || index[i] >= classes) {
      throw new Error(
        `oneHot: index ${index[i]} (at position ${i} of indices) is out of range for numClasses = ${classes} (expected 0 <= index < ${classes})`,
      );
    }
  }
  const out = allocate(dtype, checkSize("oneHot", [...indices.shape, classes]));
  oneHotInto(index, classes, out);
  return new Tensor(out, [...indices.shape, classes], dtype);
}
