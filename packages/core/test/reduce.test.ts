/** Tests of the JavaScript reduction kernel against a plain loop written here: each output summed from its first element to its last in double precision, whatever rows it shares the work with. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { reduce } from "../src/kernels/reduce.js";

/** The sum of x[o, r, i] over r, one addition after another from r = 0, in double precision. */
function naiveSums(x: ArrayLike<number>, outer: number, length: number, inner: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = 0;
      for (let r = 0; r < length; r++) acc += x[(o * length + r) * inner + i];
      out.push(acc);
    }
  }
  return out;
}

describe("reduce (sum)", () => {
  it("sums every row in order, in double precision, four rows at a time or one", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 11 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 20 }),
        (outer, length, inner, single, seed) => {
          let s = seed;
          const values = Array.from({ length: outer * length * inner }, () => {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            // Magnitudes from 2⁻²⁰ to 2²⁰, so that the order of the additions shows.
            return ((s / 2 ** 32 - 0.5) * 2 ** ((s % 41) - 20)) as number;
          });
          const x = single ? Float32Array.from(values) : Float64Array.from(values);
          const out = new Float64Array(outer * inner);
          reduce("sum", x, outer, length, inner, out);
          expect([...out]).toEqual(naiveSums(x, outer, length, inner));
          // Into a float32 output: the double sum rounded once.
          const rounded = new Float32Array(outer * inner);
          reduce("sum", x, outer, length, inner, rounded);
          expect([...rounded]).toEqual(naiveSums(x, outer, length, inner).map(Math.fround));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("wraps int32 sums at every step", () => {
    // 2³¹ − 1 + 1 wraps to −2³¹, then + 5 gives −2147483643; the second row is 1 + 2 + 3 = 6.
    const x = Int32Array.from([2 ** 31 - 1, 1, 5, 1, 2, 3]);
    const out = new Int32Array(2);
    reduce("sum", x, 2, 3, 1, out);
    expect([...out]).toEqual([-2147483643, 6]);
  });
});
