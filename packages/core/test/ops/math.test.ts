/** Tests of ops/math.ts: unary gradients against finite differences, kinks, stability, errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  abs,
  add,
  ceil,
  clip,
  erf,
  exp,
  floor,
  gelu,
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
  ["erf", erf, { min: -3, max: 3 }, "op"],
  ["gelu", gelu, { min: -3, max: 3 }, "op"],
  ["gelu tanh", (x) => gelu(x, { approximate: "tanh" }), { min: -3, max: 3 }, "op"],
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
    for (const op of [exp, log, log1p, sqrt, abs, sigmoid, logSigmoid, softplus, tanh, relu, erf]) {
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
      ["erf", erf],
      ["gelu", gelu],
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

/** How many float64 values lie between a and b (0 when equal): the error in units in the last place. */
function ulps(a: number, b: number): number {
  const bits = (v: number) => {
    const n = new BigInt64Array(new Float64Array([v]).buffer)[0];
    return n < 0n ? -(n & 0x7fffffffffffffffn) : n; // a monotone integer scale through ±0
  };
  return Math.abs(Number(bits(a) - bits(b)));
}

/**
 * erf from its series with positive terms, erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)):
 * no cancellation, so a few ulps in float64 for |x| ≤ 2; an independent reference for the property.
 */
function erfSeries(x: number): number {
  let term = x;
  let total = x;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(total); n++) {
    term *= (2 * x * x) / (2 * n + 1);
    total += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * total;
}

