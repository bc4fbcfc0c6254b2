import { cast, sigmoid, type Tensor, tensor, valueAndGrad } from "@focalgrad/core";
import { assertGradcheck, assertGradgradcheck } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { focal, focalFromLogits, retinanetFocal } from "../src/index.js";
import { allFinite, caseTensors, close, detectionCase, f64, GAMMAS } from "./helpers.js";

const gradOf = (loss: (yTrue: Tensor, yPred: Tensor) => Tensor, yTrue: Tensor) =>
  valueAndGrad((p: Tensor) => loss(yTrue, p));

describe("focalFromLogits", () => {
  it("exact value worked out by hand", () => {
    // Object anchor, label 1, x = 2: 0.25 * (1 - sigmoid(2))^2 * log1p(e^-2)
    //   = 0.25 * 0.01420933661861107 * 0.1269280110429725 = 0.00045089070881009483
    // Background anchor, label 0, x = -1: 0.75 * sigmoid(-1)^2 * log1p(e^-1)
    //   = 0.75 * 0.07232948812851325 * 0.31326168751822286 = 0.016993543131350496
    // Ignored anchor: nothing. Sum 0.017444433840160593, normaliser max(1, 1) = 1.
    const yTrue = f64([
      [
        [1, 1],
        [0, 0],
        [1, -1],
      ],
    ]);
    expect(focalFromLogits()(yTrue, f64([[[2], [-1], [Number.NaN]]])).item()).toBeCloseTo(
      0.017444433840160593,
      15,
    );
  });

  it("equals focal on sigmoid(logits) away from the clip (value and gradient in p)", () => {
    fc.assert(
      fc.property(
        detectionCase({ predMin: -6, predMax: 6, softLabels: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS),
        (c, alpha, gamma) => {
          const [yTrue, logits] = caseTensors(c);
          const fromLogits = valueAndGrad((x: Tensor) =>
            focalFromLogits({ alpha, gamma })(yTrue, x),
          );
          const onProbabilities = valueAndGrad((x: Tensor) =>
            focal({ alpha, gamma })(yTrue, sigmoid(x)),
          );
          const [v1, g1] = fromLogits(logits);
          const [v2, g2] = onProbabilities(logits);
          expect(close(v1.item(), v2.item(), 1e-10, 1e-13)).toBe(true);
          for (let i = 0; i < logits.size; i++) {
            expect(close((g1 as Tensor).data[i], (g2 as Tensor).data[i], 1e-9, 1e-12)).toBe(true);
          }
        },
      ),
      { numRuns: 70 },
    );
  });

  it("gradients match central differences", () => {
    fc.assert(
      fc.property(
        detectionCase({ maxAnchors: 3, predMin: -5, predMax: 5 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS),
        (c, alpha, gamma) => {
          const [yTrue, logits] = caseTensors(c);
          assertGradcheck((x) => focalFromLogits({ alpha, gamma })(yTrue, x), [logits]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("second order on small cases", () => {
    fc.assert(
      fc.property(
        detectionCase({
          minBatch: 1,
          maxBatch: 1,
          maxAnchors: 2,
          maxClasses: 2,
          predMin: -4,
          predMax: 4,
        }),
        fc.constantFrom(...GAMMAS),
        (c, gamma) => {
          const [yTrue, logits] = caseTensors(c);
          assertGradgradcheck((x) => focalFromLogits({ gamma })(yTrue, x), [logits], {
            atol: 1e-4,
          });
        },
      ),
      { numRuns: 15 },
    );
  });

  for (const gamma of GAMMAS) {
    it(`finite loss and gradient at logits ±1e4 and ±40, gamma ${gamma}, ignored NaN`, () => {
      for (const dtype of ["float32", "float64"] as const) {
        const yTrue = tensor(
          [
            [
              [1, 0, 1, 0, 1],
              [0, 1, 0, 1, 0],
              [1, 0, 1, 0, 0],
              [1, 1, 1, 1, -1],
            ],
          ],
          { dtype },
        );
        const logits = tensor(
          [
            [
              [1e4, -1e4, 40, -40],
              [1e4, -1e4, 40, -40],
              [-1e4, 1e4, -40, 40],
              [Number.NaN, 0, 1e4, 1],
            ],
          ],
          { dtype },
        );
        const [value, g] = gradOf(focalFromLogits({ gamma }), yTrue)(logits);
        expect(Number.isFinite(value.item())).toBe(true);
        expect(allFinite(g as Tensor)).toBe(true);
      }
    });
  }

  it("a NaN logit in an anchor that is not ignored propagates", () => {
    expect(focalFromLogits()(f64([[[1, 1]]]), f64([[[Number.NaN]]])).item()).toBeNaN();
  });

  it("float32 and float64 agree to float32 precision", () => {
    fc.assert(
      fc.property(
        detectionCase({ predMin: -8, predMax: 8 }),
        fc.constantFrom(...GAMMAS),
        (c, gamma) => {
          const [t64, x64] = caseTensors(c);
          const x32 = cast(x64, "float32");
          const loss = focalFromLogits({ gamma });
          const [v32, g32] = gradOf(loss, cast(t64, "float32"))(x32);
          const [v64, g64] = gradOf(loss, t64)(cast(x32, "float64"));
          expect(close(v32.item(), v64.item(), 1e-5, 1e-6)).toBe(true);
          for (let i = 0; i < x32.size; i++) {
            expect(close((g32 as Tensor).data[i], (g64 as Tensor).data[i], 1e-5, 1e-6)).toBe(true);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("bad input names the logits", () => {
    expect(() => focalFromLogits()(f64([[[1, 1]]]), tensor([[[1]]], { dtype: "int32" }))).toThrow(
      /focalFromLogits: logits must hold float32 or float64 logits/,
    );
    expect(() => focalFromLogits()(f64([[[1, 1]]]), f64([[[1, 2]]]))).toThrow(
      /focalFromLogits: the last dimension of yTrue must be C \+ 1 = 3/,
    );
    expect(() => focalFromLogits({ gamma: -2 })).toThrow(/focalFromLogits: gamma must be/);
    expect(() => focalFromLogits({ alpha: 2 })).toThrow(
      /focalFromLogits: alpha must be in \[0, 1\]/,
    );
  });
});

describe("retinanetFocal (keras-retinanet, soft labels by a cutoff)", () => {
  it("exact value worked out by hand", () => {
    // B = 1, N = 3, C = 2, alpha 0.25, gamma 2, cutoff 0.5.
    const yTrue = f64([
      [
        [0.8, 0, 1],
        [0.3, 0, 0],
        [1, 1, -1],
      ],
    ]);
    const yPred = f64([
      [
        [0.7, 0.1],
        [0.2, 0.1],
        [Number.NaN, 0.5],
      ],
    ]);
    // Object, label 0.8 > 0.5: 0.25 * (1 - 0.7)^2 = 0.0225, BCE(0.8, 0.7) = -(0.8 ln 0.7 + 0.2 ln 0.3)
    //   = 0.5261345160161731 → 0.011838026610363895
    // Object, label 0: 0.75 * 0.1^2 = 0.0075, BCE = -ln 0.9 → 0.0007902038674336971
    // Background, label 0.3 (not above the cutoff): 0.75 * 0.2^2 = 0.03, BCE(0.3, 0.2)
    //   = -(0.3 ln 0.2 + 0.7 ln 0.8) = 0.6390318596501768 → 0.019170955789505305
    // Background, label 0: 0.0075 * -ln 0.9 → 0.0007902038674336971
    // Sum 0.03258939013473659; one object anchor → normaliser 1.
    const [value, g] = gradOf(retinanetFocal(), yTrue)(yPred);
    expect(value.item()).toBeCloseTo(0.03258939013473659, 15);
    expect(Array.from((g as Tensor).data.slice(4))).toEqual([0, 0]);
  });

  it("differs from the seed only on background anchors whose label is above the cutoff", () => {
    // Background anchor, stored label 1, p = 0.6:
    //   retinanetFocal: positive, 0.25 * 0.4^2 * -ln 0.6 = 0.02043302495063963
    //   focal (seed):   0.75 * 0.6^2 * -ln 0.6 = 0.1379229184168175
    const yTrue = f64([[[1, 0]]]);
    const yPred = f64([[[0.6]]]);
    expect(retinanetFocal()(yTrue, yPred).item()).toBeCloseTo(0.02043302495063963, 15);
    expect(focal()(yTrue, yPred).item()).toBeCloseTo(0.1379229184168175, 15);
  });

  it("equals the seed when background labels are 0 and object labels are 0/1", () => {
    fc.assert(
      fc.property(
        detectionCase(),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS),
        (c, alpha, gamma) => {
          const k = c.classes;
          const yTrueData = c.yTrue.map((v, i) => {
            const anchor = Math.floor(i / (k + 1));
            const state = c.yTrue[anchor * (k + 1) + k];
            return i % (k + 1) !== k && state === 0 ? 0 : v;
          });
          const [yTrue, yPred] = caseTensors({ ...c, yTrue: yTrueData });
          const a = retinanetFocal({ alpha, gamma })(yTrue, yPred).item();
          const b = focal({ alpha, gamma })(yTrue, yPred).item();
          expect(close(a, b, 1e-12, 1e-15)).toBe(true);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("gradients match central differences (soft labels, every cutoff)", () => {
    fc.assert(
      fc.property(
        detectionCase({ maxAnchors: 3, softLabels: true }),
        fc.constantFrom(...GAMMAS),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (c, gamma, cutoff) => {
          const [yTrue, yPred] = caseTensors(c);
          assertGradcheck((p) => retinanetFocal({ gamma, cutoff })(yTrue, p), [yPred]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("bad input", () => {
    expect(() => retinanetFocal({ cutoff: 2 })).toThrow(
      /retinanetFocal: cutoff must be in \[0, 1\], got 2/,
    );
    expect(() => retinanetFocal({ alpha: -0.1 })).toThrow(
      /retinanetFocal: alpha must be in \[0, 1\]/,
    );
    expect(() => retinanetFocal()(f64([[[1.5, 1]]]), f64([[[0.5]]]))).toThrow(
      /retinanetFocal: the labels of yTrue must lie in \[0, 1\]/,
    );
  });
});
