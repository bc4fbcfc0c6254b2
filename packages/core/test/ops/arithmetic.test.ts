/** Tests of ops/arithmetic.ts: gradients against finite differences, tie rules, dtype rules, errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  div,
  grad,
  maximum,
  minimum,
  mul,
  neg,
  noGrad,
  pow,
  square,
  sub,
  sum,
  type Tensor,
  tensor,
} from "../../src/index.js";
import { record } from "../../src/tape.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  broadcastPair,
  floatTensor,
  gradcheck,
  shape,
  type TensorConstraints,
  withFusion,
} from "../../src/testing/index.js";

const runs = { numRuns: 100 };
const f64 = (values: number[], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const values = (t: Tensor | null) => Array.from(t!.data);

/** Two float64 tensors whose shapes broadcast together. */
function operands(a: TensorConstraints = {}, b: TensorConstraints = a) {
  return broadcastPair({ maxSide: 3 }).chain(([sa, sb]) =>
    fc.tuple(floatTensor(sa, a), floatTensor(sb, b)),
  );
}

/** Checks the first and the second derivative of `f`. */
function checkBothOrders(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  assertGradcheck(f, inputs);
  assertGradgradcheck(f, inputs);
}

/** f followed by squaring: gives a linear op a second derivative that depends on its rule. */
function squared(f: (...xs: Tensor[]) => Tensor) {
  return (...xs: Tensor[]) => {
    const y = f(...xs);
    return mul(y, y);
  };
}

/** Grid values, a on even and b on odd multiples of 1/40: never closer than 0.025 (no ties). */
function untiedOperands() {
  const grid = (parity: number) =>
    fc.integer({ min: -40, max: 39 }).map((k) => (2 * k + parity) / 40);
  return broadcastPair({ maxSide: 3 }).chain(([sa, sb]) =>
    fc
      .tuple(
        fc.array(grid(0), { minLength: size(sa), maxLength: size(sa) }),
        fc.array(grid(1), { minLength: size(sb), maxLength: size(sb) }),
      )
      .map(([va, vb]) => [
        tensor(Float64Array.from(va), { shape: sa }),
        tensor(Float64Array.from(vb), { shape: sb }),
      ]),
  );
}

function size(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

describe("gradients of binary arithmetic (property, float64, broadcasting)", () => {
  it("add: first and second order", () => {
    fc.assert(
      fc.property(operands(), ([a, b]) => {
        assertGradcheck(add, [a, b]);
        assertGradgradcheck(squared(add), [a, b]);
      }),
      runs,
    );
  });

  it("sub: first and second order", () => {
    fc.assert(
      fc.property(operands(), ([a, b]) => {
        assertGradcheck(sub, [a, b]);
        assertGradgradcheck(squared(sub), [a, b]);
      }),
      runs,
    );
  });

  it("mul: first and second order", () => {
    fc.assert(
      fc.property(operands(), ([a, b]) => checkBothOrders(mul, [a, b])),
      runs,
    );
  });

  it("div: first and second order, divisor kept off 0", () => {
    const divisor = { min: -2, max: 2, avoid: [0], margin: 0.4 };
    fc.assert(
      fc.property(operands({}, divisor), ([a, b]) => checkBothOrders(div, [a, b])),
      runs,
    );
  });

  it("neg: first and second order", () => {
    fc.assert(
      fc.property(floatTensor(shape({ maxSide: 3 })), (x) => {
        assertGradcheck(neg, [x]);
        assertGradgradcheck(squared(neg), [x]);
      }),
      runs,
    );
  });

  it("square: first and second order", () => {
    fc.assert(
      fc.property(floatTensor(shape({ maxSide: 3 })), (x) => checkBothOrders(square, [x])),
      runs,
    );
  });

  it("pow with a number exponent, positive bases: first and second order", () => {
    const exponent = fc.oneof(
      fc.constantFrom(-2, -1, -0.5, 0, 0.5, 1, 2, 3, 4),
      fc.double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true }),
    );
    const base = floatTensor(shape({ maxSide: 3 }), { min: 0.3, max: 2 });
    fc.assert(
      fc.property(base, exponent, (x, k) => checkBothOrders((b) => pow(b, k), [x])),
      runs,
    );
  });

  it("pow with an integer exponent, bases of either sign: first and second order", () => {
    const base = floatTensor(shape({ maxSide: 3 }), { avoid: [0], margin: 0.3 });
    fc.assert(
      fc.property(base, fc.integer({ min: -2, max: 4 }), (x, k) =>
        checkBothOrders((b) => pow(b, k), [x]),
      ),
      runs,
    );
  });

  it("pow with a tensor exponent, positive bases: first and second order in both", () => {
    const pair = operands({ min: 0.3, max: 2 }, { min: -2, max: 2 });
    fc.assert(
      fc.property(pair, ([x, e]) => checkBothOrders(pow, [x, e])),
      runs,
    );
  });

  it("maximum and minimum off ties: first and second order", () => {
    fc.assert(
      fc.property(untiedOperands(), ([a, b]) => {
        assertGradcheck(maximum, [a, b]);
        assertGradgradcheck(squared(maximum), [a, b]);
        assertGradcheck(minimum, [a, b]);
        assertGradgradcheck(squared(minimum), [a, b]);
      }),
      runs,
    );
  });
});

