/** Tests of ops/shape.ts: every shape op's gradient, values by hand, and errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  arange,
  broadcastTo,
  concat,
  expandDims,
  meshgrid,
  mul,
  ones,
  pad,
  permute,
  reshape,
  slice,
  squeeze,
  stack,
  sum,
  type Tensor,
  tensor,
  tile,
  transpose,
  zeros,
} from "../../src/index.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  floatTensor,
  shape,
} from "../../src/testing/index.js";

const runs = { numRuns: 100 };
const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** 0, 1, 2, … in `shape`, float64: every element names its own row-major position. */
const counting = (s: number[]) => reshape(tensor(Float64Array.from(range(sizeOf(s)))), s);

/** Checks a linear op to first order, and to second order through its square. */
function checkLinear(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  assertGradcheck(f, inputs);
  assertGradgradcheck((...xs: Tensor[]) => {
    const y = f(...xs);
    return mul(y, y);
  }, inputs);
}

const small = { maxSide: 3 };

describe("gradients (property, float64, random shapes)", () => {
  it("reshape (reordered sides, flattened, or with an inferred -1): first and second order", () => {
    const cases = shape(small).chain((s) => {
      const reordered = fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length });
      const target = fc.oneof(
        fc.constant([sizeOf(s)]),
        reordered.map((t) => [...t, 1]),
        reordered.chain((t) =>
          t.length === 0
            ? fc.constant<number[]>([-1])
            : fc
                .integer({ min: 0, max: t.length - 1 })
                .map((i) => t.map((d, k) => (k === i ? -1 : d))),
        ),
      );
      return fc.tuple(floatTensor(s), target);
    });
    fc.assert(
      fc.property(cases, ([x, target]) => checkLinear((y) => reshape(y, target), [x])),
      runs,
    );
  });

  it("permute: first and second order", () => {
    const cases = shape(small).chain((s) =>
      fc.tuple(
        floatTensor(s),
        fc.shuffledSubarray(range(s.length), { minLength: s.length, maxLength: s.length }),
      ),
    );
    fc.assert(
      fc.property(cases, ([x, perm]) => checkLinear((y) => permute(y, perm), [x])),
      runs,
    );
  });

  it("transpose of any two axes: first and second order", () => {
    const cases = shape({ ...small, minRank: 2 }).chain((s) => {
      const axis = fc.integer({ min: -s.length, max: s.length - 1 });
      return fc.tuple(floatTensor(s), axis, axis);
    });
    fc.assert(
      fc.property(cases, ([x, a, b]) => checkLinear((y) => transpose(y, a, b), [x])),
      runs,
    );
  });

  it("expandDims and squeeze: first and second order", () => {
    const cases = shape(small).chain((s) =>
      fc.tuple(floatTensor(s), fc.integer({ min: -s.length - 1, max: s.length })),
    );
    fc.assert(
      fc.property(cases, ([x, axis]) => {
        checkLinear((y) => expandDims(y, axis), [x]);
        checkLinear((y) => squeeze(expandDims(y, axis), axis), [x]);
        checkLinear((y) => squeeze(y), [x]);
      }),
      runs,
    );
  });

  it("concat of 1–3 tensors along any axis: first and second order", () => {
    const cases = shape({ ...small, minRank: 1 }).chain((s) =>
      fc
        .integer({ min: -s.length, max: s.length - 1 })
        .chain((axis) =>
          fc
            .array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 })
            .chain((sizes) =>
              fc.tuple(
                fc.tuple(
                  ...sizes.map((d) =>
                    floatTensor(
                      s.map((side, k) => (k === (axis + s.length) % s.length ? d : side)),
                    ),
                  ),
                ),
                fc.constant(axis),
              ),
            ),
        ),
    );
    fc.assert(
      fc.property(cases, ([parts, axis]) => checkLinear((...xs) => concat(xs, axis), parts)),
      runs,
    );
  });

  it("stack of 1–3 tensors along any new axis: first and second order", () => {
    const cases = shape(small).chain((s) =>
      fc.tuple(
        fc.array(floatTensor(s), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: -s.length - 1, max: s.length }),
      ),
    );
    fc.assert(
      fc.property(cases, ([parts, axis]) => checkLinear((...xs) => stack(xs, axis), parts)),
      runs,
    );
  });

  it("slice: first and second order", () => {
    const cases = shape(small).chain((s) =>
      fc.tuple(
        floatTensor(s),
        fc.tuple(
          ...s.map((d) =>
            fc
              .integer({ min: 0, max: d - 1 })
              .chain((b) =>
                fc.tuple(
                  fc.constant(b),
                  fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: d - b })),
                ),
              ),
          ),
        ),
      ),
    );
    fc.assert(
      fc.property(cases, ([x, bounds]) => {
        const begin = bounds.map(([b]) => b);
        const size = bounds.map(([, n]) => n);
        checkLinear((y) => slice(y, begin, size), [x]);
      }),
      runs,
    );
  });

  it("pad with any value: first and second order", () => {
    const cases = shape(small).chain((s) =>
      fc.tuple(
        floatTensor(s),
        fc.tuple(...s.map(() => fc.tuple(fc.nat(2), fc.nat(2)))),
        fc.double({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true }),
      ),
    );
    fc.assert(
      fc.property(cases, ([x, padding, value]) => checkLinear((y) => pad(y, padding, value), [x])),
      runs,
    );
  });

  it("broadcastTo: first and second order", () => {
    const cases = shape(small).chain((full) =>
      fc
        .tuple(
          fc.integer({ min: 0, max: full.length }),
          fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
        )
        .map(([drop, ones]) => full.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)))
        .chain((s) => fc.tuple(floatTensor(s), fc.constant(full))),
    );
    fc.assert(
      fc.property(cases, ([x, target]) => checkLinear((y) => broadcastTo(y, target), [x])),
      runs,
    );
  });
});

