/** Tests of ops/sorting.ts: sort, argsort and topk, their ties, NaN, gradients and errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  argsort,
  mul,
  slice,
  sort,
  type Tensor,
  tensor,
  topk,
  zeros,
} from "../../src/index.js";
import { assertGradcheck, assertGradgradcheck, shape } from "../../src/testing/index.js";

const runs = { numRuns: 100 };
const f64 = (values: number[] | number[][], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const values = (t: Tensor) => Array.from(t.data);
const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * float64 tensors of shape `s` whose elements are all distinct, at least 0.15 apart (distinct
 * quarters plus a jitter below 0.1): finite differences never swap two of them.
 */
function distinctTensor(s: number[]): fc.Arbitrary<Tensor> {
  const n = sizeOf(s);
  return fc
    .tuple(
      fc.uniqueArray(fc.integer({ min: 0, max: 4 * n + 4 }), { minLength: n, maxLength: n }),
      fc.array(fc.double({ min: 0, max: 0.1, noNaN: true }), { minLength: n, maxLength: n }),
    )
    .map(([q, jitter]) =>
      tensor(
        Float64Array.from(q, (v, i) => v / 4 - n / 2 + jitter[i]),
        { shape: s },
      ),
    );
}

/** A shape of rank 1–3 and an axis of it. */
const shapeAndAxis = shape({ minRank: 1, maxRank: 3 }).chain((s) =>
  fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 })),
);

describe("sort and argsort", () => {
  it("sort stably, ascending or descending, with NaN as the largest value", () => {
    // [3, 1, 2, 1]: the two 1s (positions 1 and 3) keep their order either way.
    const x = tensor([3, 1, 2, 1]);
    expect(values(sort(x).values)).toEqual([1, 1, 2, 3]);
    expect(values(sort(x).indices)).toEqual([1, 3, 2, 0]);
    expect(values(sort(x, { descending: true }).values)).toEqual([3, 2, 1, 1]);
    expect(values(sort(x, { descending: true }).indices)).toEqual([0, 2, 1, 3]);
    expect(values(argsort(x))).toEqual([1, 3, 2, 0]);
    // NaN last ascending, first descending (PyTorch's order).
    const withNaN = tensor([2, Number.NaN, 1, Number.NaN]);
    expect(values(argsort(withNaN))).toEqual([2, 0, 1, 3]);
    expect(values(argsort(withNaN, { descending: true }))).toEqual([1, 3, 0, 2]);
    expect(values(sort(withNaN).values)).toEqual([1, 2, Number.NaN, Number.NaN]);
    // -0 and 0 are equal: they keep their order.
    expect(values(argsort(tensor([0, -0, -1])))).toEqual([2, 0, 1]);
  });

  it("sort along any axis, of int32 too, and a scalar as itself", () => {
    const m = tensor(
      [
        [3, 9, 1],
        [2, 0, 5],
      ],
      { dtype: "int32" },
    );
    const byColumn = sort(m, { axis: 0 });
    expect(byColumn.values.toArray()).toEqual([
      [2, 0, 1],
      [3, 9, 5],
    ]);
    expect(byColumn.indices.toArray()).toEqual([
      [1, 1, 0],
      [0, 0, 1],
    ]);
    expect(byColumn.values.dtype).toBe("int32");
    expect(argsort(m, { axis: -1, descending: true }).toArray()).toEqual([
      [1, 0, 2],
      [2, 0, 1],
    ]);
    const scalar = sort(tensor(4));
    expect(scalar.values.shape).toEqual([]);
    expect(scalar.values.item()).toBe(4);
    expect(scalar.indices.item()).toBe(0);
    expect(argsort(zeros([2, 0])).shape).toEqual([2, 0]);
  });

  it("give a permutation that orders each run, for any shape and axis", () => {
    fc.assert(
      fc.property(
        shapeAndAxis.chain(([s, axis]) =>
          fc.tuple(
            fc.array(fc.integer({ min: -3, max: 3 }), {
              minLength: sizeOf(s),
              maxLength: sizeOf(s),
            }),
            fc.constant(s),
            fc.constant(axis),
            fc.boolean(),
          ),
        ),
        ([data, s, axis, descending]) => {
          const x = tensor(Float64Array.from(data), { shape: s });
          const { values: sorted, indices } = sort(x, { axis, descending });
          const ax = axis < 0 ? axis + s.length : axis;
          const inner = sizeOf(s.slice(ax + 1));
          const length = s[ax];
          for (let o = 0; o < sizeOf(s.slice(0, ax)); o++) {
            for (let i = 0; i < inner; i++) {
              const at = (k: number) => o * length * inner + k * inner + i;
              const seen = new Set<number>();
              for (let k = 0; k < length; k++) {
                const p = indices.data[at(k)];
                seen.add(p);
                expect(sorted.data[at(k)]).toBe(x.data[at(p)]);
                if (k > 0) {
                  const [prev, cur] = [sorted.data[at(k - 1)], sorted.data[at(k)]];
                  expect(descending ? prev >= cur : prev <= cur).toBe(true);
                  // Stable: equal values in increasing original position.
                  if (prev === cur) expect(indices.data[at(k - 1)]).toBeLessThan(p);
                }
              }
              expect(seen.size).toBe(length);
            }
          }
        },
      ),
      runs,
    );
  });

  it("have sort values whose gradient goes back to where each value came from (float64)", () => {
    // sort([0.3, 0.1, 0.2]) = [0.1, 0.2, 0.3] from positions [1, 2, 0]; upstream [1, 2, 3] goes
    // to those positions: [3, 1, 2].
    const x = f64([0.3, 0.1, 0.2], true);
    sort(x).values.backward(f64([1, 2, 3]));
    expect(values(x.grad!)).toEqual([3, 1, 2]);
    fc.assert(
      fc.property(
        shapeAndAxis.chain(([s, axis]) =>
          fc.tuple(distinctTensor(s), fc.constant(axis), fc.boolean()),
        ),
        ([x, axis, descending]) => {
          assertGradcheck((a) => sort(a, { axis, descending }).values, [x]);
        },
      ),
      runs,
    );
    fc.assert(
      fc.property(distinctTensor([2, 3]), (x) => {
        assertGradgradcheck((a) => mul(sort(a).values, sort(a, { axis: 0 }).values), [x]);
      }),
      { numRuns: 20 },
    );
  });
});