describe("the gradient checker itself", () => {
  // x³ computed without recording, then given a chosen gradient rule.
  const cube = (x: Tensor, rule: (g: Tensor) => Tensor) =>
    record(
      "cube",
      noGrad(() => mul(mul(x, x), x)),
      [x],
      [rule],
    );

  it("throws for a deliberately wrong first-order rule", () => {
    const x = f64([0.5, -1.5, 2]);
    // d/dx x³ is 3x², not 2x.
    const wrong = (y: Tensor) => cube(y, (g) => mul(g, mul(y, 2)));
    expect(gradcheck(wrong, [x]).ok).toBe(false);
    expect(() => assertGradcheck(wrong, [x])).toThrow(/gradcheck failed/);
  });

  it("throws for a rule that is right to first order but not differentiable", () => {
    const x = f64([0.5, -1.5, 2]);
    // 3x² from a detached x: the value is right, but its own derivative (6x) is lost.
    const detached = (y: Tensor) => cube(y, (g) => mul(g, mul(mul(y.detach(), y.detach()), 3)));
    assertGradcheck(detached, [x]);
    expect(() => assertGradgradcheck(detached, [x])).toThrow(/gradgradcheck failed/);
    // The honest rule passes both.
    checkBothOrders((y) => cube(y, (g) => mul(g, mul(mul(y, y), 3))), [x]);
  });
});

describe("kinks and subgradients", () => {
  it("maximum and minimum split the gradient 1/2 each on ties", () => {
    const x = f64([1, 2], true);
    const y = f64([1, 3], true);
    // maximum = [1 (tie), 3 (y wins)]: x gets [1/2, 0], y gets [1/2, 1].
    sum(maximum(x, y)).backward();
    expect(values(x.grad)).toEqual([0.5, 0]);
    expect(values(y.grad)).toEqual([0.5, 1]);

    const u = f64([1, 2], true);
    const v = f64([1, 3], true);
    // minimum = [1 (tie), 2 (u wins)]: u gets [1/2, 1], v gets [1/2, 0].
    sum(minimum(u, v)).backward();
    expect(values(u.grad)).toEqual([0.5, 1]);
    expect(values(v.grad)).toEqual([0.5, 0]);
  });

  it("maximum(x, x) and minimum(x, x) have gradient exactly 1 (two halves)", () => {
    const x = f64([-1, 0, 2], true);
    sum(maximum(x, x)).backward();
    expect(values(x.grad)).toEqual([1, 1, 1]);
    const y = f64([-1, 0, 2], true);
    sum(minimum(y, y)).backward();
    expect(values(y.grad)).toEqual([1, 1, 1]);
  });

  it("a broadcast scalar collects half a gradient from each tie", () => {
    const x = f64([1, 2, 1], true);
    const floor = tensor(1, { dtype: "float64", requiresGrad: true });
    // maximum(x, 1) ties at positions 0 and 2; x wins at position 1.
    sum(maximum(x, floor)).backward();
    expect(values(x.grad)).toEqual([0.5, 1, 0.5]);
    expect(floor.grad!.item()).toBe(1); // 1/2 + 0 + 1/2
  });

  it("pow(x, 0) has gradient exactly 0 everywhere, including x = 0, with no NaN", () => {
    const x = f64([0, -1, 2, 1e-300], true);
    const y = pow(x, 0);
    expect(values(y)).toEqual([1, 1, 1, 1]);
    sum(y).backward();
    expect(values(x.grad)).toEqual([0, 0, 0, 0]);
  });

  it("pow(x, e) with a tensor exponent 0 has gradient exactly 0 in x, including x = 0", () => {
    const x = f64([0, -1, 2], true);
    const e = f64([0, 0, 0], true);
    sum(pow(x, e)).backward();
    // 0 · x⁻¹ is 0 (−0 at x = −1, an exact zero too); at x = 0 the guard gives 0, not 0 · ∞.
    expect(values(x.grad).map((v) => v === 0)).toEqual([true, true, true]);
    // d/de x^e = x^e log x: at x = 0 the convention is 0; at x = 2, 2⁰ · log 2 = log 2.
    // At x = -1, log(-1) is NaN: a negative base has no real derivative in the exponent.
    const de = values(e.grad);
    expect(de[0]).toBe(0);
    expect(de[2]).toBeCloseTo(Math.log(2), 15);
  });

  it("pow with a tensor exponent: the gradient in the exponent at x = 0 is 0", () => {
    const x = f64([0, 0, 0], true);
    const e = f64([0.5, 1, 2], true);
    const y = pow(x, e);
    expect(values(y)).toEqual([0, 0, 0]);
    sum(y).backward();
    expect(values(e.grad)).toEqual([0, 0, 0]);
    // d/dx x^e = e x^(e-1) at 0: ∞ for e = 1/2, 1 for e = 1, 0 for e = 2.
    expect(values(x.grad)).toEqual([Infinity, 1, 0]);
  });

  it("pow(x, 0) has second derivative 0 with no NaN", () => {
    const x = f64([0, 1.5]);
    assertGradgradcheck((b) => pow(b, 0), [x]);
  });

  it("pow with a tensor exponent keeps its mixed derivative at e = 0", () => {
    // d/dx x^e = e · x^(e−1), whose derivative in e at e = 0 is x⁻¹ (2 at x = 1/2).
    const x = f64([0.5]);
    const dx = (e: Tensor) => grad((y: Tensor) => sum(pow(y, e)))(x);
    expect(dx(f64([0])).item()).toBe(0);
    expect(grad((e: Tensor) => sum(dx(e)))(f64([0])).item()).toBe(2);
  });
});