describe("values", () => {
  it("reshape keeps the row-major order and shares the data", () => {
    const x = counting([2, 3]);
    const y = reshape(x, [3, -1]);
    expect(y.shape).toEqual([3, 2]);
    expect(y.toArray()).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(y.data).toBe(x.data);
    expect(reshape(x, [2, 3])).toBe(x);
    expect(reshape(tensor([7]), []).shape).toEqual([]);
  });

  it("permute and transpose move elements by hand", () => {
    // [2, 3] → [3, 2]: out[j][i] = x[i][j].
    expect(permute(counting([2, 3]), [1, 0]).toArray()).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    // x[i][j][k] = 4i + 2j + k over [2, 2, 2]; perm [2, 0, 1] gives out[k][i][j].
    expect(permute(counting([2, 2, 2]), [2, 0, 1]).toArray()).toEqual([
      [
        [0, 2],
        [4, 6],
      ],
      [
        [1, 3],
        [5, 7],
      ],
    ]);
    expect(transpose(zeros([5, 2, 3])).shape).toEqual([5, 3, 2]);
    expect(transpose(counting([2, 1, 3]), 0, 2).toArray()).toEqual([[[0, 3]], [[1, 4]], [[2, 5]]]);
    const v = tensor([1, 2]);
    expect(transpose(v)).toBe(v);
  });

  it("expandDims and squeeze", () => {
    expect(expandDims(zeros([3]), 0).shape).toEqual([1, 3]);
    expect(expandDims(zeros([3]), -1).shape).toEqual([3, 1]);
    expect(squeeze(zeros([1, 3, 1])).shape).toEqual([3]);
    expect(squeeze(zeros([1, 3, 1]), 0).shape).toEqual([3, 1]);
    expect(squeeze(zeros([1, 3, 1]), [-1, 0]).shape).toEqual([3]);
  });

  it("concat and stack by hand", () => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = tensor([[5], [6]]);
    expect(concat([a, b], 1).toArray()).toEqual([
      [1, 2, 5],
      [3, 4, 6],
    ]);
    expect(concat([a, tensor([[7, 8]])], -2).toArray()).toEqual([
      [1, 2],
      [3, 4],
      [7, 8],
    ]);
    expect(stack([tensor([1, 2]), tensor([3, 4])], 1).toArray()).toEqual([
      [1, 3],
      [2, 4],
    ]);
    expect(stack([tensor([1, 2]), tensor([3, 4])]).toArray()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(concat([zeros([0, 2]), ones([1, 2])]).toArray()).toEqual([[1, 1]]);
  });

  it("concat sends each input its own block of the gradient", () => {
    const a = tensor([[1], [2]], { dtype: "float64", requiresGrad: true });
    const b = tensor(
      [
        [3, 4],
        [5, 6],
      ],
      { dtype: "float64", requiresGrad: true },
    );
    // Weights w = [[1, 2, 3], [4, 5, 6]]: a gets column 0, b columns 1 and 2.
    const w = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { dtype: "float64" },
    );
    sum(mul(concat([a, b], 1), w)).backward();
    expect(a.grad!.toArray()).toEqual([[1], [4]]);
    expect(b.grad!.toArray()).toEqual([
      [2, 3],
      [5, 6],
    ]);
  });

  it("slice and pad by hand, and slice's gradient is the padded upstream", () => {
    const x = counting([3, 4]);
    // Rows 1–2, columns 1 to the end.
    expect(slice(x, [1, 1], [2, -1]).toArray()).toEqual([
      [5, 6, 7],
      [9, 10, 11],
    ]);
    expect(slice(x, [0, 0], [-1, -1])).toBe(x);
    expect(
      pad(
        tensor([[1, 2]]),
        [
          [1, 0],
          [0, 2],
        ],
        -1,
      ).toArray(),
    ).toEqual([
      [-1, -1, -1, -1],
      [1, 2, -1, -1],
    ]);
    expect(pad(tensor(5), []).item()).toBe(5);

    const y = tensor([1, 2, 3, 4], { dtype: "float64", requiresGrad: true });
    sum(mul(slice(y, [1], [2]), tensor([10, 20], { dtype: "float64" }))).backward();
    expect(Array.from(y.grad!.data)).toEqual([0, 10, 20, 0]);
  });

  it("broadcastTo copies along new and size-1 axes", () => {
    expect(broadcastTo(tensor([1, 2]), [3, 2]).toArray()).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    expect(broadcastTo(tensor([[1], [2]]), [2, 3]).toArray()).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
    const x = tensor([[1], [2]], { dtype: "float64", requiresGrad: true });
    // Each element is copied 3 times: gradient 3.
    sum(broadcastTo(x, [2, 2, 3])).backward();
    expect(x.grad!.toArray()).toEqual([[6], [6]]);
  });

  it("keeps the dtype, bool and int32 included", () => {
    const flags = tensor([true, false]);
    expect(reshape(flags, [2, 1]).dtype).toBe("bool");
    expect(concat([flags, flags]).toArray()).toEqual([true, false, true, false]);
    expect(pad(arange(2), [[1, 1]]).toArray()).toEqual([0, 0, 1, 0]);
    expect(permute(tensor([[true, false]]), [1, 0]).toArray()).toEqual([[true], [false]]);
  });
});

