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
