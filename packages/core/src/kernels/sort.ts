/** Sorting kernels: stable orders of strided runs of a typed array, NaN taken as the largest value. */

import type { DataArray } from "../dtype.js";

/**
 * Compares a and b ascending, NaN above everything (PyTorch's order for sort and topk); 0 on ties
 * (including two NaNs), so the caller breaks ties by position.
 */
function ascending(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0;
  // At least one is NaN.
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  return an === bn ? 0 : an ? 1 : -1;
}

/**
 * Writes into `out` the positions 0 … length − 1 of the run x[start + k · stride] in sorted order:
 * ascending, or descending with `descending`, NaN counted as the largest value; equal values keep
 * their relative order (a stable sort). `keys` is scratch of at least `length` doubles.
 */
export function stableOrder(
  x: DataArray,
  start: number,
  stride: number,
  length: number,
  descending: boolean,
  out: Int32Array,
  keys: Float64Array,
): void {
  for (let k = 0; k < length; k++) keys[k] = x[start + k * stride];
  const positions = Array.from({ length }, (_, k) => k);
  // The position breaks ties explicitly, so the order does not rest on the engine's sort being stable.
  positions.sort(
    descending
      ? (p, q) => ascending(keys[q], keys[p]) || p - q
      : (p, q) => ascending(keys[p], keys[q]) || p - q,
  );
  for (let k = 0; k < length; k++) out[k] = positions[k];
}

/**
 * For x viewed as [outer, length, inner], writes into `out` ([outer, count, inner]) the positions
 * along the middle axis of the first `count` elements of each run in `stableOrder`'s order; with
 * `indexOrder`, those `count` positions in increasing position instead (a top-k left unsorted).
 */
export function orderAlong(
  x: DataArray,
  outer: number,
  length: number,
  inner: number,
  descending: boolean,
  count: number,
  indexOrder: boolean,
  out: Int32Array,
): void {
  const order = new Int32Array(length);
  const keys = new Float64Array(length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      stableOrder(x, o * length * inner + i, inner, length, descending, order, keys);
      const chosen = indexOrder ? order.subarray(0, count).sort() : order;
      const base = o * count * inner + i;
      for (let k = 0; k < count; k++) out[base + k * inner] = chosen[k];
    }
  }
}
