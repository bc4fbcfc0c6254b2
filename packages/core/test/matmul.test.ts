import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DenseBackend,
  getBackend,
  matmul,
  setBackend,
  sum,
  type Tensor,
  tensor,
  transpose,
} from "../src/index.js";
import { matmulTransposed } from "../src/ops/matmul.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../src/testing/index.js";
import { BACKENDS, describeOnBackends, filled, WASM_BACKENDS } from "./backends.js";

/** The textbook triple loop, in float64, through the same (offset, row stride, column stride) reads. */
function reference(
  m: number,
  n: number,
  k: number,
  a: ArrayLike<number>,
  aRow: number,
  aCol: number,
  b: ArrayLike<number>,
  bRow: number,
  bCol: number,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * aRow + p * aCol] * b[p * bRow + j * bCol];
      c[i * n + j] = s;
    }
  return c;
}

describeOnBackends(
  "gemm kernel",
  ({ gemm }) => {
    it("matches the triple loop for every transposition, across block and tile edges", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 70 }),
          fc.integer({ min: 1, max: 70 }),
          fc.integer({ min: 1, max: 300 }),
          fc.boolean(),
          fc.boolean(),
          (m, n, k, ta, tb) => {
            const a = filled(m * k, m + 7 * k);
            const b = filled(k * n, n + 3 * k);
            const [aRow, aCol] = ta ? [1, m] : [k, 1];
            const [bRow, bCol] = tb ? [1, k] : [n, 1];
            const c = new Float64Array(m * n);
            gemm(m, n, k, a, 0, aRow, aCol, b, 0, bRow, bCol, c, 0, n);
            const expected = reference(m, n, k, a, aRow, aCol, b, bRow, bCol);
            for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(expected[i], 10);
          },
        ),
        { numRuns: 30 },
      );
    });

    it("crosses the KC, MC and NC block boundaries (130 × 600 · 600 × 9 and 5 × 3 · 3 × 1100)", () => {
      for (const [m, n, k] of [
        [130, 9, 600],
        [5, 1100, 3],
      ]) {
        const a = filled(m * k, 1);
        const b = filled(k * n, 2);
        const c = new Float64Array(m * n);
        gemm(m, n, k, a, 0, k, 1, b, 0, n, 1, c, 0, n);
        const expected = reference(m, n, k, a, k, 1, b, n, 1);
        for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(expected[i], 9);
      }
    });

    it("handles vector-shaped products (m = 1 or n = 1) in every transposition", () => {
      for (const [m, n, k] of [
        [1, 300, 200],
        [300, 1, 200],
        [1, 1, 50],
      ]) {
        for (const [ta, tb] of [
          [false, false],
          [true, false],
          [false, true],
          [true, true],
        ]) {
          const a = filled(m * k, 3);
          const b = filled(k * n, 4);
          const [aRow, aCol] = ta ? [1, m] : [k, 1];
          const [bRow, bCol] = tb ? [1, k] : [n, 1];
          const c = new Float64Array(m * n);
          gemm(m, n, k, a, 0, aRow, aCol, b, 0, bRow, bCol, c, 0, n);
          const expected = reference(m, n, k, a, aRow, aCol, b, bRow, bCol);
          for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(expected[i], 10);
        }
      }
    });

    it("accumulates into C, honours offsets and writes float32 output", () => {
      // A = [[1, 2], [3, 4]] stored after one junk element; B = I; C starts at 10:
      // C = 10 + A · I = [[11, 12], [13, 14]].
      const a = new Float32Array([99, 1, 2, 3, 4]);
      const b = new Float32Array([1, 0, 0, 1]);
      const c = new Float32Array([10, 10, 10, 10]);
      gemm(2, 2, 2, a, 1, 2, 1, b, 0, 2, 1, c, 0, 2);
      expect([...c]).toEqual([11, 12, 13, 14]);
    });
  },
  [BACKENDS[0], ...WASM_BACKENDS],
);

