// Numbers at the edges: exactly-zero upstream gradients, the log-sum-exp rounding, overflow in
// an unselected branch, and int32 arithmetic, each on both evaluation paths.

import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/index.js";
import * as F from "../../src/index.js";
import { gradDiv, gradMul } from "../../src/ops/arithmetic.js";
import { withFusion } from "../../src/testing/index.js";

const modes = ["opByOp", "fused"] as const;

const f64 = (values: number[]) => F.tensor(values, { dtype: "float64", requiresGrad: true });

/** d/dx of sum(weight · f(x)), read as plain numbers. */
function gradientOf(f: (x: Tensor) => Tensor, x: Tensor, weight: number): number[] {
  return [...(F.grad((v: Tensor) => F.sum(F.mul(weight, f(v))))(x) as Tensor).read()];
}

// Each op at a point where its local derivative is infinite, overflowed or NaN.
const singular: [string, (x: Tensor) => Tensor, number][] = [
  ["pow(x, 0.5) at 0", (x) => F.pow(x, 0.5), 0],
  ["pow(x, 0.25) at 0", (x) => F.pow(x, 0.25), 0],
  ["pow(x, tensor 0.5) at 0", (x) => F.pow(x, F.tensor(0.5, { dtype: "float64" })), 0],
  ["pow(x, -1) at 0", (x) => F.pow(x, -1), 0],
  ["sqrt at 0", (x) => F.sqrt(x), 0],
  ["log at 0", (x) => F.log(x), 0],
  ["log1p at -1", (x) => F.log1p(x), -1],
  ["div(1, x) at 0", (x) => F.div(1, x), 0],
  ["div(x, 0)", (x) => F.div(x, 0), 1],
  ["exp at 1000 (overflows)", (x) => F.exp(x), 1000],
  ["square at 1e308 (2x overflows)", (x) => F.square(F.mul(x, 1e308)), 1],
  ["mul(x, ∞)", (x) => F.mul(x, Number.POSITIVE_INFINITY), 1],
  ["abs at NaN", (x) => F.abs(x), Number.NaN],
];

describe("an exactly-zero upstream gradient gives an exactly-zero gradient", () => {
  for (const mode of modes) {
    for (const [name, f, at] of singular) {
      it(`${name}, ${mode}`, () => {
        withFusion(mode, () => {
          // d/dx [0 · f(x)] = 0 for every x: the term is identically 0.
          const zero = gradientOf(f, f64([at, at]), 0);
          expect(zero.every((v) => v === 0)).toBe(true);
          // NaN upstream still propagates.
          expect(gradientOf(f, f64([at]), Number.NaN).every(Number.isNaN)).toBe(true);
        });
      });
    }
  }

  it("holds at second order: d²/dx² of 0 · x^0.5 at 0 is 0, not NaN", () => {
    const d2 = F.grad((x: Tensor) =>
      F.sum(F.grad((v: Tensor) => F.sum(F.mul(0, F.pow(v, 0.5))))(x) as Tensor),
    );
    for (const mode of modes) {
      withFusion(mode, () => {
        expect([...(d2(f64([0, 0])) as Tensor).read()]).toEqual([0, 0]);
      });
    }
  });

  it("gradMul and gradDiv: 0 where g is 0, g·d and g/d elsewhere, NaN in g propagates", () => {
    const g = F.tensor([0, 2, Number.NaN, 0], { dtype: "float64" });
    const d = F.tensor([Number.POSITIVE_INFINITY, 3, 1, Number.NaN], { dtype: "float64" });
    expect(gradMul(g, d).toArray()).toEqual([0, 6, Number.NaN, 0]);
    expect(gradDiv(g, F.tensor([0, 4, 1, 0], { dtype: "float64" })).toArray()).toEqual([
      0,
      0.5,
      Number.NaN,
      0,
    ]);
  });

  it("the rules stay right away from the singular points (first and second order)", () => {
    // d/dx 3 x^0.5 = 1.5 / √x: at x = 4, 0.75; d²/dx² = −0.75 x^−1.5 = −0.09375.
    const x = f64([4]);
    const first = F.grad((v: Tensor) => F.sum(F.mul(3, F.pow(v, 0.5))));
    expect((first(x) as Tensor).item()).toBeCloseTo(0.75, 12);
    const second = F.grad((v: Tensor) => F.sum(first(v) as Tensor));
    expect((second(x) as Tensor).item()).toBeCloseTo(-0.09375, 12);
  });
});