describe("errors", () => {
  const x = zeros([2, 3]);

  it("bad reshape names both shapes and their sizes", () => {
    expect(() => reshape(x, [4, 2])).toThrow(
      "reshape: cannot reshape [2, 3] (6 elements) into [4, 2] (8)",
    );
    expect(() => reshape(x, [-1, -1])).toThrow(
      "reshape: shape [-1, -1] must hold non-negative integers and at most one -1",
    );
    expect(() => reshape(x, [1.5, 4])).toThrow("must hold non-negative integers");
    expect(() => reshape(x, [4, -1])).toThrow(
      "reshape: cannot infer the -1 in [4, -1] for 6 elements",
    );
    expect(() => reshape(x, [0, -1])).toThrow("reshape: cannot infer the -1 in [0, -1]");
  });

  it("bad axes and permutations", () => {
    expect(() => permute(x, [0, 0])).toThrow(
      "permute: [0, 0] is not a permutation of the 2 axes of [2, 3]",
    );
    expect(() => permute(x, [0])).toThrow("permute: [0] is not a permutation");
    expect(() => permute(x, [0, 2])).toThrow(
      "permute: axis 2 is out of range for a tensor of rank 2",
    );
    expect(() => transpose(x, 0, 2)).toThrow("transpose: axis 2 is out of range");
    expect(() => expandDims(x, 3)).toThrow(
      "expandDims: axis 3 is out of range for a tensor of rank 3 (expected an integer in [-3, 2])",
    );
    expect(() => squeeze(x, 0)).toThrow("squeeze: axis 0 of [2, 3] has size 2, not 1");
    expect(() => squeeze(x, 2)).toThrow("squeeze: axis 2 is out of range");
    expect(() => stack([x], 3)).toThrow("stack: axis 3 is out of range");
  });

  it("concat and stack mismatches name the offending tensor and shapes", () => {
    expect(() => concat([x, zeros([2, 2]), zeros([3, 3])], 0)).toThrow(
      "concat: tensors[1] has shape [2, 2], which does not match [2, 3] outside axis 0",
    );
    expect(() => concat([x, zeros([2])])).toThrow(
      "concat: tensors[1] has shape [2], which does not match [2, 3] outside axis 0",
    );
    expect(() => concat([x, zeros([2, 3], { dtype: "float64" })])).toThrow(
      "concat: tensors[1] is float64 but tensors[0] is float32; cast them to one dtype",
    );
    expect(() => concat([])).toThrow("concat: expected a non-empty array of tensors");
    expect(() => concat([x], 2)).toThrow("concat: axis 2 is out of range");
    expect(() => stack([x, zeros([3, 2])])).toThrow(
      "stack: tensors[1] has shape [3, 2] but tensors[0] has [2, 3]",
    );
    expect(() => stack([])).toThrow("stack: expected a non-empty array of tensors");
    expect(() => concat([x, 1 as unknown as Tensor])).toThrow(
      "concat: tensors[1] must be a Tensor, got number",
    );
  });

  it("slice and pad out of bounds", () => {
    expect(() => slice(x, [1, 0], [2, 3])).toThrow(
      "slice: begin 1 with size 2 does not fit in axis 0 of [2, 3]",
    );
    expect(() => slice(x, [-1, 0], [1, 1])).toThrow("slice: begin -1 with size 1 does not fit");
    expect(() => slice(x, [0], [1])).toThrow(
      "slice: begin [0] and size [1] must each have one entry per axis of [2, 3]",
    );
    expect(() => pad(x, [[0, 0]])).toThrow(
      "pad: padding needs one [before, after] pair per axis of [2, 3], got 1",
    );
    expect(() =>
      pad(x, [
        [0, -1],
        [0, 0],
      ]),
    ).toThrow("pad: padding[0][1] must be an integer >= 0, got -1");
  });

  it("broadcastTo an incompatible or smaller shape", () => {
    expect(() => broadcastTo(x, [3, 3])).toThrow(
      "broadcastTo: shapes [2, 3] and [3, 3] cannot be broadcast together",
    );
    expect(() => broadcastTo(x, [3])).toThrow("broadcastTo: [2, 3] cannot be broadcast to [3]");
  });

  it("a number where a tensor is needed", () => {
    expect(() => reshape(1 as unknown as Tensor, [1])).toThrow(
      "reshape: x must be a Tensor, got number",
    );
    expect(() => slice([1, 2] as unknown as Tensor, [0], [1])).toThrow(
      "slice: x must be a Tensor, got an array",
    );
  });
});

