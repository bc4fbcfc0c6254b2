/** Tests of ops/crossentropy.ts: Keras BCE on probabilities (clip edges in both floats) and BCE on logits. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bceWithLogits,
  binaryCrossEntropy,
  grad,
  sum,
  type Tensor,
  tensor,
} from "../../src/index.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  broadcastPair,
  floatTensor,
  type TensorConstraints,
} from "../../src/testing/index.js";

const runs = { numRuns: 100 };
const f64 = (values: number[], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const f32 = (values: number[], requiresGrad = false) =>
  tensor(values, { dtype: "float32", requiresGrad });
const values = (t: Tensor | null) => Array.from(t!.data);

/** The float32 next to `x` (positive, not at the end of the range) in direction `step`. */
function nextFloat32(x: number, step: 1 | -1): number {
  const bits = new Int32Array(new Float32Array([x]).buffer);
  bits[0] += step;
  return new Float32Array(bits.buffer)[0];
}

function operands(a: TensorConstraints, b: TensorConstraints) {
  return broadcastPair({ maxSide: 3 }).chain(([sa, sb]) =>
    fc.tuple(floatTensor(sa, a), floatTensor(sb, b)),
  );
}

function checkBothOrders(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  assertGradcheck(f, inputs);
  assertGradgradcheck(f, inputs);
}

describe("gradients (property, float64, broadcasting)", () => {
  it("binaryCrossEntropy inside the clip: first and second order in target and pred", () => {
    // Targets include exact 0 and 1 (fast-check favours the bounds): the one-log forward paths.
    const cases = operands({ min: 0, max: 1 }, { min: 0.05, max: 0.95 });
    fc.assert(
      fc.property(cases, ([target, pred]) =>
        checkBothOrders((y, p) => binaryCrossEntropy(y, p), [target, pred]),
      ),
      runs,
    );
  });

  it("bceWithLogits: first and second order in logits and targets", () => {
    const cases = operands({ min: -4, max: 4 }, { min: 0, max: 1 });
    fc.assert(
      fc.property(cases, ([logits, targets]) => checkBothOrders(bceWithLogits, [logits, targets])),
      runs,
    );
  });
});

describe("binaryCrossEntropy values", () => {
  it("matches -(y log p + (1 - y) log(1 - p)) by hand", () => {
    const loss = values(binaryCrossEntropy(f64([1, 0, 0.3]), f64([0.9, 0.2, 0.6])));
    expect(loss[0]).toBe(-Math.log(0.9));
    expect(loss[1]).toBe(-Math.log(0.8));
    expect(loss[2]).toBeCloseTo(-(0.3 * Math.log(0.6) + 0.7 * Math.log(0.4)), 15);
  });

  it("clips p into [1e-7, 1 - 1e-7], so certain mistakes cost -log(1e-7), not infinity", () => {
    const loss = values(binaryCrossEntropy(f64([1, 0]), f64([0, 1])));
    expect(loss[0]).toBe(-Math.log(1e-7));
    expect(loss[1]).toBe(-Math.log(1 - (1 - 1e-7)));
    expect(binaryCrossEntropy(f64([1]), f64([0.5]), { epsilon: 0.25 }).item()).toBe(-Math.log(0.5));
    expect(binaryCrossEntropy(f64([1]), f64([0.1]), { epsilon: 0.25 }).item()).toBe(
      -Math.log(0.25),
    );
  });

  it("broadcasts and promotes float32 with float64 to float64", () => {
    const y = binaryCrossEntropy(f32([1]), f64([0.5, 0.25]));
    expect(y.dtype).toBe("float64");
    expect(values(y)).toEqual([Math.LN2, -Math.log(0.25)]);
    expect(binaryCrossEntropy(f32([1]), f32([0.5])).dtype).toBe("float32");
  });
});