describe("logSoftmax does not round the log-sum-exp before subtracting", () => {
  it("float32 logSoftmax([1e4, 1e4, 0]) is [-ln 2, -ln 2, -1e4 - ln 2]", () => {
    // log(e^0 + e^0 + e^−1e4) = ln 2 = 0.6931472 after the shift by the maximum 1e4.
    for (const mode of modes) {
      withFusion(mode, () => {
        const out = F.logSoftmax(F.tensor([1e4, 1e4, 0])).read();
        expect(out[0]).toBe(Math.fround(-Math.LN2));
        expect(out[1]).toBe(Math.fround(-Math.LN2));
        expect(out[2]).toBe(Math.fround(-1e4 - Math.LN2));
        const p = F.softmax(F.tensor([[1e4, 1e4, 0]])).read();
        expect([...p]).toEqual([0.5, 0.5, 0]);
      });
    }
  });

  it("logSumExp keeps the shift outside: 1e4 + ln 2 rounded once", () => {
    expect(F.logSumExp(F.tensor([1e4, 1e4, 0])).item()).toBe(Math.fround(1e4 + Math.LN2));
  });

  it("±∞ logits: −∞ is a masked class, +∞ or a row of −∞ is NaN (as PyTorch)", () => {
    const ninf = Number.NEGATIVE_INFINITY;
    // [−∞, 0, 0]: probabilities [0, 1/2, 1/2]; the gradient of the first log-probability's
    // neighbour sum ignores the masked class: d/dx sum(logSoftmax(x)[1:]) = [0, 0, 0] … worked:
    // L = (x1 − lse) + (x2 − lse), dL/dx_j = δ_j1 + δ_j2 − 2 p_j = [0, 1 − 1, 1 − 1] = [0, 0, 0].
    const x = F.tensor([ninf, 0, 0], { dtype: "float64", requiresGrad: true });
    const out = F.logSoftmax(x);
    expect(out.toArray()).toEqual([ninf, -Math.LN2, -Math.LN2]);
    F.sum(F.slice(out, [1], [2])).backward();
    expect([...x.grad!.read()].map((v) => v + 0)).toEqual([0, 0, 0]);
    expect(F.logSoftmax(F.tensor([Number.POSITIVE_INFINITY, 0])).read()[0]).toBeNaN();
    expect((F.logSoftmax(F.tensor([ninf, ninf])).toArray() as number[]).every(Number.isNaN)).toBe(
      true,
    );
    expect(F.logSumExp(F.tensor([ninf, ninf])).item()).toBe(ninf);
    // +∞: the value says so; the derivative of log at ∞ is 1 / ∞ = 0, an exactly-zero upstream
    // for exp's rule at ∞, so the gradient is 0 (PyTorch: NaN), as the README documents.
    const big = F.tensor([Number.POSITIVE_INFINITY, 0], { dtype: "float64", requiresGrad: true });
    const lse = F.logSumExp(big);
    lse.backward();
    expect(lse.item()).toBe(Number.POSITIVE_INFINITY);
    expect([...big.grad!.read()]).toEqual([0, 0]);
  });
});

describe("overflow in the unselected branch of a where", () => {
  it("gives the same finite gradient op by op and fused (float32, |d| ≈ 3e38)", () => {
    // smoothL1's shape: where(|d| < 1, 0.5 d², |d| − 0.5). At d = 3e38 the quadratic branch is
    // not selected; its rule computes 2d = 6e38, which overflows float32. The gradient is
    // sign(d) = 1 from the linear branch.
    for (const mode of modes) {
      withFusion(mode, () => {
        const d = F.tensor([3e38, -3e38, 0.5], { requiresGrad: true });
        const a = F.abs(d);
        F.sum(F.where(F.less(a, 1), F.mul(0.5, F.pow(a, 2)), F.sub(a, 0.5))).backward();
        // d/dd of 0.5 d² at 0.5 is 0.5.
        expect([...d.grad!.read()]).toEqual([1, -1, 0.5]);
      });
    }
  });
});

