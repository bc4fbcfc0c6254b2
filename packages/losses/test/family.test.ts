import { cast, grad, type Tensor, tensor } from "@focalgrad/core";
import { assertGradcheck, floatTensor } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  distributionFocalLoss,
  focalStar,
  poly1FocalLoss,
  qualityFocalLoss,
  sigmoidFocalLoss,
  varifocalLoss,
} from "../src/index.js";
import { allFinite, close, f64, GAMMAS } from "./helpers.js";

const sizes = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 2 });
const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
const hardTargets = (s: number[]) =>
  fc
    .array(fc.constantFrom(0, 1), { minLength: count(s), maxLength: count(s) })
    .map((v) => tensor(v, { shape: s, dtype: "float64" }));
/** Quality targets: 0 on most entries, an IoU in (0, 1] elsewhere. */
const qualityTargets = (s: number[]) =>
  fc
    .array(fc.oneof(fc.constant(0), fc.double({ min: 0.05, max: 1, noNaN: true })), {
      minLength: count(s),
      maxLength: count(s),
    })
    .map((v) => tensor(v, { shape: s, dtype: "float64" }));
const logitsFor = (s: number[]) => floatTensor(s, { min: -5, max: 5 });
const saturated = (dtype: "float32" | "float64") =>
  tensor([1e4, -1e4, 1e4, -1e4, 40, -40], { dtype });

function expectFiniteEverywhere(f: (x: Tensor) => Tensor) {
  for (const dtype of ["float32", "float64"] as const) {
    const x = saturated(dtype);
    expect(Number.isFinite(f(x).item())).toBe(true);
    expect(allFinite(grad(f)(x))).toBe(true);
  }
}

describe("focalStar (FL*, Lin et al. appendix A)", () => {
  it("exact values worked out by hand", () => {
    // x = 3, t = 1: x_t = 3, z = 2 * 3 + 1 = 7, -logSigmoid(7) / 2 = log1p(e^-7) / 2 = 0.00045573322688712237
    // x = -0.5, t = 0: x_t = 0.5, z = 2, log1p(e^-2) / 2 = 0.06346400552148625
    const out = focalStar(f64([3, -0.5]), f64([1, 0])).data;
    expect(out[0]).toBeCloseTo(0.00045573322688712237, 17);
    expect(out[1]).toBeCloseTo(0.06346400552148625, 16);
  });
  it("gradients match central differences", () => {
    fc.assert(
      fc.property(
        sizes.chain((s) => fc.tuple(logitsFor(s), hardTargets(s))),
        fc.constantFrom(0.5, 1, 2, 5),
        fc.double({ min: -2, max: 2, noNaN: true }),
        ([x, t], gamma, beta) => {
          assertGradcheck((l) => focalStar(l, t, { gamma, beta, reduction: "sum" }), [x], {
            wrt: [0],
          });
        },
      ),
      { numRuns: 60 },
    );
  });
  it("finite at ±1e4", () => {
    const t = tensor([1, 0, 0, 1, 1, 0]);
    expectFiniteEverywhere((x) => focalStar(x, cast(t, x.dtype), { reduction: "sum" }));
  });
  it("bad input", () => {
    expect(() => focalStar(f64([1]), f64([1]), { gamma: 0 })).toThrow(
      /focalStar: gamma must be a finite number > 0, got 0/,
    );
    expect(() => focalStar(f64([1]), f64([0.5]))).toThrow(
      /focalStar: targets must be 0 or 1, got 0.5/,
    );
    expect(() => focalStar(f64([1]), f64([1]), { reduction: "avg" as "sum" })).toThrow(
      /reduction must be/,
    );
  });
});

