/** Tests of ops/selection.ts: where, argwhere, gather/gatherNd and their scatter-add adjoints. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  argwhere,
  equal,
  gather,
  gatherNd,
  log,
  mul,
  oneHot,
  scatterAdd,
  scatterAlongAxis,
  scatterNd,
  sum,
  type Tensor,
  takeAlongAxis,
  tensor,
  where,
} from "../../src/index.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  floatTensor,
  indexTensor,
  shape,
} from "../../src/testing/index.js";

const runs = { numRuns: 100 };
const f64 = (values: number[], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const int32 = (values: number[] | number[][]) => tensor(values, { dtype: "int32" });
const values = (t: Tensor | null) => Array.from(t!.data);
const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** f followed by squaring: a linear op's second derivative then goes through its rule's rule. */
function squared(f: (...xs: Tensor[]) => Tensor) {
  return (...xs: Tensor[]) => {
    const y = f(...xs);
    return mul(y, y);
  };
}

/** A shape that broadcasts to `full`: some leading axes dropped, some others set to 1. */
function sideOf(full: number[]) {
  return fc
    .tuple(
      fc.integer({ min: 0, max: full.length }),
      fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
    )
    .map(([drop, ones]) => full.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
}

const boolTensor = (s: number[]) =>
  fc
    .array(fc.boolean(), { minLength: sizeOf(s), maxLength: sizeOf(s) })
    .map((bits) => tensor(Uint8Array.from(bits, Number), { shape: s }));

/** int32 indices of shape [...rows, m] into the first m axes of `into`, biased to repeat. */
function ndIndices(into: readonly number[]) {
  return fc
    .tuple(fc.integer({ min: 1, max: into.length }), shape({ minRank: 1, maxRank: 2, maxSide: 3 }))
    .chain(([m, rows]) =>
      fc
        .array(fc.tuple(...into.slice(0, m).map((d) => fc.integer({ min: 0, max: d - 1 }))), {
          minLength: sizeOf(rows),
          maxLength: sizeOf(rows),
        })
        .map((tuples) => tensor(Int32Array.from(tuples.flat()), { shape: [...rows, m] })),
    );
}

describe("gradients (property, float64, random shapes, repeated indices)", () => {
  it("where: first and second order in both branches, all three broadcasting", () => {
    const cases = shape({ maxSide: 3 }).chain((full) =>
      fc.tuple(
        sideOf(full).chain(boolTensor),
        floatTensor(sideOf(full)),
        floatTensor(sideOf(full)),
      ),
    );
    fc.assert(
      fc.property(cases, ([cond, a, b]) => {
        const f = (x: Tensor, y: Tensor) => where(cond, x, y);
        assertGradcheck(f, [a, b]);
        assertGradgradcheck(squared(f), [a, b]);
      }),
      runs,
    );
  });

  it("gather along any axis: first and second order", () => {
    const cases = shape({ minRank: 1, maxSide: 3 }).chain((xShape) =>
      fc
        .tuple(
          fc.integer({ min: -xShape.length, max: xShape.length - 1 }),
          shape({ maxRank: 2, maxSide: 3 }),
        )
        .chain(([axis, idxShape]) => {
          const size = xShape[axis < 0 ? axis + xShape.length : axis];
          return fc.tuple(floatTensor(xShape), indexTensor(size, idxShape), fc.constant(axis));
        }),
    );
    fc.assert(
      fc.property(cases, ([x, indices, axis]) => {
        const f = (y: Tensor) => gather(y, indices, axis);
        assertGradcheck(f, [x]);
        assertGradgradcheck(squared(f), [x]);
      }),
      runs,
    );
  });

  it("gatherNd: first and second order", () => {
    const cases = shape({ minRank: 1, maxSide: 3 }).chain((xShape) =>
      fc.tuple(floatTensor(xShape), ndIndices(xShape)),
    );
    fc.assert(
      fc.property(cases, ([x, indices]) => {
        const f = (y: Tensor) => gatherNd(y, indices);
        assertGradcheck(f, [x]);
        assertGradgradcheck(squared(f), [x]);
      }),
      runs,
    );
  });

  it("scatterAdd: first and second order in the updates", () => {
    const cases = shape({ minRank: 1, maxSide: 3 }).chain((into) =>
      fc
        .tuple(fc.integer({ min: 0, max: into.length - 1 }), shape({ maxRank: 2, maxSide: 3 }))
        .chain(([axis, idxShape]) => {
          const updateShape = [...into.slice(0, axis), ...idxShape, ...into.slice(axis + 1)];
          return fc.tuple(
            indexTensor(into[axis], idxShape),
            floatTensor(updateShape),
            fc.constant({ axis, into }),
          );
        }),
    );
    fc.assert(
      fc.property(cases, ([indices, updates, { axis, into }]) => {
        const f = (u: Tensor) => scatterAdd(indices, u, axis, into);
        assertGradcheck(f, [updates]);
        assertGradgradcheck(squared(f), [updates]);
      }),
      runs,
    );
  });

  it("scatterNd: first and second order in the updates", () => {
    const cases = shape({ minRank: 1, maxSide: 3 }).chain((into) =>
      ndIndices(into).chain((indices) => {
        const m = indices.shape[indices.rank - 1];
        const updateShape = [...indices.shape.slice(0, -1), ...into.slice(m)];
        return fc.tuple(fc.constant(indices), floatTensor(updateShape), fc.constant(into));
      }),
    );
    fc.assert(
      fc.property(cases, ([indices, updates, into]) => {
        const f = (u: Tensor) => scatterNd(indices, u, into);
        assertGradcheck(f, [updates]);
        assertGradgradcheck(squared(f), [updates]);
      }),
      runs,
    );
  });
});

describe("where", () => {
  it("selects with broadcasting and sends each side its own gradient", () => {
    const cond = tensor([[true], [false]]);
    const a = f64([1, 2, 3], true);
    const b = tensor([[10], [20]], { dtype: "float64", requiresGrad: true });
    const y = where(cond, a, b);
    // Row 0 takes a, row 1 takes b[1] broadcast along the row.
    expect(y.toArray()).toEqual([
      [1, 2, 3],
      [20, 20, 20],
    ]);
    sum(mul(y, f64([1, 2, 3]))).backward();
    // a is selected in row 0 only: [1, 2, 3]. b[0] is never selected: exactly 0; b[1] gets 1+2+3.
    expect(values(a.grad)).toEqual([1, 2, 3]);
    expect(b.grad!.toArray()).toEqual([[0], [6]]);
  });

  it("the unselected side gets an exact 0, and the double where keeps log finite", () => {
    const x = f64([0, 2, -1], true);
    const ok = equal(x, 2);
    // log(x) would be −∞ and NaN at x = 0 and −1; the inner where feeds log a safe 1 there.
    const y = where(ok, log(where(ok, x, 1)), 0);
    expect(values(y)).toEqual([0, Math.LN2, 0]);
    sum(y).backward();
    expect(values(x.grad)).toEqual([0, 0.5, 0]);
  });

  it("takes plain numbers with the tensor's dtype", () => {
    const cond = tensor([true, false]);
    const y = where(cond, tensor([1.5, 2.5], { dtype: "float64" }), 0);
    expect(y.dtype).toBe("float64");
    expect(y.toArray()).toEqual([1.5, 0]);
    expect(where(cond, 7, tensor([1, 2], { dtype: "int32" })).toArray()).toEqual([7, 2]);
  });

  it("needs a bool condition and shapes that broadcast", () => {
    const x = tensor([1, 2]);
    expect(() => where(tensor([1, 0]), x, x)).toThrow(
      "where: cond must be a bool tensor, got float32",
    );
    expect(() => where(tensor([true, false, true]), x, tensor([[1], [2]]))).toThrow(
      "where: shapes [3] and [2] and [2, 1] cannot be broadcast together",
    );
    expect(() => where(true as unknown as Tensor, x, x)).toThrow(
      "where: cond must be a Tensor, got boolean",
    );
  });
});

describe("argwhere", () => {
  it("lists true coordinates in row-major order", () => {
    const cond = tensor([
      [false, true, true],
      [true, false, false],
    ]);
    // Row 0 first (columns 1 then 2), then row 1.
    const idx = argwhere(cond);
    expect(idx.dtype).toBe("int32");
    expect(idx.toArray()).toEqual([
      [0, 1],
      [0, 2],
      [1, 0],
    ]);
  });

  it("walks the last axis fastest in 3-D", () => {
    const cond = tensor([
      [
        [false, true],
        [true, false],
      ],
      [
        [true, false],
        [false, true],
      ],
    ]);
    expect(argwhere(cond).toArray()).toEqual([
      [0, 0, 1],
      [0, 1, 0],
      [1, 0, 0],
      [1, 1, 1],
    ]);
  });

  it("treats non-zero numbers as true and gives [0, rank] when nothing holds", () => {
    expect(argwhere(tensor([0, 3, 0, -1], { dtype: "int32" })).toArray()).toEqual([[1], [3]]);
    const none = argwhere(tensor([false, false]));
    expect(none.shape).toEqual([0, 1]);
  });

  it("finds the objects of the seed's anchor states", () => {
    // state [B = 2, N = 3]: -1 ignore, 0 background, 1 object.
    const state = tensor(
      [
        [1, -1, 0],
        [0, 1, 1],
      ],
      { dtype: "int32" },
    );
    expect(argwhere(equal(state, 1)).toArray()).toEqual([
      [0, 0],
      [1, 1],
      [1, 2],
    ]);
  });

  it("a number where a tensor is needed", () => {
    expect(() => argwhere(1 as unknown as Tensor)).toThrow(
      "argwhere: cond must be a Tensor, got number",
    );
  });

  it("gathers through its hits by their flat positions, or by coordinates into another shape", () => {
    const x = tensor(
      Array.from({ length: 18 }, (_, i) => i),
      { shape: [3, 3, 2], dtype: "float64" },
    );
    // A mask of x's own leading shape [3, 3]: hits [0, 2] and [2, 1], rows x[0, 2] = [4, 5] and
    // x[2, 1] = [14, 15] (flat positions 2 and 7, times the row width 2).
    const own = argwhere(
      tensor([false, false, true, false, false, false, false, true, false], { shape: [3, 3] }),
    );
    expect(gatherNd(x, own).toArray()).toEqual([
      [4, 5],
      [14, 15],
    ]);
    // The same hits of a [2, 3] mask index x by coordinates: [0, 2] → [4, 5], [1, 1] → [8, 9].
    const other = argwhere(
      tensor([
        [false, false, true],
        [false, true, false],
      ]),
    );
    expect(gatherNd(x, other).toArray()).toEqual([
      [4, 5],
      [8, 9],
    ]);
    // … and are checked there: column 2 is out of range for a [2, 2] tensor.
    expect(() =>
      gatherNd(
        tensor([
          [1, 2],
          [3, 4],
        ]),
        other,
      ),
    ).toThrow(
      "gatherNd: index 2 at indices[0][1] is out of range for axis 1 of size 2 (indexed shape [2, 2])",
    );
    expect(own.toArray()).toEqual([
      [0, 2],
      [2, 1],
    ]);
  });
});

describe("gather and scatterAdd", () => {
  it("gathers with repeated indices; the gradient scatter-adds them", () => {
    const x = f64([10, 20, 30], true);
    const y = gather(x, int32([2, 0, 2]));
    expect(values(y)).toEqual([30, 10, 30]);
    sum(mul(y, f64([1, 2, 3]))).backward();
    // x[0] is picked once (weight 2), x[1] never, x[2] twice (weights 1 + 3).
    expect(values(x.grad)).toEqual([2, 0, 4]);
  });

  it("gathers along an inner axis with a 2-D index", () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    // out[o][i][j] = x[o][idx[i][j]]: shape [2] + [2, 2].
    const y = gather(
      x,
      int32([
        [0, 0],
        [2, 1],
      ]),
      1,
    );
    expect(y.shape).toEqual([2, 2, 2]);
    expect(y.toArray()).toEqual([
      [
        [1, 1],
        [3, 2],
      ],
      [
        [4, 4],
        [6, 5],
      ],
    ]);
    // Negative axes count from the end; a scalar index drops the axis.
    expect(gather(x, tensor(1, { dtype: "int32" }), -1).toArray()).toEqual([2, 5]);
    expect(gather(x, int32([1]), 0).toArray()).toEqual([[4, 5, 6]]);
  });

  it("scatterAdd accumulates repeated indices", () => {
    expect(scatterAdd(int32([0, 0]), tensor([1, 2]), 0, [3]).toArray()).toEqual([3, 0, 0]);
    // Along axis 1 of [2, 3]: column 2 gets both columns of each row.
    const y = scatterAdd(
      int32([2, 2]),
      tensor([
        [1, 2],
        [3, 4],
      ]),
      1,
      [2, 3],
    );
    expect(y.toArray()).toEqual([
      [0, 0, 3],
      [0, 0, 7],
    ]);
  });

  it("gather keeps integer and bool dtypes", () => {
    expect(gather(tensor([true, false]), int32([1, 1])).toArray()).toEqual([false, false]);
    expect(gather(tensor([5, 6], { dtype: "int32" }), int32([1])).dtype).toBe("int32");
  });

  it("needs int32 indices in range and a valid axis", () => {
    const x = tensor([10, 20, 30]);
    expect(() => gather(x, tensor([0, 1]))).toThrow(
      'gather: indices must be an int32 tensor, got float32; convert it with cast(indices, "int32")',
    );
    expect(() => gather(x, int32([0, 3]))).toThrow(
      "gather: index 3 (at position 1 of indices) is out of range for axis 0 of x (shape [3]) of size 3",
    );
    expect(() => gather(x, int32([-1]))).toThrow("gather: index -1");
    expect(() => gather(x, int32([0]), 1)).toThrow(
      "gather: axis 1 is out of range for a tensor of rank 1 (expected an integer in [-1, 0])",
    );
    expect(() => gather(1 as unknown as Tensor, int32([0]))).toThrow(
      "gather: x must be a Tensor, got number",
    );
  });

  it("scatterAdd checks the updates' shape, the indices' dtype and range", () => {
    expect(() => scatterAdd(int32([0, 1]), tensor([1, 2, 3]), 0, [3])).toThrow(
      "scatterAdd: updates must have shape [2] for indices [2] into [3] along axis 0, got [3]",
    );
    expect(() => scatterAdd(tensor([0]), tensor([1]), 0, [3])).toThrow(
      "scatterAdd: indices must be an int32 tensor, got float32",
    );
    expect(() => scatterAdd(int32([5]), tensor([1]), 0, [3])).toThrow(
      "scatterAdd: index 5 (at position 0 of indices) is out of range",
    );
    expect(() => scatterAdd(int32([0]), tensor([1]), 1, [3])).toThrow(
      "scatterAdd: axis 1 is out of range for a tensor of rank 1",
    );
  });
});