describe("erf", () => {
  it("matches tabulated values to within an ulp", () => {
    // erf to 25 digits from mpmath at 40 digits (not from this code); their first ten decimals
    // are those of Abramowitz and Stegun's table 7.1 (0.5204998778, 0.8427007929, 0.9661051465,
    // 0.9953222650). The points include both ends of Cody's three ranges (0.46875 and 4).
    const table: [number, string][] = [
      [1e-10, "1.12837916709551261500173e-10"],
      [0.1, "0.1124629160182848984047123"],
      [0.25, "0.2763263901682369329850683"],
      [0.46875, "0.4926134732179379915881761"],
      [0.5, "0.5204998778130465376827467"],
      [0.75, "0.7111556336535151315989378"],
      [1, "0.8427007929497148693412206"],
      [1.5, "0.9661051464753107270669763"],
      [2, "0.9953222650189527341620693"],
      [2.5, "0.9995930479825550410604358"],
      [3, "0.9999779095030014145586272"],
      [3.5, "0.9999992569016276585872545"],
      [4, "0.9999999845827420997199811"],
      [4.5, "0.9999999998033839558457113"],
      [5, "0.999999999998462540205572"],
      [5.5, "0.999999999999992642152082"],
      // 1 − 7.2e-17: nearer to 1 − 2⁻⁵³ than to 1. erf(6) = 1 − 2.2e-17 rounds to 1.
      [5.9, "0.9999999999999999280959022"],
      [6, "0.9999999999999999784802633"],
      [-0.3, "-0.328626759459127416189618"],
      [-2.2, "-0.9981371537020181101414414"],
    ];
    const got = erf(f64(table.map(([x]) => x))).toArray() as number[];
    table.forEach(([x, want], i) => {
      expect(ulps(got[i], Number(want)), `erf(${x}) = ${got[i]}, want ${want}`).toBeLessThanOrEqual(
        1,
      );
    });
    // Past 5.5 erf is 1 − erfc with erfc below an ulp of 1: one subtraction, correctly rounded.
    expect(got[table.findIndex(([x]) => x === 6)]).toBe(1);
    expect(got[table.findIndex(([x]) => x === 5.9)]).toBe(1 - 2 ** -53);
  });

  it("agrees with an independent series, is odd and stays within [−1, 1] (property)", () => {
    fc.assert(
      fc.property(fc.double({ min: -2, max: 2, noNaN: true }), (x) => {
        const [value, mirrored] = erf(f64([x, -x])).toArray() as number[];
        expect(Object.is(mirrored, -value)).toBe(true);
        // Both sides within a few ulps (2.2e-16 relative each).
        expect(Math.abs(value - erfSeries(x))).toBeLessThanOrEqual(1e-15 * Math.abs(value));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (x) => {
        const value = erf(f64([x])).item();
        expect(Math.abs(value)).toBeLessThanOrEqual(1);
        expect(Math.sign(value)).toBe(Math.sign(x));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps ±0, reaches ±1 at ±∞ and propagates NaN", () => {
    const y = erf(f64([0, -0, Infinity, -Infinity, Number.NaN, 27, -1e300, 5e-324]));
    // erf(x) ≈ 2x/√π near 0: the smallest subnormal times 1.128 rounds back to itself.
    expect(values(y)).toEqual([0, -0, 1, -1, Number.NaN, 1, -1, 5e-324]);
    expect(Object.is(y.data[1], -0)).toBe(true);
  });

  it("is continuous across the ends of its ranges", () => {
    // The float64 neighbours of 0.46875 and 4 use different formulas on either side. At 0.46875
    // the input step of 2⁻⁵² · 0.46875 moves erf by its slope 2/√π · e^(−0.2197) = 0.905 times that,
    // 1.7 ulps of erf (ulp 2⁻⁵⁴ there), and each side may be off by up to 2 ulps: at most 5 apart.
    // At 4 the slope is 1.3e-7: the three values may differ by rounding only (1 ulp each side).
    const ends = [0.46875, 4].flatMap((x) => [x - 2 ** -52 * x, x, x + 2 ** -52 * x]);
    const got = erf(f64(ends)).toArray() as number[];
    for (const [k, most] of [
      [0, 5],
      [3, 2],
    ]) {
      expect(ulps(got[k], got[k + 1])).toBeLessThanOrEqual(most);
      expect(ulps(got[k + 1], got[k + 2])).toBeLessThanOrEqual(most);
    }
  });

  it("in float32 is the float64 value of the float32 input, rounded", () => {
    const inputs = [0.3, 0.46875, 1.1, -2.7, 3.99, 4.2, 9];
    const single = erf(tensor(inputs, { dtype: "float32" }));
    expect(single.dtype).toBe("float32");
    const double = erf(f64(inputs.map(Math.fround))).toArray() as number[];
    expect(values(single)).toEqual(double.map(Math.fround));
  });

  it("has gradient 2/√π · e^(−x²), exactly 0 where e^(−x²) underflows", () => {
    const x = f64([0, 1, -1, 30], true);
    sum(erf(x)).backward();
    // 2/√π = 1.1283791670955126; at ±1 it is multiplied by e⁻¹: 0.4151074974205947; e^(−900) = 0.
    const [at0, at1, atMinus1, at30] = values(x.grad);
    expect(at0).toBe(2 / Math.sqrt(Math.PI));
    expect(at1).toBeCloseTo(0.4151074974205947, 15);
    expect(atMinus1).toBe(at1);
    expect(at30).toBe(0);
  });
});

describe("gelu", () => {
  it("is x · Φ(x), or its tanh approximation", () => {
    // x · Φ(x) with the standard normal Φ(1) = 0.8413447460685429, Φ(−1) = 1 − Φ(1), Φ(0.5) =
    // 0.6914624612740131: gelu(1) = 0.8413447460685429, gelu(−1) = −0.15865525393145705,
    // gelu(0.5) = 0.34573123063700656.
    const exact = gelu(f64([1, -1, 0.5, 0])).toArray() as number[];
    [0.8413447460685429, -0.15865525393145705, 0.34573123063700656, 0].forEach((want, i) => {
      expect(exact[i]).toBeCloseTo(want, 15);
    });
    // tanh form at 1: √(2/π) · 1.044715 = 0.83356196893916…, whose tanh is 0.68238398121655…, so
    // (1 + 0.68238398) / 2 = 0.8411919906082767; at −1 it is −(1 − 0.8411919906) = −0.1588080093917233.
    const approx = gelu(f64([1, -1, 0]), { approximate: "tanh" }).toArray() as number[];
    [0.8411919906082767, -0.1588080093917233, 0].forEach((want, i) => {
      expect(approx[i]).toBeCloseTo(want, 15);
    });
  });

  it("has derivative Φ(x) + x · φ(x): 1/2 at 0 in both forms", () => {
    // Φ(1) + φ(1) = 0.8413447460685429 + 0.24197072451914334 = 1.0833154705876864.
    for (const approximate of ["none", "tanh"] as const) {
      const x = f64([0, 1], true);
      sum(gelu(x, { approximate })).backward();
      const [at0, at1] = values(x.grad);
      expect(at0).toBe(0.5);
      // The tanh form's slope, (1 + tanh u)/2 + x/2 · (1 − tanh² u) · u' with u = k(x + 0.044715x³),
      // k = √(2/π): at 1, 0.84119199 + 0.5 · 0.53435210 · (0.79788456 · 1.134145) = 1.08296408.
      expect(at1).toBeCloseTo(approximate === "none" ? 1.0833154705876864 : 1.0829640838457826, 14);
    }
  });

  it("keeps the dtype and rejects a bad approximation", () => {
    expect(gelu(tensor([1], { dtype: "float32" })).dtype).toBe("float32");
    const x = tensor([1]);
    expect(() => gelu(x, { approximate: "erf" as "none" })).toThrow(
      'gelu: approximate must be "none" or "tanh", got "erf"',
    );
    expect(() => gelu(x, { approx: "tanh" } as never)).toThrow(
      'gelu: unknown option "approx" (expected approximate)',
    );
    expect(() => gelu(x, "tanh" as never)).toThrow("gelu: options must be an object");
  });
});