describe("topk", () => {
  it("chooses the k largest or smallest, earlier positions first among equals", () => {
    const x = tensor([0.1, 0.9, 0.5, 0.9]);
    const top = topk(x, 2);
    expect(values(top.values)).toEqual([Math.fround(0.9), Math.fround(0.9)]);
    expect(values(top.indices)).toEqual([1, 3]);
    const bottom = topk(x, 2, { largest: false });
    expect(values(bottom.indices)).toEqual([0, 2]);
    // Unsorted: the chosen three (positions 1, 3 and 2) in their original order.
    const unsorted = topk(x, 3, { sorted: false });
    expect(values(unsorted.indices)).toEqual([1, 2, 3]);
    expect(values(unsorted.values)).toEqual([0.9, 0.5, 0.9].map(Math.fround));
    // NaN is the largest value.
    expect(values(topk(tensor([1, Number.NaN, 3]), 2).indices)).toEqual([1, 2]);
    expect(values(topk(tensor([1, Number.NaN, 3]), 1, { largest: false }).indices)).toEqual([0]);
    expect(topk(x, 0).values.shape).toEqual([0]);
  });

  it("works along any axis and returns [..., k, ...]", () => {
    const m = f64([
      [4, 1, 7],
      [2, 8, 3],
    ]);
    const byRow = topk(m, 2);
    expect(byRow.values.toArray()).toEqual([
      [7, 4],
      [8, 3],
    ]);
    expect(byRow.indices.toArray()).toEqual([
      [2, 0],
      [1, 2],
    ]);
    const byColumn = topk(m, 1, { axis: 0, largest: false });
    expect(byColumn.values.toArray()).toEqual([[2, 1, 3]]);
    expect(byColumn.indices.toArray()).toEqual([[1, 0, 1]]);
  });

  it("agrees with the first k of a descending sort", () => {
    fc.assert(
      fc.property(
        shapeAndAxis.chain(([s, axis]) =>
          fc.tuple(
            fc.array(fc.integer({ min: -2, max: 2 }), {
              minLength: sizeOf(s),
              maxLength: sizeOf(s),
            }),
            fc.constant(s),
            fc.constant(axis),
            fc.integer({ min: 0, max: s[axis < 0 ? axis + s.length : axis] }),
            fc.boolean(),
          ),
        ),
        ([data, s, axis, k, largest]) => {
          const x = tensor(Int32Array.from(data), { shape: s });
          const ax = axis < 0 ? axis + s.length : axis;
          const { values: v, indices } = topk(x, k, { axis, largest });
          const full = sort(x, { axis, descending: largest });
          const begin = s.map(() => 0);
          const size = s.map((d, i) => (i === ax ? k : d));
          expect(values(indices)).toEqual(values(slice(full.indices, begin, size)));
          expect(values(v)).toEqual(values(slice(full.values, begin, size)));
        },
      ),
      runs,
    );
  });

  it("has values whose gradient goes to the chosen positions, 0 elsewhere (float64)", () => {
    // topk([0.1, 0.9, 0.5, 0.3], 2) takes positions 1 and 2; upstream [1, 2] lands there.
    const x = f64([0.1, 0.9, 0.5, 0.3], true);
    topk(x, 2).values.backward(f64([1, 2]));
    expect(values(x.grad!)).toEqual([0, 1, 2, 0]);
    fc.assert(
      fc.property(
        shapeAndAxis.chain(([s, axis]) =>
          fc.tuple(
            distinctTensor(s),
            fc.constant(axis),
            fc.integer({ min: 0, max: s[axis < 0 ? axis + s.length : axis] }),
            fc.boolean(),
            fc.boolean(),
          ),
        ),
        ([x, axis, k, largest, sorted]) => {
          assertGradcheck((a) => topk(a, k, { axis, largest, sorted }).values, [x]);
        },
      ),
      runs,
    );
    fc.assert(
      fc.property(distinctTensor([3, 4]), (x) => {
        assertGradgradcheck(
          (a) => {
            const v = topk(a, 2).values;
            return mul(v, v);
          },
          [x],
        );
      }),
      { numRuns: 20 },
    );
  });
});

