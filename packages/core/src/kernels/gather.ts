/** Index kernels: gather along an axis, gatherNd, and their adjoints, scatter-add. */

import type { DataArray } from "../dtype.js";
import type { RowStarts } from "./kernel.js";

/**
 * out[o, i, n] = x[o, index[i], n] for x viewed as [outer, axisSize, inner].
 * Indices are already checked to be in range.
 */
export function gatherAxis(
  x: DataArray,
  index: Int32Array,
  outer: number,
  axisSize: number,
  inner: number,
  out: DataArray,
): void {
  const k = index.length;
  let o = 0;
  for (let a = 0; a < outer; a++) {
    const base = a * axisSize * inner;
    for (let i = 0; i < k; i++) {
      const from = base + index[i] * inner;
      if (inner === 1) out[o++] = x[from];
      else for (let j = 0; j < inner; j++) out[o++] = x[from + j];
    }
  }
}

/** The adjoint of `gatherAxis`: out[o, index[i], n] += updates[o, i, n]. Repeated indices add up. */
export function scatterAddAxis(
  updates: DataArray,
  index: Int32Array,
  outer: number,
  axisSize: number,
  inner: number,
  out: DataArray,
): void {
  const k = index.length;
  let u = 0;
  for (let a = 0; a < outer; a++) {
    const base = a * axisSize * inner;
    for (let i = 0; i < k; i++) {
      const to = base + index[i] * inner;
      if (inner === 1) out[to] += updates[u++];
      else for (let j = 0; j < inner; j++) out[to + j] += updates[u++];
    }
  }
}

/**
 * Row offsets for gatherNd: the flat start of x[indices[r, 0], …, indices[r, m-1]] for every row r,
 * given x's strides over the first m axes and the offset of x's first element (`start`).
 */
export function ndOffsets(
  indices: Int32Array,
  rows: number,
  m: number,
  strides: readonly number[],
  start = 0,
): Int32Array {
  const offsets = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let offset = start;
    for (let j = 0; j < m; j++) offset += indices[r * m + j] * strides[j];
    offsets[r] = offset;
  }
  return offsets;
}

/** out[r, n] = x[start + index[r] · scale + n] for `slice` contiguous elements per row. */
export function gatherRows(x: DataArray, rows: RowStarts, slice: number, out: DataArray): void {
  const { index, scale, start } = rows;
  let o = 0;
  for (let r = 0; r < index.length; r++) {
    const from = start + index[r] * scale;
    if (slice === 1) out[o++] = x[from];
    else {
      for (let j = 0; j < slice; j++) out[o + j] = x[from + j];
      o += slice;
    }
  }
}

/** The adjoint of `gatherRows`: out[start + index[r] · scale + n] += updates[r, n]. */
export function scatterAddRows(
  updates: DataArray,
  rows: RowStarts,
  slice: number,
  out: DataArray,
): void {
  const { index, scale, start } = rows;
  let u = 0;
  for (let r = 0; r < index.length; r++) {
    const to = start + index[r] * scale;
    for (let j = 0; j < slice; j++) out[to + j] += updates[u++];
  }
}

/**
 * out[o, j, n] = x[o, index[o, j, n], n] for x viewed as [outer, axisSize, inner] and index as
 * [outer, count, inner] (NumPy's take_along_axis). Indices are already checked to be in range.
 */
export function gatherAlong(
  x: DataArray,
  index: Int32Array,
  outer: number,
  axisSize: number,
  count: number,
  inner: number,
  out: DataArray,
): void {
  for (let o = 0; o < outer; o++) {
    const from = o * axisSize * inner;
    const to = o * count * inner;
    for (let j = 0; j < count; j++) {
      for (let n = 0; n < inner; n++) {
        const at = to + j * inner + n;
        out[at] = x[from + index[at] * inner + n];
      }
    }
  }
}

/** The adjoint of `gatherAlong`: out[o, index[o, j, n], n] += updates[o, j, n]. Repeats add up. */
export function scatterAddAlong(
  updates: DataArray,
  index: Int32Array,
  outer: number,
  axisSize: number,
  count: number,
  inner: number,
  out: DataArray,
): void {
  for (let o = 0; o < outer; o++) {
    const to = o * axisSize * inner;
    const from = o * count * inner;
    for (let j = 0; j < count; j++) {
      for (let n = 0; n < inner; n++) {
        const at = from + j * inner + n;
        out[to + index[at] * inner + n] += updates[at];
      }
    }
  }
}

/** out[r, c] = 1 where c = index[r], for out [index.length, classes] zero on entry. */
export function oneHotInto(index: Int32Array, classes: number, out: DataArray): void {
  for (let r = 0; r < index.length; r++) out[r * classes + index[r]] = 1;
}
