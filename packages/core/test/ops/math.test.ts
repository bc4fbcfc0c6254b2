/** Tests of ops/math.ts: unary gradients against finite differences, kinks, stability, errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  abs,
  add,
  ceil,
  clip,
  exp,
  floor,
  log,
  log1p,
  logSigmoid,
  mul,
  relu,
  round,
  sigmoid,
  sign,
  softplus,
  sqrt,
  sum,
  type Tensor,
  tanh,
  tensor,
} from "../../src/index.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  floatTensor,
  shape,
  type TensorConstraints,
} from "../../src/testing/index.js";

const runs = { numRuns: 100 };
const f64 = (values: number[], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const values = (t: Tensor | null) => Array.from(t!.data);

/** The float32 next to a positive `x` in direction `step`. */
function nextFloat32(x: number, step: 1 | -1): number {
  const bits = new Int32Array(new Float32Array([x]).buffer);
  bits[0] += step;
  return new Float32Array(bits.buffer)[0];
}

/** f followed by squaring: piecewise-linear ops get a second derivative that uses their rule. */
function squared(f: (x: Tensor) => Tensor) {
  return (x: Tensor) => {
    const y = f(x);
    return mul(y, y);
  };
}

const unary: [string, (x: Tensor) => Tensor, TensorConstraints, "op" | "squared"][] = [
  ["exp", exp, {}, "op"],
  ["log", log, { min: 0.2, max: 3 }, "op"],
  ["log1p", log1p, { min: -0.8, max: 3 }, "op"],
  ["sqrt", sqrt, { min: 0.2, max: 3 }, "op"],
  ["abs", abs, { avoid: [0] }, "squared"],
  ["sigmoid", sigmoid, { min: -5, max: 5 }, "op"],
  ["logSigmoid", logSigmoid, { min: -5, max: 5 }, "op"],
  ["softplus", softplus, { min: -5, max: 5 }, "op"],
  ["tanh", tanh, { min: -3, max: 3 }, "op"],
  ["relu", relu, { avoid: [0] }, "squared"],
];

describe("gradients of unary math (property, float64, random shapes)", () => {
  for (const [name, op, values, second] of unary) {
    it(`${name}: first and second order`, () => {
      fc.assert(
        fc.property(floatTensor(shape({ maxSide: 3 }), values), (x) => {
          assertGradcheck(op, [x]);
          assertGradgradcheck(second === "op" ? op : squared(op), [x]);
        }),
        runs,
      );
    });
  }

  it("clip off its bounds: first and second order", () => {
    const bounds = fc.tuple(
      fc.double({ min: -1.5, max: 0, noNaN: true, noDefaultInfinity: true }),
      fc.double({ min: 0.2, max: 1.5, noNaN: true, noDefaultInfinity: true }),
    );
    const cases = bounds.chain(([lo, hi]) =>
      floatTensor(shape({ maxSide: 3 }), { avoid: [lo, hi] }).map((x) => ({ x, lo, hi })),
    );
    fc.assert(
      fc.property(cases, ({ x, lo, hi }) => {
        assertGradcheck((y) => clip(y, lo, hi), [x]);
        assertGradgradcheck(
          squared((y) => clip(y, lo, hi)),
          [x],
        );
      }),
      runs,
    );
  });
});

describe("kinks and subgradients", () => {
  it("relu at 0 has gradient 0", () => {
    const x = f64([-1, 0, 2], true);
    expect(values(relu(x))).toEqual([0, 0, 2]);
    sum(relu(x)).backward();
    expect(values(x.grad)).toEqual([0, 0, 1]);
  });

  it("abs at 0 has gradient 0", () => {
    const x = f64([-1, 0, 2], true);
    expect(values(abs(x))).toEqual([1, 0, 2]);
    sum(abs(x)).backward();
    expect(values(x.grad)).toEqual([-1, 0, 1]);
  });

  it("clip passes the gradient at exactly lo and hi and blocks it strictly outside", () => {
    const x = f64([-1, 0, 0.5, 1, 2, -1e-300, 1 + 2 ** -52], true);
    const y = clip(x, 0, 1);
    expect(values(y)).toEqual([0, 0, 0.5, 1, 1, 0, 1]);
    sum(y).backward();
    expect(values(x.grad)).toEqual([0, 1, 1, 1, 0, 0, 0]);
  });

  it("clip rounds its bounds to float32 for a float32 input, as TensorFlow does", () => {
    // fround(0.7) < 0.7 and fround(0.8) > 0.8: against bounds left in float64 these two inputs
    // would lie strictly outside and get 0; against the rounded bounds they sit exactly on them.
    const lo = Math.fround(0.7);
    const hi = Math.fround(0.8);
    expect(lo).toBeLessThan(0.7);
    expect(hi).toBeGreaterThan(0.8);
    // The float32 neighbours just outside the rounded bounds.
    const below = nextFloat32(lo, -1);
    const above = nextFloat32(hi, 1);
    const x = tensor([lo, hi, 0.75, below, above], { dtype: "float32", requiresGrad: true });
    const y = clip(x, 0.7, 0.8);
    expect(values(y)).toEqual([lo, hi, Math.fround(0.75), lo, hi]);
    sum(y).backward();
    expect(values(x.grad)).toEqual([1, 1, 1, 0, 0]);
  });

  it("clip with lo = hi passes the gradient only where x equals the bound", () => {
    const x = f64([0.5, 0.25, 0.75], true);
    sum(clip(x, 0.5, 0.5)).backward();
    expect(values(x.grad)).toEqual([1, 0, 0]);
  });
});

