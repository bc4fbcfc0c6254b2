/** Tests of the public `matmul`: gradients, values against a naive product, batching, dtypes, errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { matmul, sum, type Tensor, tensor } from "../../src/index.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  broadcastPair,
  floatTensor,
} from "../../src/testing/index.js";
import { describeOnBackends } from "../backends.js";

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Operands [...batchA, m, k] and [...batchB, k, n] with broadcasting batch shapes. */
function operands(maxBatchSide: number, maxSide: number) {
  const side = fc.integer({ min: 1, max: maxSide });
  return fc
    .tuple(broadcastPair({ maxRank: 2, maxSide: maxBatchSide }), side, side, side)
    .chain(([[batchA, batchB], m, k, n]) =>
      fc.tuple(floatTensor([...batchA, m, k]), floatTensor([...batchB, k, n])),
    );
}

/** The textbook triple loop, with NumPy broadcasting of the batch axes. */
function naiveMatmul(a: Tensor, b: Tensor): { shape: number[]; values: number[] } {
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.rank - 1];
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const padA = [...new Array(rank - batchA.length).fill(1), ...batchA];
  const padB = [...new Array(rank - batchB.length).fill(1), ...batchB];
  const batch = padA.map((d, i) => Math.max(d, padB[i]));
  const values: number[] = [];
  for (let t = 0; t < sizeOf(batch); t++) {
    // Decompose t into batch coordinates, then find each operand's matrix (size-1 axes repeat).
    let rest = t;
    let offA = 0;
    let offB = 0;
    let strideA = 1;
    let strideB = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const coord = rest % batch[d];
      rest = Math.floor(rest / batch[d]);
      offA += (padA[d] === 1 ? 0 : coord) * strideA;
      offB += (padB[d] === 1 ? 0 : coord) * strideB;
      strideA *= padA[d];
      strideB *= padB[d];
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++)
          acc += a.data[offA * m * k + i * k + p] * b.data[offB * k * n + p * n + j];
        values.push(acc);
      }
    }
  }
  return { shape: [...batch, m, n], values };
}

describeOnBackends("gradients (property, float64, broadcast batches)", () => {
  it("matmul: first and second order in both operands", () => {
    fc.assert(
      fc.property(operands(2, 3), ([a, b]) => {
        assertGradcheck(matmul, [a, b]);
        assertGradgradcheck(matmul, [a, b]);
      }),
      { numRuns: 100 },
    );
  });
});

describeOnBackends("values", () => {
  it("agrees with the textbook product on sizes across the kernel's tile edges", () => {
    fc.assert(
      fc.property(operands(3, 9), ([a, b]) => {
        const expected = naiveMatmul(a, b);
        const out = matmul(a, b);
        expect(out.shape).toEqual(expected.shape);
        const got = Array.from(out.data);
        expected.values.forEach((v, i) => {
          expect(Math.abs(got[i] - v)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(v)));
        });
      }),
      { numRuns: 100 },
    );
  });

  it("multiplies 2×2 matrices by hand", () => {
    // [1 2; 3 4] · [5 6; 7 8] = [1·5+2·7, 1·6+2·8; 3·5+4·7, 3·6+4·8].
    const y = matmul(
      tensor([
        [1, 2],
        [3, 4],
      ]),
      tensor([
        [5, 6],
        [7, 8],
      ]),
    );
    expect(y.toArray()).toEqual([
      [19, 22],
      [43, 50],
    ]);
  });

  it("broadcasts a matrix against a batch", () => {
    // Each batch entry of a picks one row of b: e0 · b = b[0], e1 · b = b[1].
    const a = tensor([[[1, 0]], [[0, 1]]]);
    const b = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const y = matmul(a, b);
    expect(y.shape).toEqual([2, 1, 3]);
    expect(y.toArray()).toEqual([[[1, 2, 3]], [[4, 5, 6]]]);
    expect(
      matmul(
        tensor(new Float32Array(8 * 2 * 3), { shape: [8, 1, 2, 3] }),
        tensor(new Float32Array(4 * 3 * 5), { shape: [4, 3, 5] }),
      ).shape,
    ).toEqual([8, 4, 2, 5]);
  });

  it("sums the gradient of a broadcast operand over the batch", () => {
    const a = tensor([[[1, 0]], [[0, 1]]], { dtype: "float64" });
    const b = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { dtype: "float64", requiresGrad: true },
    );
    // d/db Σ (a_t · b) = Σ_t a_tᵀ · 1 = [[1, 1, 1], [1, 1, 1]] (each row of b used once).
    sum(matmul(a, b)).backward();
    expect(b.grad!.toArray()).toEqual([
      [1, 1, 1],
      [1, 1, 1],
    ]);
  });

  it("mixes float32 and float64 into float64; gradients come back in each input's dtype", () => {
    const a = tensor([[1, 2]], { dtype: "float32", requiresGrad: true });
    const b = tensor([[3], [4]], { dtype: "float64", requiresGrad: true });
    const y = matmul(a, b);
    expect(y.dtype).toBe("float64");
    expect(y.item()).toBe(11);
    y.backward();
    // dy/da = bᵀ, dy/db = aᵀ.
    expect(a.grad!.dtype).toBe("float32");
    expect(a.grad!.toArray()).toEqual([[3, 4]]);
    expect(b.grad!.dtype).toBe("float64");
    expect(b.grad!.toArray()).toEqual([[1], [2]]);
    expect(matmul(tensor([[1]]), tensor([[2]])).dtype).toBe("float32");
  });
});

describe("errors", () => {
  it("an inner-size mismatch names both shapes", () => {
    expect(() =>
      matmul(
        tensor(new Float32Array(6), { shape: [2, 3] }),
        tensor(new Float32Array(20), { shape: [4, 5] }),
      ),
    ).toThrow(
      "matmul: inner sizes differ: [2, 3] @ [4, 5] (3 vs 4; expected [..., m, k] @ [..., k, n])",
    );
  });

  it("needs rank >= 2, floats, and batch shapes that broadcast", () => {
    const v = tensor([1, 2]);
    const m = tensor([[1], [2]]);
    expect(() => matmul(v, m)).toThrow(
      "matmul: both operands need rank >= 2, got [2] and [2, 1] (use reshape or expandDims for vectors)",
    );
    expect(() => matmul(tensor([[1]], { dtype: "int32" }), m)).toThrow(
      "matmul: a must be float32 or float64, got int32",
    );
    expect(() => matmul(m, tensor([[true]]))).toThrow(
      "matmul: b must be float32 or float64, got bool",
    );
    const a = tensor(new Float32Array(2 * 1 * 1), { shape: [2, 1, 1] });
    const b = tensor(new Float32Array(3 * 1 * 1), { shape: [3, 1, 1] });
    expect(() => matmul(a, b)).toThrow("matmul: shapes [2] and [3] cannot be broadcast together");
    expect(() => matmul(m, 2 as unknown as Tensor)).toThrow(
      "matmul: b must be a Tensor, got number",
    );
  });
});