describe("gatherNd and scatterNd", () => {
  it("gathers elements with repeated index rows; the gradient scatter-adds them", () => {
    const x = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { dtype: "float64", requiresGrad: true },
    );
    const y = gatherNd(
      x,
      int32([
        [1, 0],
        [1, 0],
        [0, 2],
      ]),
    );
    // x[1][0] twice, then x[0][2].
    expect(values(y)).toEqual([4, 4, 3]);
    sum(mul(y, f64([1, 2, 3]))).backward();
    // x[1][0] collects weights 1 + 2, x[0][2] weight 3, everything else 0.
    expect(x.grad!.toArray()).toEqual([
      [0, 0, 3],
      [3, 0, 0],
    ]);
  });

  it("gathers whole slices when indices are shorter than the rank", () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(gatherNd(x, int32([[1], [0], [1]])).toArray()).toEqual([
      [4, 5, 6],
      [1, 2, 3],
      [4, 5, 6],
    ]);
    // Leading index axes are kept: [2, 1, 2] indices → shape [2, 1].
    expect(gatherNd(x, tensor([[[0, 1]], [[1, 2]]], { dtype: "int32" })).toArray()).toEqual([
      [2],
      [6],
    ]);
  });

  it("scatterNd accumulates repeated indices", () => {
    expect(scatterNd(int32([[1], [1]]), tensor([2, 3]), [3]).toArray()).toEqual([0, 5, 0]);
    const rows = scatterNd(
      int32([[0], [0]]),
      tensor([
        [1, 2],
        [3, 4],
      ]),
      [2, 2],
    );
    expect(rows.toArray()).toEqual([
      [4, 6],
      [0, 0],
    ]);
  });

  it("needs int32 indices of a usable shape, in range", () => {
    const x = tensor([
      [1, 2],
      [3, 4],
    ]);
    expect(() => gatherNd(x, tensor([[0, 1]]))).toThrow(
      "gatherNd: indices must be an int32 tensor, got float32",
    );
    expect(() => gatherNd(x, int32([[0, 2]]))).toThrow(
      "gatherNd: index 2 at indices[0][1] is out of range for axis 1 of size 2 (indexed shape [2, 2])",
    );
    expect(() => gatherNd(x, int32([[0, 0, 0]]))).toThrow(
      "gatherNd: the last axis of indices (3) is longer than the rank of the indexed shape [2, 2]",
    );
    expect(() => gatherNd(x, tensor(0, { dtype: "int32" }))).toThrow(
      "gatherNd: indices must have rank >= 1, got a scalar",
    );
    expect(() => gatherNd([[1]] as unknown as Tensor, int32([[0]]))).toThrow(
      "gatherNd: x must be a Tensor, got an array",
    );
  });

  it("scatterNd checks the updates' shape", () => {
    expect(() => scatterNd(int32([[1], [0]]), tensor([1, 2, 3]), [3])).toThrow(
      "scatterNd: updates must have shape [2] for indices [2, 1] into [3], got float32 tensor of shape [3]",
    );
    expect(() => scatterNd(int32([[3]]), tensor([1]), [3])).toThrow(
      "scatterNd: index 3 at indices[0][0] is out of range for axis 0 of size 3",
    );
  });
});