describe("values and stability", () => {
  it("computes the functions by hand", () => {
    expect(values(exp(f64([0, 1])))).toEqual([1, Math.E]);
    expect(values(log(f64([1, Math.E])))).toEqual([0, 1]);
    expect(values(log(f64([0, -1])))).toEqual([Number.NEGATIVE_INFINITY, Number.NaN]);
    // log1p keeps the digits that 1 + x would lose: log(1 + x) ≈ x − x²/2.
    expect(log1p(f64([1e-10])).item()).toBe(1e-10 - 5e-21);
    expect(values(sqrt(f64([4, 9])))).toEqual([2, 3]);
    expect(values(sigmoid(f64([0])))).toEqual([0.5]);
    expect(values(tanh(f64([0])))).toEqual([0]);
    expect(softplus(f64([0])).item()).toBe(Math.LN2);
    expect(logSigmoid(f64([0])).item()).toBe(-Math.LN2);
    expect(values(sign(f64([-2, 0, 3, Number.NaN])))).toEqual([-1, 0, 1, Number.NaN]);
    expect(sign(tensor([-4, 0, 7], { dtype: "int32" })).toArray()).toEqual([-1, 0, 1]);
  });

  it("sigmoid, logSigmoid and softplus stay finite for huge inputs", () => {
    const x = f64([-1000, 1000], true);
    expect(values(sigmoid(x))).toEqual([0, 1]);
    // log σ(−1000) = −1000 − log1p(e⁻¹⁰⁰⁰) = −1000; log σ(1000) = min(1000, 0) − log1p(0) = 0.
    expect(values(logSigmoid(x))).toEqual([-1000, 0]);
    expect(values(softplus(x))).toEqual([0, 1000]);
    // d/dx log σ(x) = σ(−x): 1 at −1000 and 0 at 1000.
    sum(logSigmoid(x)).backward();
    expect(values(x.grad)).toEqual([1, 0]);
  });

  it("keeps float32 inputs float32, gradients included", () => {
    const x = tensor([0.5, 2], { dtype: "float32", requiresGrad: true });
    for (const op of [exp, log, log1p, sqrt, abs, sigmoid, logSigmoid, softplus, tanh, relu]) {
      expect(op(x).dtype).toBe("float32");
    }
    sum(sqrt(x)).backward();
    expect(x.grad!.dtype).toBe("float32");
    // d/dx √x = 1 / (2√x): 1/√2 and 1/(2√2), rounded to float32.
    expect(values(x.grad)).toEqual([Math.fround(Math.SQRT1_2), Math.fround(Math.SQRT1_2 / 2)]);
  });

  it("relu and abs accept int32 and clip keeps NaN", () => {
    expect(relu(tensor([-2, 3], { dtype: "int32" })).toArray()).toEqual([0, 3]);
    expect(abs(tensor([-2, 3], { dtype: "int32" })).toArray()).toEqual([2, 3]);
    expect(Number.isNaN(relu(f64([Number.NaN])).item())).toBe(true);
    expect(Number.isNaN(clip(f64([Number.NaN]), 0, 1).item())).toBe(true);
  });
});