describe("values, broadcasting and dtypes", () => {
  it("broadcasts a column against a row", () => {
    const col = tensor([[1], [2]]);
    const row = tensor([10, 20, 30]);
    // [2, 1] + [3] → [2, 3]: out[i][j] = col[i] + row[j].
    expect(add(col, row).toArray()).toEqual([
      [11, 21, 31],
      [12, 22, 32],
    ]);
    expect(sub(row, col).toArray()).toEqual([
      [9, 19, 29],
      [8, 18, 28],
    ]);
    expect(mul(col, row).toArray()).toEqual([
      [10, 20, 30],
      [20, 40, 60],
    ]);
    expect(div(row, col).toArray()).toEqual([
      [10, 20, 30],
      [5, 10, 15],
    ]);
  });

  it("sums a broadcast gradient back to each input's shape", () => {
    const col = tensor([[1], [2]], { dtype: "float64", requiresGrad: true });
    const row = f64([10, 20, 30], true);
    // s = Σ_ij col_i · row_j: ds/dcol_i = Σ_j row_j = 60, ds/drow_j = Σ_i col_i = 3.
    sum(mul(col, row)).backward();
    expect(col.grad!.shape).toEqual([2, 1]);
    expect(col.grad!.toArray()).toEqual([[60], [60]]);
    expect(values(row.grad)).toEqual([3, 3, 3]);
  });

  it("pow(x, −0.5), rendered as 1 / √x, gives Math.pow's float32 values at the edges, fused or not, on both renderers", () => {
    // pow(±0, −0.5) = +∞, pow(∞, −0.5) = 0, negative bases NaN; 1/√4 = 0.5, 1/√0.25 = 2 exactly.
    const xs = [0, -0, 1, 4, 0.25, 2, -1, Number.POSITIVE_INFINITY, Number.NaN, 1e-45, 3e38];
    const want = xs.map((x) => Math.fround(Math.fround(x) ** -0.5));
    expect(want.slice(0, 5)).toEqual([
      Number.POSITIVE_INFINITY,
      Number.POSITIVE_INFINITY,
      1,
      0.5,
      2,
    ]);
    for (const mode of ["fused", "opByOp"] as const) {
      for (const renderer of ["javascript", "wasm"] as const) {
        const got = withFusion(mode, () => Array.from(pow(tensor(xs), -0.5).read()), { renderer });
        expect(got).toEqual(want);
      }
    }
  });

  it("computes pow, square, neg and the extrema by hand", () => {
    expect(pow(tensor([1, 2, 3]), 2).toArray()).toEqual([1, 4, 9]);
    expect(pow(tensor([4, 9]), tensor([0.5])).toArray()).toEqual([2, 3]);
    expect(pow(2, f64([3, -1])).toArray()).toEqual([8, 0.5]);
    expect(pow(f64([8]), 1 / 3).item()).toBeCloseTo(2, 14);
    expect(square(tensor([-3])).toArray()).toEqual([9]);
    expect(neg(tensor([1, -2])).toArray()).toEqual([-1, 2]);
    expect(maximum(tensor([1, 5]), 3).toArray()).toEqual([3, 5]);
    expect(minimum(tensor([1, 5]), 3).toArray()).toEqual([1, 3]);
  });

  it("float32 with float64 gives float64", () => {
    const a = tensor([1.5], { dtype: "float32" });
    const b = tensor([2.25], { dtype: "float64" });
    for (const op of [add, sub, mul, div, maximum, minimum, pow]) {
      expect(op(a, b).dtype).toBe("float64");
      expect(op(b, a).dtype).toBe("float64");
    }
  });

  it("plain numbers take the tensor's dtype (weak scalars)", () => {
    const x = tensor([1], { dtype: "float32" });
    const y = add(x, 0.1);
    expect(y.dtype).toBe("float32");
    // Computed as 1 + fround(0.1), stored as float32: fround(1.1).
    expect(y.item()).toBe(Math.fround(1.1));
    expect(mul(tensor([1], { dtype: "float64" }), 0.1).item()).toBe(0.1);
    expect(mul(2, tensor([2, 3], { dtype: "int32" })).dtype).toBe("int32");
    expect(sub(tensor([2, 3], { dtype: "int32" }), 1).toArray()).toEqual([1, 2]);
    // A fraction next to int32 cannot stay int32.
    const frac = add(tensor([1, 2], { dtype: "int32" }), 0.5);
    expect(frac.dtype).toBe("float32");
    expect(frac.toArray()).toEqual([1.5, 2.5]);
  });

  it("int32 / int32 divides exactly into float32", () => {
    const q = div(tensor([7, -7, 1], { dtype: "int32" }), tensor([2, 2, 4], { dtype: "int32" }));
    expect(q.dtype).toBe("float32");
    expect(q.toArray()).toEqual([3.5, -3.5, 0.25]);
    expect(div(tensor([3], { dtype: "int32" }), 2).item()).toBe(1.5);
    // A non-integer power of int32 is float32 too; a non-negative integer power stays int32.
    expect(pow(tensor([4], { dtype: "int32" }), 0.5).dtype).toBe("float32");
    expect(pow(tensor([4], { dtype: "int32" }), 2).dtype).toBe("int32");
  });

  it("gradients come back in each input's dtype", () => {
    const x = tensor([1.5, 2], { dtype: "float32", requiresGrad: true });
    const y = tensor([0.1, 3], { dtype: "float64", requiresGrad: true });
    // d/dx Σ x·y = y (rounded to float32), d/dy = x.
    sum(mul(x, y)).backward();
    expect(x.grad!.dtype).toBe("float32");
    expect(values(x.grad)).toEqual([Math.fround(0.1), 3]);
    expect(y.grad!.dtype).toBe("float64");
    expect(values(y.grad)).toEqual([1.5, 2]);
  });

  it("maximum and minimum propagate NaN from either side", () => {
    const a = tensor([Number.NaN, 1, Number.NaN]);
    const b = tensor([1, Number.NaN, Number.NaN]);
    for (const op of [maximum, minimum]) {
      expect(values(op(a, b)).every(Number.isNaN)).toBe(true);
      expect(Number.isNaN(op(tensor([Number.NaN]), 0).item())).toBe(true);
      expect(Number.isNaN(op(0, tensor([Number.NaN])).item())).toBe(true);
    }
  });
});