describe("binaryCrossEntropy at the clip edges", () => {
  it("float64: the gradient passes at exactly 1e-7 and 1 - 1e-7 and is 0 strictly outside", () => {
    const lo = 1e-7;
    const hi = 1 - 1e-7;
    const p = f64([lo, hi, 0, 1e-8, 1, 1 - 1e-8, lo, hi], true);
    const y = f64([1, 0, 1, 1, 0, 0, 0, 1]);
    sum(binaryCrossEntropy(y, p)).backward();
    const g = values(p.grad);
    // ∂/∂p = (p − y) / (p (1 − p)): −1/p at y = 1 and 1/(1 − p) at y = 0.
    expect(g[0] / (-1 / lo)).toBeCloseTo(1, 12);
    expect(g[1] / (1 / (1 - hi))).toBeCloseTo(1, 12);
    expect(g.slice(2, 6)).toEqual([0, 0, 0, 0]);
    // The easy side of each edge: 1/(1 − p) at p = 1e-7 and −1/p at p = 1 − 1e-7, both ≈ ±1.
    expect(g[6]).toBeCloseTo(1 / (1 - lo), 12);
    expect(g[7]).toBeCloseTo(-1 / hi, 12);
  });

  it("float32: the bounds are rounded as TensorFlow does, fround(1 - fround(1e-7))", () => {
    const lo = Math.fround(1e-7);
    const hi = Math.fround(1 - lo);
    expect(hi).toBe(1 - 2 ** -23); // the float32 just below 1 − 2⁻²⁴
    const below = nextFloat32(lo, -1);
    const above = nextFloat32(hi, 1);
    const p = f32([lo, hi, below, above], true);
    const y = f32([1, 0, 1, 0]);
    sum(binaryCrossEntropy(y, p)).backward();
    expect(p.grad!.dtype).toBe("float32");
    const g = values(p.grad);
    expect(g[0] / (-1 / lo)).toBeCloseTo(1, 6);
    // 1/(1 − hi) = 2²³ exactly.
    expect(g[1] / 2 ** 23).toBeCloseTo(1, 6);
    expect(g.slice(2)).toEqual([0, 0]);
    // Strictly outside the loss is that of the bound itself.
    const loss = values(binaryCrossEntropy(y, p));
    expect(loss[2]).toBe(Math.fround(-Math.log(lo)));
    expect(loss[3]).toBe(Math.fround(-Math.log(1 - hi)));
  });

  it("float32: rounding decides the edge when fround(1 - fround(ε)) lies above 1 - ε", () => {
    // ε = 0.2: fround(1 − fround(0.2)) = fround(0.8) > 0.8, so p = fround(0.8) sits exactly on the
    // float32 bound (gradient passes) although it lies above the float64 bound 0.8.
    const p = f32([0.8], true);
    expect(p.data[0]).toBeGreaterThan(0.8);
    sum(binaryCrossEntropy(f32([0]), p, { epsilon: 0.2 })).backward();
    // ∂/∂p at y = 0 is 1/(1 − p) ≈ 5.
    expect(p.grad!.item()).toBeCloseTo(5, 5);
  });

  it("the gradient in the target stays finite outside the clip", () => {
    const y = f64([0.5, 0.5], true);
    sum(binaryCrossEntropy(y, f64([0, 1]))).backward();
    // ∂/∂y = log(1 − pc) − log(pc) with pc clipped to 1e-7 and 1 − 1e-7.
    const g = values(y.grad);
    expect(g[0]).toBe(Math.log(1 - 1e-7) - Math.log(1e-7));
    expect(g[1]).toBe(Math.log(1 - (1 - 1e-7)) - Math.log(1 - 1e-7));
  });

  it("second derivatives at the edges are finite, and 0 strictly outside", () => {
    const y = f64([1, 1, 0]);
    const d2 = grad((p: Tensor) => sum(grad((q: Tensor) => sum(binaryCrossEntropy(y, q)))(p)));
    // At p = 0.5, y = 1: ∂²/∂p² = y/p² = 4. Outside the clip: 0.
    const h = values(d2(f64([0.5, 1e-8, 1])));
    expect(h[0]).toBeCloseTo(4, 12);
    expect(h.slice(1)).toEqual([0, 0]);
  });
});

