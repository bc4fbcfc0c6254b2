import { bceWithLogits, cast, div, grad, mean, sum, type Tensor, tensor } from "@focalgrad/core";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { imageNormalizer, sigmoidFocalLoss } from "../src/index.js";
import { allFinite, close, f64, GAMMAS } from "./helpers.js";

const shapes = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });
const pair = (targetsSoft: boolean) =>
  shapes.chain((s) =>
    fc.tuple(
      floatTensor(s, { min: -6, max: 6 }),
      targetsSoft
        ? floatTensor(s, { min: 0, max: 1 })
        : fc
            .array(fc.constantFrom(0, 1), {
              minLength: s.reduce((a, b) => a * b, 1),
              maxLength: s.reduce((a, b) => a * b, 1),
            })
            .map((v) => tensor(v, { shape: s, dtype: "float64" })),
    ),
  );

describe("sigmoidFocalLoss: exact values worked out by hand", () => {
  const logits = f64([2, -1]);
  const targets = f64([1, 0]);
  // x = 2, t = 1: p = sigmoid(2) = 0.8807970779778823, 1 - p_t = 1 - p = 0.11920292202211769,
  //   (1 - p_t)^2 = 0.01420933661861107, BCE = log1p(e^-2) = 0.1269280110429725, alpha_t = 0.25
  //   loss = 0.25 * 0.01420933661861107 * 0.1269280110429725 = 0.00045089070881009483
  // x = -1, t = 0: p = sigmoid(-1) = 0.2689414213699951 = 1 - p_t, (1 - p_t)^2 = 0.07232948812851325,
  //   BCE = max(-1, 0) + log1p(e^-1) = 0.31326168751822286, alpha_t = 0.75
  //   loss = 0.75 * 0.07232948812851325 * 0.31326168751822286 = 0.0169935431313505
  it("'none', 'sum' and 'mean'", () => {
    const none = sigmoidFocalLoss(logits, targets).data;
    expect(none[0]).toBeCloseTo(0.00045089070881009483, 16);
    expect(none[1]).toBeCloseTo(0.0169935431313505, 15);
    // sum = 0.00045089070881009483 + 0.0169935431313505 = 0.017444433840160593; mean = sum / 2
    expect(sigmoidFocalLoss(logits, targets, { reduction: "sum" }).item()).toBeCloseTo(
      0.017444433840160593,
      15,
    );
    expect(sigmoidFocalLoss(logits, targets, { reduction: "mean" }).item()).toBeCloseTo(
      0.008722216920080296,
      15,
    );
  });

  it("a soft target", () => {
    // x = 0.5, t = 0.3: p = 0.6224593312018546, 1 - p_t = 0.3 (1 - p) + 0.7 p = 0.5489837324807418,
    //   BCE = 0.5 - 0.5 * 0.3 + log1p(e^-0.5) = 0.8240769841801067, alpha_t = 0.3 * 0.25 + 0.7 * 0.75 = 0.6
    //   loss = 0.6 * 0.5489837324807418^2 * 0.8240769841801067 = 0.14901774472877435
    expect(sigmoidFocalLoss(f64([0.5]), f64([0.3])).item()).toBeCloseTo(0.14901774472877435, 15);
  });

  it("a negative alpha turns the weighting off", () => {
    // x = 2, t = 1, gamma 1: (1 - p) * BCE = 0.11920292202211769 * 0.1269280110429725 = 0.015130189802777942
    expect(sigmoidFocalLoss(f64([2]), f64([1]), { alpha: -1, gamma: 1 }).item()).toBeCloseTo(
      0.015130189802777942,
      16,
    );
  });
});