describe("errors", () => {
  it("mismatched shapes name the op and both shapes", () => {
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const b = tensor([1, 2, 3, 4]);
    for (const [name, op] of [
      ["add", add],
      ["sub", sub],
      ["mul", mul],
      ["div", div],
      ["pow", pow],
      ["maximum", maximum],
      ["minimum", minimum],
    ] as const) {
      expect(() => op(a, b)).toThrow(name);
      expect(() => op(a, b)).toThrow("[2, 3]");
      expect(() => op(a, b)).toThrow("[4]");
    }
  });

  it("bool is not arithmetic", () => {
    const flags = tensor([true, false]);
    expect(() => add(flags, flags)).toThrow(
      'add: a must be a numeric tensor, got bool; use where(), or cast(a, "float32")',
    );
    expect(() => mul(tensor([1, 2]), flags)).toThrow("mul: b must be a numeric tensor, got bool");
    expect(() => neg(flags)).toThrow("neg: x must be a numeric tensor, got bool");
    expect(() => square(flags)).toThrow("square: x must be a numeric tensor, got bool");
    expect(() => pow(flags, 2)).toThrow("pow: x must be a numeric tensor, got bool");
  });

  it("a number or an array where a tensor is needed", () => {
    expect(() => add(1, 2)).toThrow("add: at least one operand must be a Tensor, got two numbers");
    expect(() => neg(3 as unknown as Tensor)).toThrow("neg: x must be a Tensor, got number");
    expect(() => mul(tensor([1]), [2] as unknown as Tensor)).toThrow(
      "mul: b must be a Tensor, got an array",
    );
    expect(() => square(null as unknown as Tensor)).toThrow("square: x must be a Tensor, got null");
  });

  it("pow needs a finite exponent", () => {
    expect(() => pow(tensor([1]), Number.POSITIVE_INFINITY)).toThrow(
      "pow: exponent must be a finite number, got Infinity",
    );
  });
});