describe("int32 arithmetic wraps as two's complement (PyTorch's int32)", () => {
  const i32 = (values: number[]) => F.tensor(values, { dtype: "int32" });
  const max = 2 ** 31 - 1;
  const min = -(2 ** 31);
  // An independent oracle: the exact product reduced modulo 2^32 with BigInt.
  const wrap = (v: bigint) => Number(BigInt.asIntN(32, v));

  for (const mode of modes) {
    it(`add, sub, mul, neg, abs, square, pow and sum wrap, ${mode}`, () => {
      withFusion(mode, () => {
        expect(F.add(i32([max]), 1).toArray()).toEqual([min]);
        expect(F.sub(i32([min]), 1).toArray()).toEqual([max]);
        // 123456789 · 987654321 = 121932631112635269, which is −67153019 modulo 2^32; a product
        // in doubles loses the low bits above 2^53 (it gave −67153024).
        expect(F.mul(i32([123456789]), 987654321).toArray()).toEqual([-67153019]);
        expect(wrap(123456789n * 987654321n)).toBe(-67153019);
        expect(F.mul(i32([min]), -1).toArray()).toEqual([min]);
        expect(F.neg(i32([min])).toArray()).toEqual([min]);
        expect(F.abs(i32([min])).toArray()).toEqual([min]);
        // 65536² = 2^32 ≡ 0; 46341² = 2147488281 ≡ −2147479015.
        expect(F.square(i32([65536, 46341])).toArray()).toEqual([0, -2147479015]);
        expect(F.pow(i32([46341]), 2).toArray()).toEqual([-2147479015]);
        // 3^21 = 10460353203 ≡ 1870418611; 7^13 = 96889010407 ≡ −1895237401.
        expect(F.pow(i32([3, 7]), 21).read()[0]).toBe(1870418611);
        expect(F.pow(i32([7]), 13).toArray()).toEqual([-1895237401]);
        expect(F.pow(i32([-3]), 3).toArray()).toEqual([-27]);
        expect(F.sum(i32([max, 1])).item()).toBe(min);
        expect(F.sum(i32([max, max, 2])).item()).toBe(0); // 2^32 ≡ 0
      });
    });
  }

  it("a large int32 sum wraps at every step too (no double rounding above 2^53)", () => {
    // 2^23 elements of 2^31 − 1: the exact total 2^23 · (2^31 − 1) = 2^54 − 2^23 is beyond 2^53;
    // modulo 2^32 it is −2^23.
    const n = 2 ** 23;
    const x = F.full([n], max, { dtype: "int32" });
    expect(wrap(BigInt(n) * BigInt(max))).toBe(-(2 ** 23));
    for (const mode of modes) {
      withFusion(mode, () => {
        expect(F.sum(F.add(x, 0)).item()).toBe(-(2 ** 23));
      });
    }
  });

  it("division is true division into float32; cast truncates and wraps", () => {
    expect(F.div(i32([7, -7]), 2).toArray()).toEqual([3.5, -3.5]);
    expect(F.cast(F.tensor([3e9, -1.7, Number.NaN]), "int32").toArray()).toEqual([
      -1294967296, -1, 0,
    ]);
  });

  it("values that are not int32 never enter an int32 tensor silently", () => {
    expect(() => F.tensor([3e9], { dtype: "int32" })).toThrow(
      "tensor: element 0 3000000000 is outside the int32 range [-2147483648, 2147483647]",
    );
    expect(() => F.tensor([1, 1.5], { dtype: "int32" })).toThrow(
      "tensor: element 1 1.5 is not an integer in the int32 range",
    );
    expect(() => F.tensor([Number.NaN], { dtype: "int32" })).toThrow("tensor: element 0 NaN");
    expect(() => F.tensor(new Float64Array([2 ** 31]), { dtype: "int32" })).toThrow(
      "tensor: element 0 2147483648 is outside",
    );
    expect(F.tensor([max, min], { dtype: "int32" }).toArray()).toEqual([max, min]);
    expect(() => F.full([2], 3e9, { dtype: "int32" })).toThrow("full: the fill value 3000000000");
    expect(() => F.arange(max - 1, max + 2)).toThrow("arange: the last value 2147483648");
    expect(F.arange(max - 1, max + 1).toArray()).toEqual([max - 1, max]);
    expect(() => F.add(i32([1]), 3e9)).toThrow(
      "add: the scalar 3000000000 is outside the int32 range",
    );
    expect(() => F.clip(i32([1]), 0, 1e10)).toThrow("clip: the scalar 10000000000");
    // A fractional scalar next to int32 is a float32 operand, as in PyTorch.
    expect(F.add(i32([1]), 0.5).dtype).toBe("float32");
  });
});