describe("meshgrid", () => {
  it('makes grids with matrix ("ij") or Cartesian ("xy") indexing', () => {
    const rows = tensor([0, 1]);
    const cols = tensor([10, 20, 30]);
    // "ij": both [2, 3]; the first varies down the rows, the second along the columns.
    const [ii, jj] = meshgrid([rows, cols]);
    expect(ii.toArray()).toEqual([
      [0, 0, 0],
      [1, 1, 1],
    ]);
    expect(jj.toArray()).toEqual([
      [10, 20, 30],
      [10, 20, 30],
    ]);
    // "xy" with x = cols, y = rows: both [2, 3] = [len(y), len(x)], x along the columns.
    const [xs, ys] = meshgrid([cols, rows], { indexing: "xy" });
    expect(xs.toArray()).toEqual(jj.toArray());
    expect(ys.toArray()).toEqual(ii.toArray());
    // Three inputs, "xy": shape [n1, n0, n2] = [3, 2, 1].
    const three = meshgrid([rows, cols, tensor(7)], { indexing: "xy" });
    expect(three.map((t) => t.shape)).toEqual([
      [3, 2, 1],
      [3, 2, 1],
      [3, 2, 1],
    ]);
    expect(three[0].toArray()).toEqual([
      [[0], [1]],
      [[0], [1]],
      [[0], [1]],
    ]);
    expect(meshgrid([tensor([1, 2])])[0].toArray()).toEqual([1, 2]);
  });

  it("is differentiable: each input's gradient sums over the other axes (float64)", () => {
    const grid = (indexing: "ij" | "xy") => (x: Tensor, y: Tensor) => {
      const [gx, gy] = meshgrid([x, y], { indexing });
      return mul(gx, add(gy, gx));
    };
    const cases = fc.tuple(
      floatTensor([2]),
      floatTensor([3]),
      fc.constantFrom("ij", "xy") as fc.Arbitrary<"ij" | "xy">,
    );
    fc.assert(
      fc.property(cases, ([a, b, indexing]) => {
        assertGradcheck(grid(indexing), [a, b]);
      }),
      runs,
    );
    fc.assert(
      fc.property(cases, ([a, b, indexing]) => {
        assertGradgradcheck(grid(indexing), [a, b]);
      }),
      { numRuns: 20 },
    );
  });

  it("gives grids below and above the fusion threshold that hold their inputs' values", () => {
    for (const [n, m] of [
      [20, 30],
      [20000, 3],
    ]) {
      const x = add(tensor(Float64Array.from({ length: n }, (_, i) => i)), 0.5); // pending when large
      expect(x.isPending).toBe(n >= 16384);
      const y = tensor(Float64Array.from({ length: m }, (_, j) => 7 + j));
      const [gx, gy] = meshgrid([x, y]);
      const [xs, ys] = meshgrid([x, y], { indexing: "xy" });
      expect(gx.shape).toEqual([n, m]);
      expect(xs.shape).toEqual([m, n]);
      const gxv = gx.read();
      const gyv = gy.read();
      const xsv = xs.read();
      const ysv = ys.read();
      let ok = true;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < m; j++) {
          ok &&= gxv[i * m + j] === i + 0.5 && gyv[i * m + j] === 7 + j;
          ok &&= xsv[j * n + i] === i + 0.5 && ysv[j * n + i] === 7 + j;
        }
      }
      expect(ok).toBe(true);
    }
  });

  it("rejects an empty list, tensors of rank above 1 and an unknown indexing", () => {
    expect(() => meshgrid([])).toThrow("meshgrid: expected a non-empty array of 1-D tensors");
    expect(() => meshgrid([zeros([2, 2])])).toThrow(
      "meshgrid: tensors[0] must be 1-D (or a scalar), got shape [2, 2]",
    );
    expect(() => meshgrid([zeros([2])], { indexing: "ji" as "ij" })).toThrow(
      'meshgrid: indexing must be "ij" or "xy", got "ji"',
    );
  });
});