describe("sigmoidFocalLoss: properties", () => {
  it("gradients match central differences (logits), hard and soft targets", () => {
    fc.assert(
      fc.property(
        fc.boolean().chain((soft) => pair(soft)),
        fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constant(-1)),
        fc.constantFrom(...GAMMAS),
        fc.constantFrom("none", "mean", "sum" as const),
        ([x, t], alpha, gamma, reduction) => {
          assertGradcheck((l) => sigmoidFocalLoss(l, t, { alpha, gamma, reduction }), [x], {
            wrt: [0],
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it("second order on small cases", () => {
    fc.assert(
      fc.property(pair(true), fc.constantFrom(0, 1, 2, 5), ([x, t], gamma) => {
        assertGradgradcheck((l) => sigmoidFocalLoss(l, t, { gamma, reduction: "sum" }), [x], {
          wrt: [0],
          atol: 1e-4,
        });
      }),
      { numRuns: 20 },
    );
  });

  it("with gamma 0 and alpha -1 it is bceWithLogits", () => {
    fc.assert(
      fc.property(
        fc.boolean().chain((soft) => pair(soft)),
        ([x, t]) => {
          const a = sigmoidFocalLoss(x, t, { alpha: -1, gamma: 0 }).data;
          const b = bceWithLogits(x, t).data;
          for (let i = 0; i < a.length; i++) expect(a[i]).toBe(b[i]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("with gamma 0 it is alpha_t-weighted bceWithLogits", () => {
    fc.assert(
      fc.property(pair(false), fc.double({ min: 0, max: 1, noNaN: true }), ([x, t], alpha) => {
        const a = sigmoidFocalLoss(x, t, { alpha, gamma: 0 }).data;
        const b = bceWithLogits(x, t).data;
        for (let i = 0; i < a.length; i++) {
          const alphaT = t.data[i] === 1 ? alpha : 1 - alpha;
          expect(close(a[i], alphaT * b[i], 1e-14, 1e-300)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("float32 and float64 agree to float32 precision", () => {
    fc.assert(
      fc.property(pair(true), fc.constantFrom(...GAMMAS), ([x, t], gamma) => {
        const x32 = cast(x, "float32");
        const f = (l: Tensor) => sigmoidFocalLoss(l, cast(t, l.dtype), { gamma, reduction: "sum" });
        const v32 = f(x32).item();
        const v64 = f(cast(x32, "float64")).item();
        expect(close(v32, v64, 1e-5, 1e-6)).toBe(true);
        const g32 = grad(f)(x32).data;
        const g64 = grad(f)(cast(x32, "float64")).data;
        for (let i = 0; i < g32.length; i++) expect(close(g32[i], g64[i], 1e-5, 1e-6)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});

describe("sigmoidFocalLoss: no NaN or infinity", () => {
  for (const gamma of GAMMAS) {
    it(`logits ±1e4 and ±40 with hard and soft targets, gamma ${gamma}`, () => {
      for (const dtype of ["float32", "float64"] as const) {
        const x = tensor([1e4, -1e4, 1e4, -1e4, 40, -40, 1e4, -1e4, 0], { dtype });
        const t = tensor([1, 0, 0, 1, 1, 0, 0.5, 0.3, 1], { dtype });
        const f = (l: Tensor) => sigmoidFocalLoss(l, t, { gamma, reduction: "sum" });
        expect(Number.isFinite(f(x).item())).toBe(true);
        expect(allFinite(grad(f)(x))).toBe(true);
      }
    });
  }

  it("a NaN logit propagates to its element (documented)", () => {
    const out = sigmoidFocalLoss(f64([Number.NaN, 1]), f64([1, 0]));
    expect(out.data[0]).toBeNaN();
    expect(Number.isFinite(out.data[1])).toBe(true);
  });

  it("an empty input: 'sum' is 0, 'mean' is NaN (as in PyTorch)", () => {
    const empty = tensor([], { shape: [0, 3], dtype: "float64" });
    expect(sigmoidFocalLoss(empty, empty, { reduction: "sum" }).item()).toBe(0);
    expect(sigmoidFocalLoss(empty, empty, { reduction: "mean" }).item()).toBeNaN();
  });
});

describe("sigmoidFocalLoss: bad input", () => {
  const x = f64([0.5, -0.5]);
  const t = f64([1, 0]);
  it("an unknown reduction", () => {
    expect(() => sigmoidFocalLoss(x, t, { reduction: "avg" as unknown as "mean" })).toThrow(
      /sigmoidFocalLoss: reduction must be 'none', 'mean' or 'sum', got "avg"/,
    );
  });
  it("alpha above 1 (a negative alpha is the documented 'off')", () => {
    expect(() => sigmoidFocalLoss(x, t, { alpha: 1.2 })).toThrow(
      /sigmoidFocalLoss: alpha must be a number <= 1 \(negative turns the weighting off\), got 1.2/,
    );
    expect(() => sigmoidFocalLoss(x, t, { alpha: -0.5 })).not.toThrow();
  });
  it("gamma < 0", () => {
    expect(() => sigmoidFocalLoss(x, t, { gamma: -0.5 })).toThrow(
      /sigmoidFocalLoss: gamma must be a finite number >= 0, got -0.5/,
    );
  });
  it("targets outside [0, 1]", () => {
    expect(() => sigmoidFocalLoss(x, f64([1, 2]))).toThrow(
      /sigmoidFocalLoss: targets must lie in \[0, 1\], got 2 at flat index 1/,
    );
  });
  it("integer logits", () => {
    expect(() => sigmoidFocalLoss(tensor([1, 0], { dtype: "int32" }), t)).toThrow(
      /sigmoidFocalLoss: logits must hold float32 or float64 logits, got an int32 tensor/,
    );
  });
  it("shapes that differ", () => {
    expect(() => sigmoidFocalLoss(x, f64([1, 0, 1]))).toThrow(
      /sigmoidFocalLoss: logits and targets must have the same shape, got \[2\] and \[3\]/,
    );
  });
});

describe("sigmoidFocalLoss: the per-image normaliser of torchvision's head", () => {
  it("sum per image divided by imageNormalizer, averaged over images", () => {
    // Two images of 2 anchors x 1 class; image 0 has one object, image 1 none.
    const x = f64([
      [[2], [-1]],
      [[-1], [-1]],
    ]);
    const t = f64([
      [[1], [0]],
      [[0], [0]],
    ]);
    const anchorState = f64([
      [1, 0],
      [0, 0],
    ]);
    const perImage = div(
      sum(sigmoidFocalLoss(x, t), { axis: [1, 2] }),
      imageNormalizer(anchorState),
    );
    // Image 0: (0.00045089070881009483 + 0.0169935431313505) / max(1, 1) = 0.017444433840160593
    // Image 1: 2 * 0.0169935431313505 / max(1, 0) = 0.033987086262701
    expect(perImage.data[0]).toBeCloseTo(0.017444433840160593, 15);
    expect(perImage.data[1]).toBeCloseTo(0.033987086262701, 15);
    // The head's loss: the mean over images, (0.017444433840160593 + 0.033987086262701) / 2
    expect(mean(perImage).item()).toBeCloseTo(0.0257157600514308, 15);
  });
});
