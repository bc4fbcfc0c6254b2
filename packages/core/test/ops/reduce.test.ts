/** Tests of ops/reduce.ts: reductions over any axes, ties, NaN, stability, dtypes and errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  argmax,
  argmin,
  cumsum,
  logSoftmax,
  logSumExp,
  max,
  mean,
  min,
  mul,
  type ReduceOptions,
  reshape,
  softmax,
  sum,
  type Tensor,
  tensor,
} from "../../src/index.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  floatTensor,
  shape,
} from "../../src/testing/index.js";

const runs = { numRuns: 100 };
const f64 = (values: number[], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const values = (t: Tensor | null) => Array.from(t!.data);
const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function squared(f: (x: Tensor) => Tensor) {
  return (x: Tensor) => {
    const y = f(x);
    return mul(y, y);
  };
}

/** Options naming no axis, one axis (maybe negative) or a set of axes, with or without keepdims. */
function reduceOptions(rank: number): fc.Arbitrary<ReduceOptions> {
  const all = Array.from({ length: rank }, (_, i) => i);
  const axis = fc.oneof(
    fc.constant(undefined),
    ...(rank > 0 ? [fc.integer({ min: -rank, max: rank - 1 })] : []),
    fc.shuffledSubarray(all),
  );
  return fc.record({ axis, keepdims: fc.boolean() });
}

/** A float64 tensor and reduce options for it. */
const cases = shape({ maxSide: 3 }).chain((s) => fc.tuple(floatTensor(s), reduceOptions(s.length)));

/** Distinct values (a grid step of 1/40 apart): no ties for max and min to split. */
const untiedCases = shape({ maxSide: 3 }).chain((s) =>
  fc.tuple(
    fc
      .uniqueArray(fc.integer({ min: -80, max: 80 }), {
        minLength: sizeOf(s),
        maxLength: sizeOf(s),
      })
      .map((v) =>
        tensor(
          Float64Array.from(v, (k) => k / 40),
          { shape: s },
        ),
      ),
    reduceOptions(s.length),
  ),
);

describe("gradients (property, float64, random shapes and axes)", () => {
  it("sum: first and second order", () => {
    fc.assert(
      fc.property(cases, ([x, options]) => {
        assertGradcheck((y) => sum(y, options), [x]);
        assertGradgradcheck(
          squared((y) => sum(y, options)),
          [x],
        );
      }),
      runs,
    );
  });

  it("mean: first and second order", () => {
    fc.assert(
      fc.property(cases, ([x, options]) => {
        assertGradcheck((y) => mean(y, options), [x]);
        assertGradgradcheck(
          squared((y) => mean(y, options)),
          [x],
        );
      }),
      runs,
    );
  });

  it("max and min without ties: first and second order", () => {
    fc.assert(
      fc.property(untiedCases, ([x, options]) => {
        for (const op of [max, min]) {
          assertGradcheck((y) => op(y, options), [x]);
          assertGradgradcheck(
            squared((y) => op(y, options)),
            [x],
          );
        }
      }),
      runs,
    );
  });

  it("logSumExp: first and second order", () => {
    fc.assert(
      fc.property(cases, ([x, options]) => {
        assertGradcheck((y) => logSumExp(y, options), [x]);
        assertGradgradcheck((y) => logSumExp(y, options), [x]);
      }),
      runs,
    );
  });

  it("softmax and logSoftmax along any axis: first and second order", () => {
    const withAxis = shape({ minRank: 1, maxSide: 3 }).chain((s) =>
      fc.tuple(
        floatTensor(s, { min: -3, max: 3 }),
        fc.integer({ min: -s.length, max: s.length - 1 }),
      ),
    );
    fc.assert(
      fc.property(withAxis, ([x, axis]) => {
        for (const op of [softmax, logSoftmax]) {
          assertGradcheck((y) => op(y, axis), [x]);
          assertGradgradcheck((y) => op(y, axis), [x]);
        }
      }),
      runs,
    );
  });
});

