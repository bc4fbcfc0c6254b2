/** Reduction kernels over x viewed as [outer, length, inner], reducing the middle axis. */

import type { DataArray } from "../dtype.js";

export type ReduceKind = "sum" | "max" | "min";

/**
 * out[o, i] = reduce over r of x[o, r, i]. Float sums accumulate in double precision; int32 sums
 * (into an Int32Array) wrap modulo 2^32 at every step, so they are exact two's complement however
 * large; max and min propagate NaN (as PyTorch and NumPy do).
 */
export function reduce(
  kind: ReduceKind,
  x: DataArray,
  outer: number,
  length: number,
  inner: number,
  out: DataArray,
): void {
  const wraps = out instanceof Int32Array;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * length;
      if (kind === "sum") {
        let acc = 0;
        if (wraps) for (let r = 0; r < length; r++) acc = (acc + x[base + r]) | 0;
        else for (let r = 0; r < length; r++) acc += x[base + r];
        out[o] = acc;
      } else {
        let acc = kind === "max" ? -Infinity : Infinity;
        for (let r = 0; r < length; r++) {
          const v = x[base + r];
          if (kind === "max" ? v > acc : v < acc) acc = v;
          else if (Number.isNaN(v)) {
            acc = v;
            break;
          }
        }
        out[o] = acc;
      }
    }
    return;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * length * inner;
    if (kind === "sum") {
      acc.fill(0);
      for (let r = 0; r < length; r++) {
        const row = base + r * inner;
        if (wraps) for (let i = 0; i < inner; i++) acc[i] = (acc[i] + x[row + i]) | 0;
        else for (let i = 0; i < inner; i++) acc[i] += x[row + i];
      }
    } else {
      acc.fill(kind === "max" ? -Infinity : Infinity);
      for (let r = 0; r < length; r++) {
        const row = base + r * inner;
        for (let i = 0; i < inner; i++) {
          const v = x[row + i];
          if (kind === "max" ? v > acc[i] : v < acc[i]) acc[i] = v;
          else if (Number.isNaN(v)) acc[i] = v;
        }
      }
    }
    out.set(acc, o * inner);
  }
}