describeOnBackends("matmul", () => {
  it("computes [[1, 2], [3, 4]] @ [[5], [6]] = [[17], [39]] (1·5 + 2·6, 3·5 + 4·6)", () => {
    const out = matmul(
      tensor([
        [1, 2],
        [3, 4],
      ]),
      tensor([[5], [6]]),
    );
    expect(out.toArray()).toEqual([[17], [39]]);
  });

  it("has the right first and second derivatives, batched and broadcast", () => {
    const shapes = fc
      .tuple(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom([], [2], [2, 1]),
        fc.constantFrom([], [2], [1, 2]),
      )
      .chain(([m, k, n, ba, bb]) =>
        fc.tuple(floatTensor([...ba, m, k]), floatTensor([...bb, k, n])),
      );
    fc.assert(
      fc.property(shapes, ([a, b]) => {
        assertGradcheck((x, y) => matmul(x, y), [a, b]);
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(shapes, ([a, b]) => {
        assertGradgradcheck((x, y) => matmul(x, y), [a, b]);
      }),
      { numRuns: 30 },
    );
  });

  it("reads transposed operands without copies, with gradients of every order", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        floatTensor([2, 3]),
        floatTensor([3, 2]),
        (ta, tb, a0, b0) => {
          // Shape the operands so that op(a) is [2, 3] and op(b) is [3, 2].
          const a = ta ? transpose(a0).detach() : a0;
          const b = tb ? transpose(b0).detach() : b0;
          const f = (x: Tensor, y: Tensor) => matmulTransposed("matmul", x, y, ta, tb);
          const expected = matmul(ta ? transpose(a) : a, tb ? transpose(b) : b);
          const got = f(a, b);
          got.data.forEach((v, i) => {
            expect(v).toBeCloseTo(expected.data[i], 12);
          });
          assertGradcheck(f, [a, b]);
          assertGradgradcheck(f, [a, b]);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("computes float32 at float32 precision and mixed float32/float64 in float64", () => {
    const a = tensor([[1.5, 2]], { dtype: "float32" });
    const b = tensor([[2], [0.25]], { dtype: "float64" });
    const out = matmul(a, b);
    expect(out.dtype).toBe("float64");
    expect(out.item()).toBe(3.5);
    expect(matmul(a, tensor([[2], [0.25]])).dtype).toBe("float32");
  });

  it("rejects vectors, naming both shapes", () => {
    expect(() => matmul(tensor([1, 2]), tensor([[1], [2]]))).toThrow(
      "matmul: both operands need rank >= 2, got [2] and [2, 1]",
    );
  });

  it("rejects different inner sizes, naming both shapes", () => {
    expect(() => matmul(tensor([[1, 2]]), tensor([[1, 2]]))).toThrow(
      "matmul: inner sizes differ: [1, 2] @ [1, 2] (2 vs 1",
    );
  });

  it("rejects integer operands", () => {
    expect(() => matmul(tensor([[1]], { dtype: "int32" }), tensor([[1]]))).toThrow(
      "matmul: a must be float32 or float64, got int32",
    );
  });

  it("rejects batch axes that do not broadcast", () => {
    expect(() =>
      matmul(
        tensor(new Float32Array(12), { shape: [3, 2, 2] }),
        tensor(new Float32Array(8), { shape: [2, 2, 2] }),
      ),
    ).toThrow("matmul: shapes [3] and [2] cannot be broadcast together");
  });
});

describe("dense backend seam", () => {
  it("routes matmul and its backward pass through the current backend", () => {
    const calls: string[] = [];
    const base = getBackend();
    const traced: DenseBackend = {
      ...base,
      name: "traced",
      gemm: (...args) => {
        calls.push("gemm");
        base.gemm(...args);
      },
    };
    const previous = setBackend(traced);
    try {
      const a = tensor([[1, 2]], { requiresGrad: true });
      sum(matmul(a, tensor([[3], [4]]))).backward();
      expect(a.grad?.toArray()).toEqual([[3, 4]]);
      expect(calls).toEqual(["gemm", "gemm"]);
      expect(getBackend().name).toBe("traced");
    } finally {
      setBackend(previous);
    }
    expect(getBackend()).toBe(base);
  });

  it("rejects a backend with a missing kernel", () => {
    const { conv2d: _, ...partial } = getBackend();
    expect(() => setBackend(partial as unknown as DenseBackend)).toThrow(
      "setBackend: backend.conv2d must be a function, got undefined",
    );
  });
});
