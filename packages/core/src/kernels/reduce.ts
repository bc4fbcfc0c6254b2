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

/**
 * out[o, i] = the position r of the largest (`max`) or smallest (`min`) x[o, r, i]: the first one on
 * ties, and the first NaN if there is one (NaN wins either way, as in PyTorch's argmax and argmin).
 */
export function argReduce(
  kind: "max" | "min",
  x: DataArray,
  outer: number,
  length: number,
  inner: number,
  out: Int32Array,
): void {
  const max = kind === "max";
  for (let o = 0; o < outer; o++) {
    const base = o * length * inner;
    for (let i = 0; i < inner; i++) {
      let best = 0;
      let value = x[base + i];
      for (let r = 1; r < length && !Number.isNaN(value); r++) {
        const v = x[base + r * inner + i];
        if (max ? v > value : v < value) {
          best = r;
          value = v;
        } else if (Number.isNaN(v)) {
          best = r;
          break;
        }
      }
      out[o * inner + i] = best;
    }
  }
}

/**
 * out[o, r, i] = x[o, 0, i] + … + x[o, r, i] (with `reverse`, x[o, r, i] + … + x[o, length − 1, i]),
 * accumulated in double precision whatever the dtype, as PyTorch does on the CPU.
 */
export function cumulativeSum(
  x: DataArray,
  outer: number,
  length: number,
  inner: number,
  reverse: boolean,
  out: DataArray,
): void {
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * length * inner;
    acc.fill(0);
    for (let step = 0; step < length; step++) {
      const row = base + (reverse ? length - 1 - step : step) * inner;
      for (let i = 0; i < inner; i++) {
        acc[i] += x[row + i];
        out[row + i] = acc[i];
      }
    }
  }
}
