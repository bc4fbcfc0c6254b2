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
  if (inner === 1 && kind === "sum" && !wraps) {
    sumRows(x, outer, length, out);
    return;
  }
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * length;
      if (kind === "sum") {
        // int32: wrapping at every step (float sums went to sumRows).
        let acc = 0;
        for (let r = 0; r < length; r++) acc = (acc + x[base + r]) | 0;
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
 * out[o] = the sum of row o of x (`outer` rows of `length`), each in double precision from its
 * first element to its last. Four rows at a time, so that four independent additions are in
 * flight instead of one chain: the same sums, about four times sooner.
 */
function sumRows(x: DataArray, outer: number, length: number, out: DataArray): void {
  let o = 0;
  for (; o + 4 <= outer; o += 4) {
    const b0 = o * length;
    const b1 = b0 + length;
    const b2 = b1 + length;
    const b3 = b2 + length;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let r = 0; r < length; r++) {
      a0 += x[b0 + r];
      a1 += x[b1 + r];
      a2 += x[b2 + r];
      a3 += x[b3 + r];
    }
    out[o] = a0;
    out[o + 1] = a1;
    out[o + 2] = a2;
    out[o + 3] = a3;
  }
  for (; o < outer; o++) {
    const base = o * length;
    let acc = 0;
    for (let r = 0; r < length; r++) acc += x[base + r];
    out[o] = acc;
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