describe("on pending inputs", () => {
  it("sort, argsort and topk give below and above the fusion threshold what they give eagerly", () => {
    for (const n of [1000, 20000]) {
      const raw = Float64Array.from({ length: n }, (_, i) => ((i * 7919) % 1009) - 500);
      const x = mul(add(tensor(raw), 1), 0.5); // pending from 16 384 elements on
      expect(x.isPending).toBe(n >= 16384);
      const reference = tensor(Float32Array.from(raw, (v) => (v + 1) * 0.5));
      expect(values(sort(x).values)).toEqual(values(sort(reference).values));
      expect(values(argsort(x, { descending: true }))).toEqual(
        values(argsort(reference, { descending: true })),
      );
      const top = topk(mul(add(tensor(raw), 1), 0.5), 10);
      expect(values(top.indices)).toEqual(values(topk(reference, 10).indices));
    }
  });
});

describe("errors", () => {
  it("name the op, the argument and what was expected", () => {
    expect(() => sort([1, 2] as unknown as Tensor)).toThrow(
      "sort: x must be a Tensor, got an array",
    );
    expect(() => argsort(tensor([true, false]))).toThrow(
      "argsort: x must be a numeric tensor, got bool",
    );
    expect(() => sort(tensor([1, 2]), { axis: 1 })).toThrow(
      "sort: axis 1 is out of range for a tensor of rank 1",
    );
    expect(() => topk(tensor([1, 2, 3]), 4)).toThrow(
      "topk: k = 4 is larger than axis 0 of x, of size 3 (expected 0 <= k <= 3)",
    );
    expect(() => topk(tensor([1, 2, 3]), -1)).toThrow("topk: k must be an integer >= 0, got -1");
    expect(() => topk(tensor([1, 2, 3]), 1.5)).toThrow("topk: k must be an integer >= 0, got 1.5");
    expect(() => topk(tensor(1), 1, { axis: 2 })).toThrow("topk: axis 2 is out of range");
  });
});