describe("takeAlongAxis and scatterAlongAxis", () => {
  it("take one entry per position along an axis, and scatter-add back", () => {
    // Row 0 takes columns 2 and 0 (30, 10); row 1 takes column 1 twice (50, 50).
    const m = tensor(
      [
        [10, 20, 30],
        [40, 50, 60],
      ],
      { dtype: "float64" },
    );
    const idx = int32([
      [2, 0],
      [1, 1],
    ]);
    expect(takeAlongAxis(m, idx, 1).toArray()).toEqual([
      [30, 10],
      [50, 50],
    ]);
    // Along axis 0: column j takes row idx[0][j].
    expect(takeAlongAxis(m, int32([[1, 0, 1]]), 0).toArray()).toEqual([[40, 20, 60]]);
    // Scattering [[1, 2], [3, 4]] back: row 0 puts 1 in column 2 and 2 in column 0; row 1 puts
    // 3 and 4 both in column 1, which add up to 7.
    const updates = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: "float64" },
    );
    expect(scatterAlongAxis(idx, updates, 1, [2, 3]).toArray()).toEqual([
      [2, 0, 1],
      [0, 7, 0],
    ]);
  });

  it("have each other as gradients, repeated indices accumulating (float64)", () => {
    const cases = fc
      .tuple(shape({ minRank: 1, maxRank: 3 }), fc.integer({ min: 1, max: 3 }))
      .chain(([s, count]) =>
        fc.integer({ min: 0, max: s.length - 1 }).chain((ax) => {
          const idxShape = s.map((d, i) => (i === ax ? count : d));
          return fc.tuple(
            floatTensor(s),
            indexTensor(s[ax], idxShape),
            floatTensor(idxShape),
            fc.constant(ax),
          );
        }),
      );
    fc.assert(
      fc.property(cases, ([x, idx, updates, ax]) => {
        assertGradcheck((a) => takeAlongAxis(a, idx, ax), [x]);
        assertGradcheck((u) => scatterAlongAxis(idx, u, ax, x.shape), [updates]);
      }),
      runs,
    );
    fc.assert(
      fc.property(cases, ([x, idx, updates, ax]) => {
        assertGradgradcheck(
          squared((a) => takeAlongAxis(a, idx, ax)),
          [x],
        );
        assertGradgradcheck(
          squared((u) => scatterAlongAxis(idx, u, ax, x.shape)),
          [updates],
        );
      }),
      { numRuns: 30 },
    );
  });

  it("reject indices out of range or of the wrong shape", () => {
    const x = f64([1, 2, 3]);
    expect(() => takeAlongAxis(x, int32([3]), 0)).toThrow(
      "takeAlongAxis: index 3 (at position 0 of indices) is out of range for axis 0 of shape [3] of size 3",
    );
    expect(() => takeAlongAxis(tensor([[1, 2]]), int32([0]), 1)).toThrow(
      "takeAlongAxis: indices of shape [1] must match [1, 2] on every axis but axis 1",
    );
    expect(() => takeAlongAxis(x, tensor([0]), 0)).toThrow(
      "takeAlongAxis: indices must be an int32 tensor, got float32",
    );
    expect(() => scatterAlongAxis(int32([0]), f64([1, 2]), 0, [3])).toThrow(
      "scatterAlongAxis: updates must have the shape of indices [1], got float64 tensor of shape [2]",
    );
  });
});

