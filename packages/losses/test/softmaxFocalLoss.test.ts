import { cast, grad, logSoftmax, type Tensor, tensor } from "@focalgrad/core";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { softmaxFocalLoss } from "../src/index.js";
import { allFinite, close, f64, GAMMAS } from "./helpers.js";

const classification = fc
  .record({ rows: fc.integer({ min: 1, max: 4 }), classes: fc.integer({ min: 1, max: 4 }) })
  .chain(({ rows, classes }) =>
    fc.tuple(
      floatTensor([rows, classes], { min: -4, max: 4 }),
      fc
        .array(fc.integer({ min: 0, max: classes - 1 }), { minLength: rows, maxLength: rows })
        .map((v) => tensor(v, { dtype: "int32" })),
    ),
  );

describe("softmaxFocalLoss", () => {
  it("exact values worked out by hand", () => {
    // Row 0, logits [2, 0, -1], class 0: logSumExp = 2 + ln(1 + e^-2 + e^-3) = 2.1698460195562856,
    //   log p_t = -0.16984601955628564, p_t = 0.8437947344813395,
    //   loss = 0.25 * (1 - 0.8437947344813395)^2 * 0.16984601955628564 = 0.001036064327491789
    // Row 1, logits [0.1, 0.2, 3], class 2: log p_t = -0.10960146452146535, p_t = 0.8961912281346824,
    //   loss = 0.25 * 0.1038087718653176^2 * 0.10960146452146535 = 0.00029527350009991426
    const logits = f64([
      [2, 0, -1],
      [0.1, 0.2, 3],
    ]);
    const targets = tensor([0, 2], { dtype: "int32" });
    const none = softmaxFocalLoss(logits, targets, { reduction: "none" }).data;
    expect(none[0]).toBeCloseTo(0.001036064327491789, 16);
    expect(none[1]).toBeCloseTo(0.00029527350009991426, 16);
    // mean over N = 2: 0.0013313378275917032 / 2
    expect(softmaxFocalLoss(logits, targets).item()).toBeCloseTo(0.0006656689137958516, 16);
    expect(softmaxFocalLoss(logits, targets, { reduction: "sum" }).item()).toBeCloseTo(
      0.0013313378275917032,
      16,
    );
  });

  it("gradients match central differences", () => {
    fc.assert(
      fc.property(
        classification,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS),
        ([x, t], alpha, gamma) => {
          assertGradcheck((l) => softmaxFocalLoss(l, t, { alpha, gamma }), [x]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("second order", () => {
    fc.assert(
      fc.property(classification, fc.constantFrom(0, 1, 2, 5), ([x, t], gamma) => {
        assertGradgradcheck((l) => softmaxFocalLoss(l, t, { gamma }), [x], { atol: 1e-4 });
      }),
      { numRuns: 15 },
    );
  });

  it("with gamma 0 it is alpha times the mean cross-entropy", () => {
    fc.assert(
      fc.property(classification, fc.double({ min: 0, max: 1, noNaN: true }), ([x, t], alpha) => {
        const logp = logSoftmax(x).data;
        const k = x.shape[1];
        let total = 0;
        for (let n = 0; n < t.size; n++) total -= logp[n * k + t.data[n]];
        const expected = (alpha * total) / t.size;
        expect(
          close(softmaxFocalLoss(x, t, { alpha, gamma: 0 }).item(), expected, 1e-12, 1e-15),
        ).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  for (const gamma of GAMMAS) {
    it(`finite at logits ±1e4, gamma ${gamma}`, () => {
      for (const dtype of ["float32", "float64"] as const) {
        const x = tensor(
          [
            [1e4, -1e4, 0],
            [-1e4, 1e4, 1e4],
            [0, 0, -1e4],
          ],
          { dtype },
        );
        const t = tensor([0, 0, 2], { dtype: "int32" });
        const f = (l: Tensor) => softmaxFocalLoss(l, t, { gamma });
        expect(Number.isFinite(f(x).item())).toBe(true);
        expect(allFinite(grad(f)(x))).toBe(true);
      }
    });
  }

  it("float32 and float64 agree to float32 precision", () => {
    fc.assert(
      fc.property(classification, fc.constantFrom(...GAMMAS), ([x, t], gamma) => {
        const x32 = cast(x, "float32");
        const f = (l: Tensor) => softmaxFocalLoss(l, t, { gamma });
        expect(close(f(x32).item(), f(cast(x32, "float64")).item(), 1e-5, 1e-6)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  describe("bad input", () => {
    const x = f64([
      [1, 2],
      [3, 4],
    ]);
    it("class targets out of range", () => {
      expect(() => softmaxFocalLoss(x, tensor([0, 2], { dtype: "int32" }))).toThrow(
        /softmaxFocalLoss: targets must be class indices in \[0, 1\], got 2 at row 1/,
      );
      expect(() => softmaxFocalLoss(x, tensor([-1, 0], { dtype: "int32" }))).toThrow(
        /got -1 at row 0/,
      );
    });
    it("targets that are not int32 [N]", () => {
      expect(() => softmaxFocalLoss(x, f64([0, 1]))).toThrow(
        /softmaxFocalLoss: targets must be an int32 tensor of shape \[2\].*got a float64 tensor of shape \[2\]/,
      );
      expect(() => softmaxFocalLoss(x, tensor([0], { dtype: "int32" }))).toThrow(/shape \[2\]/);
    });
    it("an unknown reduction", () => {
      expect(() =>
        softmaxFocalLoss(x, tensor([0, 1], { dtype: "int32" }), {
          reduction: "max" as unknown as "sum",
        }),
      ).toThrow(/softmaxFocalLoss: reduction must be 'none', 'mean' or 'sum', got "max"/);
    });
    it("alpha, gamma and integer logits", () => {
      const t = tensor([0, 1], { dtype: "int32" });
      expect(() => softmaxFocalLoss(x, t, { alpha: -1 })).toThrow(
        /softmaxFocalLoss: alpha must be in \[0, 1\], got -1/,
      );
      expect(() => softmaxFocalLoss(x, t, { gamma: -1 })).toThrow(
        /softmaxFocalLoss: gamma must be/,
      );
      expect(() => softmaxFocalLoss(cast(x, "int32"), t)).toThrow(
        /softmaxFocalLoss: logits must hold float32 or float64/,
      );
      expect(() => softmaxFocalLoss(f64([1, 2]), t)).toThrow(
        /softmaxFocalLoss: logits must have shape \[N, K\]/,
      );
    });
  });
});