describe("tile", () => {
  it("repeats along each axis, padding reps or x's shape with leading 1s", () => {
    expect(tile(tensor([1, 2]), [2]).toArray()).toEqual([1, 2, 1, 2]);
    const m = tensor([
      [1, 2],
      [3, 4],
    ]);
    expect(tile(m, [2, 1]).toArray()).toEqual([
      [1, 2],
      [3, 4],
      [1, 2],
      [3, 4],
    ]);
    // reps shorter than the rank: [3] means [1, 3].
    expect(tile(m, [3]).toArray()).toEqual([
      [1, 2, 1, 2, 1, 2],
      [3, 4, 3, 4, 3, 4],
    ]);
    // reps longer: x is seen as [1, 2, 2].
    expect(tile(m, [2, 1, 1]).shape).toEqual([2, 2, 2]);
    expect(tile(m, [0, 1]).shape).toEqual([0, 2]);
    expect(tile(tensor(5), [3]).toArray()).toEqual([5, 5, 5]);
  });

  it("has the right first and second derivatives: the gradient sums over the copies (float64)", () => {
    // Three copies of [a, b]: each element's gradient is 3.
    const x = tensor([0.5, -1], { dtype: "float64", requiresGrad: true });
    sum(tile(x, [3])).backward();
    expect(Array.from(x.grad!.data)).toEqual([3, 3]);
    const cases = shape(small).chain((s) =>
      fc.tuple(floatTensor(s), fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 4 })),
    );
    fc.assert(
      fc.property(cases, ([t, reps]) => {
        assertGradcheck((y) => tile(y, reps), [t]);
      }),
      runs,
    );
    fc.assert(
      fc.property(cases, ([t, reps]) => checkLinear((y) => tile(y, reps), [t])),
      { numRuns: 30 },
    );
  });

  it("gives below and above the fusion threshold what it gives on a materialised input", () => {
    for (const n of [1000, 20000]) {
      const raw = Float64Array.from({ length: n }, (_, i) => i % 13);
      const x = add(tensor(raw), 1); // pending from 16 384 elements on
      expect(x.isPending).toBe(n >= 16384);
      const tiled = tile(x, [2]);
      expect(tiled.data[n + 5]).toBe((5 % 13) + 1);
      expect(tiled.data[n - 1]).toBe(((n - 1) % 13) + 1);
    }
  });

  it("rejects reps that are not non-negative integers", () => {
    expect(() => tile(zeros([2]), [-1])).toThrow("tile: reps[0] must be an integer >= 0, got -1");
    expect(() => tile(zeros([2]), [1.5])).toThrow("tile: reps[0] must be an integer >= 0, got 1.5");
    expect(() => tile(zeros([2]), 2 as unknown as number[])).toThrow(
      "tile: reps must be an array of repetition counts, got number",
    );
  });
});