describe("takeAlongAxis and oneHot on pending inputs", () => {
  it("give below and above the fusion threshold what they give on materialised inputs", () => {
    for (const n of [1000, 20000]) {
      const raw = Int32Array.from({ length: n }, (_, i) => (i * 31) % 7);
      // int32 + int32 stays int32; pending from 16 384 elements on.
      const labels = add(tensor(raw), tensor(0, { dtype: "int32" }));
      expect(labels.isPending).toBe(n >= 16384);
      const hot = oneHot(labels, 7);
      const want = new Int32Array(7 * n);
      raw.forEach((c, i) => {
        want[7 * i + c] = 1;
      });
      expect(hot.shape).toEqual([n, 7]);
      expect(hot.read().every((v, i) => v === want[i])).toBe(true);
      // Each row of [n, 2] takes its second column when its label is odd.
      const x = add(
        tensor(
          Float64Array.from({ length: 2 * n }, (_, i) => i),
          { shape: [n, 2] },
        ),
        0,
      );
      expect(x.isPending).toBe(2 * n >= 16384);
      const picked = takeAlongAxis(
        x,
        tensor(
          Int32Array.from(raw, (c) => c % 2),
          { shape: [n, 1] },
        ),
        1,
      );
      expect(picked.read().every((v, i) => v === 2 * i + (raw[i] % 2))).toBe(true);
    }
  });
});