describe("errors", () => {
  it("float ops reject bool and int32 and say how to convert", () => {
    const flags = tensor([true]);
    const ints = tensor([1], { dtype: "int32" });
    for (const [name, op] of [
      ["exp", exp],
      ["log", log],
      ["log1p", log1p],
      ["sqrt", sqrt],
      ["sigmoid", sigmoid],
      ["logSigmoid", logSigmoid],
      ["softplus", softplus],
      ["tanh", tanh],
    ] as const) {
      expect(() => op(flags)).toThrow(
        `${name}: x must be float32 or float64, got bool; convert it first with cast(x, "float32")`,
      );
      expect(() => op(ints)).toThrow(`${name}: x must be float32 or float64, got int32`);
    }
  });

  it("numeric ops reject bool", () => {
    const flags = tensor([true]);
    expect(() => relu(flags)).toThrow("relu: x must be a numeric tensor, got bool");
    expect(() => abs(flags)).toThrow("abs: x must be a numeric tensor, got bool");
    expect(() => sign(flags)).toThrow("sign: x must be a numeric tensor, got bool");
    expect(() => clip(flags, 0, 1)).toThrow("clip: x must be a numeric tensor, got bool");
  });

  it("clip needs lo <= hi, both numbers", () => {
    const x = tensor([0.5]);
    expect(() => clip(x, 1, 0)).toThrow("clip: expected numbers lo <= hi, got lo = 1 and hi = 0");
    expect(() => clip(x, Number.NaN, 1)).toThrow("clip: expected numbers lo <= hi, got lo = NaN");
    expect(() => clip(x, 0, "1" as unknown as number)).toThrow("clip: expected numbers lo <= hi");
  });

  it("a number where a tensor is needed", () => {
    expect(() => exp(1 as unknown as Tensor)).toThrow(
      "exp: x must be a Tensor, got number (wrap values with tensor(...))",
    );
    expect(() => relu([1, 2] as unknown as Tensor)).toThrow(
      "relu: x must be a Tensor, got an array",
    );
  });
});

describe("floor, ceil and round", () => {
  it("round to integers; round takes halves to the even neighbour, as torch.round", () => {
    for (const dtype of ["float32", "float64"] as const) {
      const x = tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6, 3.5], { dtype });
      // Halves: 0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → −0, −1.5 → −2, −2.5 → −2, 3.5 → 4.
      expect(values(round(x))).toEqual([0, 2, 2, -0, -2, -2, 2, -3, 4]);
      expect(Object.is(round(x).data[3], -0)).toBe(true);
      expect(values(floor(x))).toEqual([0, 1, 2, -1, -2, -3, 2, -3, 3]);
      expect(values(ceil(x))).toEqual([1, 2, 3, -0, -1, -2, 3, -2, 4]);
    }
    // Just below a half rounds down; NaN and infinities stay.
    const edge = f64([0.49999999999999994, Number.NaN, Infinity, -Infinity, 2 ** 52 + 1]);
    expect(values(round(edge))).toEqual([0, Number.NaN, Infinity, -Infinity, 2 ** 52 + 1]);
    // Integers are already integers.
    const ints = tensor([3, -4], { dtype: "int32" });
    expect(round(ints)).toBe(ints);
    expect(values(floor(ints))).toEqual([3, -4]);
  });

  it("have gradient 0, as PyTorch, so a graph through them still backpropagates", () => {
    for (const f of [floor, ceil, round]) {
      const x = f64([0.3, 1.7, -2.5], true);
      const y = f(x);
      expect(y.requiresGrad).toBe(true);
      sum(mul(y, x)).backward(); // d/dx (f(x) · x) = f(x) with f' = 0
      expect(values(x.grad!)).toEqual(values(y));
    }
  });

  it("give the same on pending inputs below and above the fusion threshold", () => {
    for (const n of [1000, 20000]) {
      const raw = Float32Array.from({ length: n }, (_, i) => (i % 41) / 4 - 5);
      const x = add(tensor(raw), 0); // pending from 16 384 elements on
      expect(x.isPending).toBe(n >= 16384);
      // (i mod 41) / 4 − 5 steps by quarters: every fourth value is a half.
      const want = Array.from(raw, (v) => {
        const r = Math.round(v);
        return v - Math.floor(v) === 0.5 && r % 2 !== 0 ? r - 1 : r;
      });
      expect(values(round(x))).toEqual(want);
      expect(values(floor(add(tensor(raw), 0)))).toEqual(Array.from(raw, Math.floor));
    }
  });

  it("reject bool input", () => {
    expect(() => round(tensor([true]))).toThrow("round: x must be a numeric tensor, got bool");
    expect(() => floor([1] as unknown as Tensor)).toThrow("floor: x must be a Tensor");
  });
});