describe("qualityFocalLoss (GFL)", () => {
  it("exact values worked out by hand", () => {
    // Positive, x = 1.2, y = 0.8: sigma = 0.7685247834990175, |0.8 - sigma|^2 = 0.0009908…,
    //   BCE(1.2, 0.8) = 1.2 - 0.96 + log1p(e^-1.2) → product 0.0004985965320095442
    // Negative, x = -2, y = 0: sigma = 0.11920292202211755, sigma^2 * log1p(e^-2) = 0.0018035628352403752
    // mean of the two: 0.0011510796836249598
    const out = qualityFocalLoss(f64([1.2, -2]), f64([0.8, 0]), { reduction: "none" }).data;
    expect(out[0]).toBeCloseTo(0.0004985965320095442, 17);
    expect(out[1]).toBeCloseTo(0.0018035628352403752, 17);
    expect(qualityFocalLoss(f64([1.2, -2]), f64([0.8, 0])).item()).toBeCloseTo(
      0.0011510796836249598,
      17,
    );
  });
  it("gradients match central differences (logits; the target is detached)", () => {
    fc.assert(
      fc.property(
        sizes.chain((s) => fc.tuple(logitsFor(s), qualityTargets(s))),
        fc.constantFrom(...GAMMAS),
        ([x, q], beta) => {
          assertGradcheck((l) => qualityFocalLoss(l, q, { beta, reduction: "sum" }), [x], {
            wrt: [0],
          });
        },
      ),
      { numRuns: 60 },
    );
  });
  it("no gradient reaches the target", () => {
    const q = f64([0.6, 0]);
    const g = grad((t: Tensor) => qualityFocalLoss(f64([0.3, -1]), t, { reduction: "sum" }))(q);
    expect(Array.from(g.data)).toEqual([0, 0]);
  });
  it("with 0/1 targets and beta = gamma it is sigmoidFocalLoss without alpha", () => {
    fc.assert(
      fc.property(
        sizes.chain((s) => fc.tuple(logitsFor(s), hardTargets(s))),
        fc.constantFrom(...GAMMAS),
        ([x, t], g) => {
          const a = qualityFocalLoss(x, t, { beta: g, reduction: "none" }).data;
          const b = sigmoidFocalLoss(x, t, { alpha: -1, gamma: g }).data;
          for (let i = 0; i < a.length; i++) expect(close(a[i], b[i], 1e-12, 1e-300)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
  it("finite at ±1e4 for every beta", () => {
    for (const beta of GAMMAS) {
      const q = tensor([1, 0, 0.5, 0, 1, 0]);
      expectFiniteEverywhere((x) =>
        qualityFocalLoss(x, cast(q, x.dtype), { beta, reduction: "sum" }),
      );
    }
  });
  it("bad input", () => {
    expect(() => qualityFocalLoss(f64([1]), f64([1.5]))).toThrow(
      /qualityFocalLoss: targets must lie in \[0, 1\]/,
    );
    expect(() => qualityFocalLoss(f64([1]), f64([1]), { beta: -1 })).toThrow(
      /qualityFocalLoss: beta must be/,
    );
  });
});

describe("distributionFocalLoss (GFL)", () => {
  it("exact values worked out by hand", () => {
    // logits [0.1, 2, 0.3, -1]: logSumExp = 2.3235600980567415,
    //   log S = [-2.2235600980567414, -0.32356009805674146, -2.0235600980567416, -3.3235600980567415]
    // y = 1.4: l = 1, r = 2, weights 0.6 and 0.4: -(0.6 * -0.32356… + 0.4 * -2.02356…) = 1.0035600980567416
    // y = 3 = K - 1: the last bin's cross-entropy, 3.3235600980567415
    const logits = f64([
      [0.1, 2, 0.3, -1],
      [0.1, 2, 0.3, -1],
    ]);
    const out = distributionFocalLoss(logits, f64([1.4, 3]), { reduction: "none" }).data;
    expect(out[0]).toBeCloseTo(1.0035600980567416, 14);
    expect(out[1]).toBeCloseTo(3.3235600980567415, 14);
  });
  it("gradients match central differences", () => {
    const dfl = fc
      .record({ rows: fc.integer({ min: 1, max: 4 }), bins: fc.integer({ min: 2, max: 6 }) })
      .chain(({ rows, bins }) =>
        fc.tuple(
          floatTensor([rows, bins], { min: -4, max: 4 }),
          fc
            .array(fc.double({ min: 0, max: bins - 1, noNaN: true }), {
              minLength: rows,
              maxLength: rows,
            })
            .map((v) => f64(v)),
        ),
      );
    fc.assert(
      fc.property(dfl, ([x, y]) => {
        assertGradcheck((l) => distributionFocalLoss(l, y), [x], { wrt: [0] });
      }),
      { numRuns: 40 },
    );
  });
  it("finite at ±1e4", () => {
    const x = f64([
      [1e4, -1e4, 0],
      [-1e4, 1e4, -1e4],
    ]);
    const f = (l: Tensor) => distributionFocalLoss(l, f64([0.5, 2]));
    expect(Number.isFinite(f(x).item())).toBe(true);
    expect(allFinite(grad(f)(x))).toBe(true);
  });
  it("bad input", () => {
    const x = f64([[0, 1, 2]]);
    expect(() => distributionFocalLoss(x, f64([2.5]))).toThrow(
      /distributionFocalLoss: targets must lie in \[0, 2\], got 2.5 at row 0/,
    );
    expect(() => distributionFocalLoss(f64([[0]]), f64([0]))).toThrow(/K >= 2 bins/);
    expect(() => distributionFocalLoss(x, f64([1, 1]))).toThrow(/targets must have shape \[1\]/);
  });
});

describe("varifocalLoss", () => {
  it("exact values worked out by hand", () => {
    // Positive, x = 0.8, q = 0.7: weight q = 0.7, BCE(0.8, 0.7) = 0.6111006659477778 → 0.42777046616344444
    // Negative, x = -2.5, q = 0: 0.75 * sigmoid(-2.5)^2 * log1p(e^-2.5) = 0.00034047607097137703
    // mean: 0.2140554711172079
    const out = varifocalLoss(f64([0.8, -2.5]), f64([0.7, 0]), { reduction: "none" }).data;
    expect(out[0]).toBeCloseTo(0.42777046616344444, 15);
    expect(out[1]).toBeCloseTo(0.00034047607097137703, 17);
    expect(varifocalLoss(f64([0.8, -2.5]), f64([0.7, 0])).item()).toBeCloseTo(
      0.2140554711172079,
      15,
    );
    // Without IoU weighting the positive's weight is 1: 0.6111006659477778
    expect(varifocalLoss(f64([0.8]), f64([0.7]), { iouWeighted: false }).item()).toBeCloseTo(
      0.6111006659477778,
      15,
    );
  });
  it("gradients match central differences (the negatives' weight is differentiated)", () => {
    fc.assert(
      fc.property(
        sizes.chain((s) => fc.tuple(logitsFor(s), qualityTargets(s))),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS),
        fc.boolean(),
        ([x, q], alpha, gamma, iouWeighted) => {
          assertGradcheck(
            (l) => varifocalLoss(l, q, { alpha, gamma, iouWeighted, reduction: "sum" }),
            [x],
            {
              wrt: [0],
            },
          );
        },
      ),
      { numRuns: 60 },
    );
  });
  it("finite at ±1e4 for every gamma", () => {
    for (const gamma of GAMMAS) {
      const q = tensor([1, 0, 0.5, 0, 0.9, 0]);
      expectFiniteEverywhere((x) =>
        varifocalLoss(x, cast(q, x.dtype), { gamma, reduction: "sum" }),
      );
    }
  });
  it("bad input", () => {
    expect(() => varifocalLoss(f64([1]), f64([-0.1]))).toThrow(
      /varifocalLoss: targets must lie in \[0, 1\]/,
    );
    expect(() => varifocalLoss(f64([1]), f64([1]), { alpha: 1.5 })).toThrow(
      /varifocalLoss: alpha must be in \[0, 1\]/,
    );
    expect(() => varifocalLoss(f64([1]), f64([1]), { reduction: "avg" as "sum" })).toThrow(
      /varifocalLoss: reduction must be/,
    );
  });
});

describe("poly1FocalLoss (PolyLoss)", () => {
  it("exact values worked out by hand (epsilon -1)", () => {
    // x = 1.5, t = 1: FL = 0.25 * 0.18242552380635635^2 * log1p(e^-1.5) = 0.0016757117316439144,
    //   poly term -1 * 0.18242552380635635^3 → -0.004395240361589479
    // x = -2, t = 0: FL = 0.75 * 0.11920292202211755^2 * log1p(e^-2) = 0.0013526721264302813,
    //   -1 * 0.11920292202211755^3 → -0.0003411223185040295
    const out = poly1FocalLoss(f64([1.5, -2]), f64([1, 0]), { epsilon: -1 }).data;
    expect(out[0]).toBeCloseTo(-0.004395240361589479, 16);
    expect(out[1]).toBeCloseTo(-0.0003411223185040295, 16);
  });
  it("epsilon 0 is sigmoidFocalLoss", () => {
    fc.assert(
      fc.property(
        sizes.chain((s) => fc.tuple(logitsFor(s), hardTargets(s))),
        fc.constantFrom(...GAMMAS),
        ([x, t], gamma) => {
          const a = poly1FocalLoss(x, t, { gamma, epsilon: 0 }).data;
          const b = sigmoidFocalLoss(x, t, { gamma }).data;
          for (let i = 0; i < a.length; i++) expect(a[i]).toBe(b[i]);
        },
      ),
      { numRuns: 40 },
    );
  });
  it("gradients match central differences", () => {
    fc.assert(
      fc.property(
        sizes.chain((s) => fc.tuple(logitsFor(s), qualityTargets(s))),
        fc.constantFrom(...GAMMAS),
        fc.double({ min: -2, max: 2, noNaN: true }),
        ([x, t], gamma, epsilon) => {
          assertGradcheck((l) => poly1FocalLoss(l, t, { gamma, epsilon, reduction: "sum" }), [x], {
            wrt: [0],
          });
        },
      ),
      { numRuns: 60 },
    );
  });
  it("finite at ±1e4 for every gamma", () => {
    for (const gamma of GAMMAS) {
      const t = tensor([1, 0, 0, 1, 0.5, 0]);
      expectFiniteEverywhere((x) =>
        poly1FocalLoss(x, cast(t, x.dtype), { gamma, reduction: "sum" }),
      );
    }
  });
  it("bad input", () => {
    expect(() => poly1FocalLoss(f64([1]), f64([1]), { epsilon: Number.NaN })).toThrow(
      /poly1FocalLoss: epsilon must be a finite number/,
    );
    expect(() => poly1FocalLoss(f64([1]), f64([1]), { gamma: -1 })).toThrow(
      /poly1FocalLoss: gamma must be/,
    );
  });
});

describe("the family in float32 and float64", () => {
  const cases: [string, (x: Tensor, t: Tensor) => Tensor][] = [
    ["focalStar", (x, t) => focalStar(x, t, { reduction: "sum" })],
    ["qualityFocalLoss", (x, t) => qualityFocalLoss(x, t, { reduction: "sum" })],
    ["varifocalLoss", (x, t) => varifocalLoss(x, t, { reduction: "sum" })],
    ["poly1FocalLoss", (x, t) => poly1FocalLoss(x, t, { epsilon: -1, reduction: "sum" })],
  ];
  for (const [name, loss] of cases) {
    it(`${name}: values and gradients agree to float32 precision`, () => {
      fc.assert(
        fc.property(
          sizes.chain((s) => fc.tuple(logitsFor(s), hardTargets(s))),
          ([x, t]) => {
            const x32 = cast(x, "float32");
            const x64 = cast(x32, "float64");
            const on32 = (l: Tensor) => loss(l, cast(t, "float32"));
            const on64 = (l: Tensor) => loss(l, t);
            expect(close(on32(x32).item(), on64(x64).item(), 1e-5, 1e-6)).toBe(true);
            const g32 = grad(on32)(x32).data;
            const g64 = grad(on64)(x64).data;
            for (let i = 0; i < g32.length; i++)
              expect(close(g32[i], g64[i], 1e-5, 1e-6)).toBe(true);
          },
        ),
        { numRuns: 25 },
      );
    });
  }
  it("distributionFocalLoss: values agree to float32 precision", () => {
    const x32 = cast(
      f64([
        [0.3, -1.2, 2.5, 0.1],
        [1.1, 0.4, -0.7, 2],
      ]),
      "float32",
    );
    const y32 = cast(f64([0.25, 2.75]), "float32");
    const a = distributionFocalLoss(x32, y32).item();
    const b = distributionFocalLoss(cast(x32, "float64"), cast(y32, "float64")).item();
    expect(close(a, b, 1e-6, 1e-7)).toBe(true);
  });
});