describe("values", () => {
  const grid = tensor([
    [1, 2],
    [3, 4],
  ]);

  it("sum over each axis, all axes, negative axes and with keepdims", () => {
    expect(sum(grid).item()).toBe(10);
    expect(sum(grid, { axis: 0 }).toArray()).toEqual([4, 6]);
    expect(sum(grid, { axis: -1 }).toArray()).toEqual([3, 7]);
    expect(sum(grid, { axis: 1, keepdims: true }).toArray()).toEqual([[3], [7]]);
    expect(sum(grid, { axis: [0, 1], keepdims: true }).toArray()).toEqual([[10]]);
    expect(sum(grid, { axis: [] }).toArray()).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it("sums axes that are not next to each other", () => {
    // x[i][j][k] = 6i + 2j + k over [2, 3, 2]; summing i and k leaves Σ_{i,k} = 8j + 14.
    const x = reshape(tensor(Array.from({ length: 12 }, (_, i) => i)), [2, 3, 2]);
    expect(sum(x, { axis: [0, 2] }).toArray()).toEqual([14, 22, 30]);
    expect(sum(x, { axis: [2, 0], keepdims: true }).shape).toEqual([1, 3, 1]);
    // max over i and k is at i = 1, k = 1: 6 + 2j + 1.
    expect(max(x, { axis: [0, 2] }).toArray()).toEqual([7, 9, 11]);
    expect(min(x, { axis: [0, 2] }).toArray()).toEqual([0, 2, 4]);
  });

  it("mean, max and min", () => {
    expect(mean(tensor([1, 2, 3, 4])).item()).toBe(2.5);
    expect(mean(grid, { axis: 0 }).toArray()).toEqual([2, 3]);
    expect(
      max(
        tensor([
          [1, 5],
          [7, 2],
        ]),
        { axis: 1 },
      ).toArray(),
    ).toEqual([5, 7]);
    expect(
      min(
        tensor([
          [1, 5],
          [7, 2],
        ]),
        { axis: 0 },
      ).toArray(),
    ).toEqual([1, 2]);
    expect(max(tensor([-3, -1], { dtype: "int32" })).item()).toBe(-1);
  });

  it("logSumExp, softmax and logSoftmax by hand, without overflow", () => {
    // log(e¹⁰⁰⁰ + e¹⁰⁰⁰) = 1000 + log 2.
    expect(logSumExp(f64([1000, 1000])).item()).toBe(1000 + Math.LN2);
    expect(logSumExp(f64([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY])).item()).toBe(
      Number.NEGATIVE_INFINITY,
    );
    expect(softmax(tensor([[1, 1]])).toArray()).toEqual([[0.5, 0.5]]);
    // e⁰ / (e⁰ + e⁻¹⁰⁰⁰) = 1 exactly in floating point, and no NaN.
    expect(values(softmax(f64([1000, 0])))).toEqual([1, 0]);
    // log Σ e^(1,2,3) = 3 + log(1 + e⁻¹ + e⁻²).
    const lse = 3 + Math.log(1 + Math.exp(-1) + Math.exp(-2));
    const ls = values(logSoftmax(f64([1, 2, 3])));
    [1 - lse, 2 - lse, 3 - lse].forEach((v, i) => {
      expect(ls[i]).toBeCloseTo(v, 14);
    });
    // Along axis 0 of [[0, 0], [log 3, 0]]: column 0 is [1/4, 3/4], column 1 [1/2, 1/2].
    const s = values(softmax(reshape(f64([0, 0, Math.log(3), 0]), [2, 2]), 0));
    [0.25, 0.5, 0.75, 0.5].forEach((v, i) => {
      expect(s[i]).toBeCloseTo(v, 15);
    });
  });
});

describe("ties and NaN", () => {
  it("max and min share the gradient evenly among ties", () => {
    const x = f64([1, 3, 3], true);
    sum(max(x)).backward();
    expect(values(x.grad)).toEqual([0, 0.5, 0.5]);

    const y = tensor(
      [
        [2, 2],
        [1, 5],
      ],
      { dtype: "float64", requiresGrad: true },
    );
    // Row 0 ties (1/2 each); row 1 has one winner.
    sum(max(y, { axis: 1 })).backward();
    expect(y.grad!.toArray()).toEqual([
      [0.5, 0.5],
      [0, 1],
    ]);

    const z = f64([4, 4, 4, 4], true);
    sum(min(z)).backward();
    expect(values(z.grad)).toEqual([0.25, 0.25, 0.25, 0.25]);

    const w = f64([0, -2, -2], true);
    sum(mul(min(w), 3)).backward();
    expect(values(w.grad)).toEqual([0, 1.5, 1.5]);
  });

  it("max and min propagate NaN, along every path of the kernel", () => {
    const nan = Number.NaN;
    for (const op of [max, min]) {
      expect(op(tensor([1, nan, 3])).item()).toBeNaN();
      expect(op(tensor([nan, 1])).item()).toBeNaN();
      // Along the last axis (inner = 1) and along axis 0 (inner > 1).
      expect(
        values(
          op(
            tensor([
              [1, nan],
              [2, 3],
            ]),
            { axis: 1 },
          ),
        ),
      ).toEqual([nan, op === max ? 3 : 2]);
      expect(
        values(
          op(
            tensor([
              [nan, 1],
              [2, 3],
            ]),
            { axis: 0 },
          ),
        ),
      ).toEqual([nan, op === max ? 3 : 1]);
      expect(
        values(
          op(
            tensor([
              [2, 1],
              [nan, 3],
            ]),
            { axis: 0 },
          ),
        ),
      ).toEqual([nan, op === max ? 3 : 1]);
    }
  });
});

describe("dtypes", () => {
  it("sum of bool counts into int32; int32 sums to int32; floats keep their dtype", () => {
    const count = sum(tensor([true, false, true]));
    expect(count.dtype).toBe("int32");
    expect(count.item()).toBe(2);
    expect(sum(tensor([[true], [true]]), { axis: 0 }).toArray()).toEqual([2]);
    expect(sum(tensor([1, 2], { dtype: "int32" })).dtype).toBe("int32");
    expect(sum(tensor([1, 2], { dtype: "float32" })).dtype).toBe("float32");
    expect(mean(tensor([1, 2], { dtype: "float32" })).dtype).toBe("float32");
    expect(logSumExp(tensor([1, 2], { dtype: "float32" })).dtype).toBe("float32");
  });

  it("sums float32 in double precision before rounding once", () => {
    // 2²⁴ + 1 + 1 is exact in double; float32 steps of 1 would lose both ones (2²⁴ + 1 rounds down).
    const x = tensor([2 ** 24, 1, 1], { dtype: "float32" });
    expect(sum(x).item()).toBe(2 ** 24 + 2);
  });

  it("gradients come back in the input's dtype", () => {
    const x = tensor([1, 3], { dtype: "float32", requiresGrad: true });
    mean(x).backward();
    expect(x.grad!.dtype).toBe("float32");
    expect(values(x.grad)).toEqual([0.5, 0.5]);
  });
});

describe("errors", () => {
  const x = tensor([
    [1, 2],
    [3, 4],
  ]);

  it("bad axes name the op, the axis and the valid range", () => {
    expect(() => sum(x, { axis: 2 })).toThrow(
      "sum: axis 2 is out of range for a tensor of rank 2 (expected an integer in [-2, 1])",
    );
    expect(() => mean(x, { axis: -3 })).toThrow("mean: axis -3 is out of range");
    expect(() => max(x, { axis: 0.5 })).toThrow("max: axis 0.5 is out of range");
    expect(() => min(x, { axis: [0, -2] })).toThrow("min: axis 0 is repeated in [0, -2]");
    expect(() => logSumExp(x, { axis: [5] })).toThrow("logSumExp: axis 5 is out of range");
    expect(() => softmax(x, 2)).toThrow("softmax: axis 2 is out of range");
    expect(() => logSoftmax(x, -3)).toThrow("logSoftmax: axis -3 is out of range");
  });

  it("dtypes: float-only reductions reject integers; max and min reject bool", () => {
    const ints = tensor([1, 2], { dtype: "int32" });
    expect(() => mean(ints)).toThrow("mean: x must be float32 or float64, got int32");
    expect(() => logSumExp(ints)).toThrow("logSumExp: x must be float32 or float64, got int32");
    expect(() => softmax(ints)).toThrow("softmax: x must be float32 or float64, got int32");
    expect(() => logSoftmax(tensor([true]))).toThrow(
      "logSoftmax: x must be float32 or float64, got bool",
    );
    expect(() => max(tensor([true]))).toThrow("max: x must be a numeric tensor, got bool");
    expect(() => min(tensor([true]))).toThrow("min: x must be a numeric tensor, got bool");
  });

  it("max and min of an empty axis have no value", () => {
    const empty = tensor([], { shape: [2, 0] });
    expect(() => max(empty, { axis: 1 })).toThrow(
      "max: cannot reduce axis 1 of size 0 (shape [2, 0])",
    );
    expect(() => min(empty)).toThrow("min: cannot reduce axis 1 of size 0");
    expect(sum(empty, { axis: 1 }).toArray()).toEqual([0, 0]);
  });

  it("a number where a tensor is needed", () => {
    expect(() => sum(3 as unknown as Tensor)).toThrow("sum: x must be a Tensor, got number");
    expect(() => max([1] as unknown as Tensor)).toThrow("max: x must be a Tensor, got an array");
  });
});

describe("argmax and argmin", () => {
  it("give the first position of the extreme value, along an axis or of the flattened tensor", () => {
    const m = tensor([
      [1, 5, 5],
      [7, 2, 0],
    ]);
    // Row 0: 5 at positions 1 and 2, the first wins. Row 1: 7 at 0; its minimum 0 at 2.
    expect(values(argmax(m, { axis: 1 }))).toEqual([1, 0]);
    expect(values(argmin(m, { axis: -1 }))).toEqual([0, 2]);
    expect(values(argmax(m, { axis: 0 }))).toEqual([1, 0, 0]);
    expect(values(argmin(m, { axis: 0 }))).toEqual([0, 1, 1]);
    // Flattened: 7 is at flat position 3, 0 at 5.
    expect(argmax(m).item()).toBe(3);
    expect(argmax(m).shape).toEqual([]);
    expect(argmin(m).item()).toBe(5);
    expect(argmax(m, { axis: 1, keepdims: true }).shape).toEqual([2, 1]);
    expect(argmax(m, { keepdims: true }).shape).toEqual([1, 1]);
    expect(argmax(m).dtype).toBe("int32");
    expect(argmax(tensor(4)).item()).toBe(0);
    expect(argmax(tensor([3, -1, 3], { dtype: "int32" })).item()).toBe(0);
    expect(argmax(tensor([[], []]), { axis: 0 }).shape).toEqual([0]);
  });

  it("pick the first NaN, as PyTorch (NaN propagates like max and min)", () => {
    const x = tensor([1, Number.NaN, 7, Number.NaN, -3]);
    expect(argmax(x).item()).toBe(1);
    expect(argmin(x).item()).toBe(1);
    expect(
      values(
        argmax(
          tensor([
            [0, Number.NaN],
            [Number.NaN, 0],
          ]),
          { axis: 0 },
        ),
      ),
    ).toEqual([1, 0]);
  });

  it("agree with a scan for the first extreme, for any shape and axis", () => {
    fc.assert(
      fc.property(
        shape({ minRank: 1 }).chain((s) =>
          fc.tuple(
            fc.array(fc.integer({ min: -2, max: 2 }), {
              minLength: sizeOf(s),
              maxLength: sizeOf(s),
            }),
            fc.constant(s),
            fc.integer({ min: 0, max: s.length - 1 }),
          ),
        ),
        ([data, s, ax]) => {
          const x = tensor(Float64Array.from(data), { shape: s });
          const inner = sizeOf(s.slice(ax + 1));
          const got = [argmax(x, { axis: ax }), argmin(x, { axis: ax })];
          for (let o = 0; o < sizeOf(s.slice(0, ax)); o++) {
            for (let i = 0; i < inner; i++) {
              const run = Array.from(
                { length: s[ax] },
                (_, r) => data[(o * s[ax] + r) * inner + i],
              );
              expect(got[0].data[o * inner + i]).toBe(run.indexOf(Math.max(...run)));
              expect(got[1].data[o * inner + i]).toBe(run.indexOf(Math.min(...run)));
            }
          }
        },
      ),
      runs,
    );
  });

  it("read pending inputs below and above the fusion threshold", () => {
    for (const n of [1000, 20000]) {
      const raw = Float64Array.from({ length: n }, (_, i) => ((i * 7919) % 1009) - 500);
      const x = add(tensor(raw), 0.5); // pending from 16 384 elements on
      expect(x.isPending).toBe(n >= 16384);
      // The values are (i · 7919 mod 1009) − 499.5: the largest, 508.5, first where
      // i · 7919 ≡ 1008 (mod 1009), the smallest, −499.5, first at i = 0.
      const first = raw.indexOf(508);
      expect(argmax(x).item()).toBe(first);
      expect(argmin(x).item()).toBe(0);
    }
  });

  it("reject bool input, a bad axis and an empty axis", () => {
    expect(() => argmax(tensor([true]))).toThrow("argmax: x must be a numeric tensor, got bool");
    expect(() => argmin(tensor([1, 2]), { axis: 1 })).toThrow(
      "argmin: axis 1 is out of range for a tensor of rank 1",
    );
    expect(() => argmax(tensor([[], []]), { axis: 1 })).toThrow(
      "argmax: cannot reduce axis 1 of size 0 (shape [2, 0])",
    );
    expect(() => argmin(tensor([]))).toThrow("argmin: cannot reduce an empty tensor (shape [0])");
  });
});

describe("cumsum", () => {
  it("sums running along an axis; ints and bools sum to int32", () => {
    const m = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    // Along rows: 1, 1+2, 1+2+3; 4, 4+5, 4+5+6. Down columns: row 0, then row 0 + row 1.
    expect(cumsum(m, 1).toArray()).toEqual([
      [1, 3, 6],
      [4, 9, 15],
    ]);
    expect(cumsum(m, -2).toArray()).toEqual([
      [1, 2, 3],
      [5, 7, 9],
    ]);
    expect(cumsum(m, 1).dtype).toBe("float32");
    const counts = cumsum(tensor([true, false, true]), 0);
    expect(counts.dtype).toBe("int32");
    expect(values(counts)).toEqual([1, 1, 2]);
    expect(cumsum(tensor(5), 0).item()).toBe(5);
    expect(cumsum(tensor([[], []]), 1).shape).toEqual([2, 0]);
    // float32 accumulates in double: 2^24 + 1 + 1 in double is 2^24 + 2, exactly a float32.
    expect(values(cumsum(tensor([2 ** 24, 1, 1]), 0))).toEqual([2 ** 24, 2 ** 24, 2 ** 24 + 2]);
  });

  it("has the reversed running sum as gradient", () => {
    // d/dx_i sum_j w_j · cumsum(x)_j = w_i + … + w_last: for w = [1, 2, 3], [6, 5, 3].
    const x = f64([0.5, -1, 2], true);
    cumsum(x, 0).backward(f64([1, 2, 3]));
    expect(values(x.grad!)).toEqual([6, 5, 3]);
  });

  it("has the right first and second derivatives along any axis (float64)", () => {
    const cases = shape({ minRank: 1 }).chain((s) =>
      fc.tuple(floatTensor(s), fc.integer({ min: -s.length, max: s.length - 1 })),
    );
    fc.assert(
      fc.property(cases, ([x, axis]) => {
        assertGradcheck((a) => cumsum(a, axis), [x]);
      }),
      runs,
    );
    fc.assert(
      fc.property(cases, ([x, axis]) => {
        assertGradgradcheck(
          squared((a) => cumsum(a, axis)),
          [x],
        );
      }),
      { numRuns: 30 },
    );
  });

  it("reads pending inputs below and above the fusion threshold", () => {
    for (const n of [1000, 20000]) {
      const x = add(tensor(new Float64Array(n).fill(0.5)), 0.5); // ones, pending when large
      expect(x.isPending).toBe(n >= 16384);
      const running = cumsum(x, 0);
      expect(running.data[n - 1]).toBe(n);
      expect(running.data[99]).toBe(100);
    }
  });

  it("rejects a missing or bad axis", () => {
    expect(() => cumsum(tensor([1]), undefined as unknown as number)).toThrow(
      "cumsum: axis must be a number (PyTorch's dim is required), got undefined",
    );
    expect(() => cumsum(tensor([1]), 1)).toThrow("cumsum: axis 1 is out of range");
    expect(() => cumsum([1] as unknown as Tensor, 0)).toThrow("cumsum: x must be a Tensor");
  });
});