describe("bceWithLogits", () => {
  it("matches max(x, 0) − x·t + log1p(e^−|x|) by hand", () => {
    const loss = values(bceWithLogits(f64([0, 100, -2]), f64([1, 1, 0.25])));
    expect(loss[0]).toBe(Math.LN2);
    expect(loss[1]).toBe(Math.log1p(Math.exp(-100)));
    expect(loss[2]).toBeCloseTo(0 + 2 * 0.25 + Math.log1p(Math.exp(-2)), 15);
  });

  it("is finite, with finite gradients of both orders, for logits of ±1e4", () => {
    const x = f64([1e4, -1e4, 1e4, -1e4], true);
    const t = f64([0, 1, 1, 0], true);
    const loss = bceWithLogits(x, t);
    // Wrong with confidence: 1e4; right with confidence: 0.
    expect(values(loss)).toEqual([1e4, 1e4, 0, 0]);
    sum(loss).backward();
    // ∂/∂x = σ(x) − t; ∂/∂t = −x.
    expect(values(x.grad)).toEqual([1, -1, 0, 0]);
    expect(values(t.grad)).toEqual([-1e4, 1e4, -1e4, 1e4]);
    // ∂²/∂x² = σ(x)(1 − σ(x)) = 0 at ±1e4.
    const d2 = grad((z: Tensor) => sum(grad((w: Tensor) => sum(bceWithLogits(w, t)))(z)));
    expect(values(d2(x.detach()))).toEqual([0, 0, 0, 0]);
  });

  it("broadcasts and keeps float32 gradients float32", () => {
    const x = f32([0, 0], true);
    const y = bceWithLogits(x, f64([1]));
    expect(y.dtype).toBe("float64");
    sum(y).backward();
    expect(x.grad!.dtype).toBe("float32");
    expect(values(x.grad)).toEqual([-0.5, -0.5]);
  });
});

describe("errors", () => {
  it("float inputs only", () => {
    const p = f32([0.5]);
    expect(() => binaryCrossEntropy(tensor([1], { dtype: "int32" }), p)).toThrow(
      'binaryCrossEntropy: target must be float32 or float64, got int32; convert it first with cast(target, "float32")',
    );
    expect(() => binaryCrossEntropy(p, tensor([true]))).toThrow(
      "binaryCrossEntropy: pred must be float32 or float64, got bool",
    );
    expect(() => bceWithLogits(tensor([1], { dtype: "int32" }), p)).toThrow(
      "bceWithLogits: logits must be float32 or float64, got int32",
    );
    expect(() => bceWithLogits(p, tensor([true]))).toThrow(
      "bceWithLogits: targets must be float32 or float64, got bool",
    );
  });

  it("mismatched shapes name both shapes", () => {
    const a = f32([1, 0, 1]);
    const b = f32([0.5, 0.5]);
    expect(() => binaryCrossEntropy(a, b)).toThrow(
      "binaryCrossEntropy: shapes [3] and [2] cannot be broadcast together",
    );
    expect(() => bceWithLogits(a, b)).toThrow(
      "bceWithLogits: shapes [3] and [2] cannot be broadcast together",
    );
  });

  it("epsilon must be in [0, 0.5)", () => {
    const p = f32([0.5]);
    expect(() => binaryCrossEntropy(p, p, { epsilon: 0.5 })).toThrow(
      "binaryCrossEntropy: epsilon must be in [0, 0.5), got 0.5",
    );
    expect(() => binaryCrossEntropy(p, p, { epsilon: -1e-7 })).toThrow("got -1e-7");
    expect(() => binaryCrossEntropy(p, p, { epsilon: Number.NaN })).toThrow("got NaN");
  });

  it("a number where a tensor is needed", () => {
    expect(() => binaryCrossEntropy(1 as unknown as Tensor, f32([0.5]))).toThrow(
      "binaryCrossEntropy: target must be a Tensor, got number",
    );
    expect(() => bceWithLogits(f32([0.5]), 1 as unknown as Tensor)).toThrow(
      "bceWithLogits: targets must be a Tensor, got number",
    );
  });
});