describe("oneHot", () => {
  it("puts a 1 at each index along a new last axis", () => {
    const hot = oneHot(int32([0, 2]), 3);
    expect(hot.dtype).toBe("int32");
    expect(hot.toArray()).toEqual([
      [1, 0, 0],
      [0, 0, 1],
    ]);
    // numClasses inferred as the largest index + 1 = 2; any shape of indices; another dtype.
    const grid = oneHot(int32([[1], [0]]), undefined, { dtype: "float32" });
    expect(grid.shape).toEqual([2, 1, 2]);
    expect(grid.dtype).toBe("float32");
    expect(grid.toArray()).toEqual([[[0, 1]], [[1, 0]]]);
    expect(oneHot(int32([]), 4).shape).toEqual([0, 4]);
  });

  it("rejects indices out of range, a bad numClasses, float indices and an unknown dtype", () => {
    expect(() => oneHot(int32([0, 3]), 3)).toThrow(
      "oneHot: index 3 (at position 1 of indices) is out of range for numClasses = 3 (expected 0 <= index < 3)",
    );
    expect(() => oneHot(int32([-1]), 3)).toThrow("oneHot: index -1 (at position 0 of indices)");
    expect(() => oneHot(int32([0]), 0)).toThrow(
      "oneHot: numClasses must be an integer >= 1, got 0",
    );
    expect(() => oneHot(int32([]))).toThrow(
      "oneHot: cannot infer numClasses from empty indices; pass numClasses",
    );
    expect(() => oneHot(tensor([0, 1]), 2)).toThrow(
      "oneHot: indices must be an int32 tensor, got float32",
    );
    expect(() => oneHot(int32([0]), 2, { dtype: "int64" as "int32" })).toThrow(
      'oneHot: unknown dtype "int64"',
    );
  });
});
