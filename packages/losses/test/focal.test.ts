import {
  binaryCrossEntropy,
  cast,
  div,
  mul,
  sum,
  type Tensor,
  tensor,
  valueAndGrad,
} from "@focalgrad/core";
import { assertGradcheck, assertGradgradcheck } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { anchorStateOf, batchNormalizer, focal } from "../src/index.js";
import {
  allFinite,
  caseTensors,
  close,
  detectionCase,
  f64,
  GAMMAS,
  referenceFocal,
} from "./helpers.js";

const gradOf = (loss: (yTrue: Tensor, yPred: Tensor) => Tensor, yTrue: Tensor) =>
  valueAndGrad((p: Tensor) => loss(yTrue, p));

describe("focal: exact values worked out by hand", () => {
  it("one object, one background and one ignored anchor (alpha 0.25, gamma 2)", () => {
    // B = 1, N = 3, C = 2. Anchor 0 is an object with labels [1, 0], anchor 1 background, anchor 2 ignored.
    const yTrue = f64([
      [
        [1, 0, 1],
        [0, 0, 0],
        [0, 1, -1],
      ],
    ]);
    const yPred = f64([
      [
        [0.9, 0.2],
        [0.1, 0.3],
        [0.5, 0.5],
      ],
    ]);
    // Object, class 0 (label 1): alpha_t = 0.25, (1 - 0.9)^2 = 0.01, w = 0.0025, BCE = -ln 0.9 = 0.1053605156578263
    //   term = 0.0025 * 0.1053605156578263 = 0.000263401289144566
    // Object, class 1 (label 0): alpha_t = 0.75, 0.2^2 = 0.04, w = 0.03, BCE = -ln 0.8 = 0.2231435513142098
    //   term = 0.03 * 0.2231435513142098 = 0.006694306539426293
    // Background, class 0: w = 0.75 * 0.1^2 = 0.0075, BCE = -ln 0.9 → 0.000790203867433697
    // Background, class 1: w = 0.75 * 0.3^2 = 0.0675, BCE = -ln 0.7 = 0.3566749439387324 → 0.02407555871586444
    // Sum = 0.031823470411869, normaliser max(1, 1 object) = 1.
    const [value, g] = gradOf(focal({ alpha: 0.25, gamma: 2 }), yTrue)(yPred);
    expect(value.item()).toBeCloseTo(0.031823470411869, 14);
    const grad = (g as Tensor).data;
    // d/dp of 0.25 (1 - p)^2 (-ln p) at 0.9: 0.25 (-2 * 0.1 * 0.10536… - 0.01 / 0.9) = -0.008045803560669
    expect(grad[0]).toBeCloseTo(-0.008045803560669, 14);
    // d/dp of 0.75 p^2 (-ln(1 - p)) at 0.3: 0.75 (0.6 * 0.35667… + 0.09 / 0.7) = 0.256932296201001
    expect(grad[3]).toBeCloseTo(0.256932296201001, 14);
    // The ignored anchor receives an exact 0.
    expect([grad[4], grad[5]]).toEqual([0, 0]);
  });

  it("no object anchors: the normaliser is max(1, 0) = 1 and a background label of 1 still uses p^gamma", () => {
    // C = 1. Anchor 0: background, label 0, p = 0.2. Anchor 1: background with a stored label 1, p = 0.6.
    // Anchor 2: ignored, p = NaN (never read).
    const yTrue = f64([
      [
        [0, 0],
        [1, 0],
        [1, -1],
      ],
    ]);
    const yPred = f64([[[0.2], [0.6], [Number.NaN]]]);
    // Anchor 0: w = 0.75 * 0.2^2 = 0.03, BCE(0, 0.2) = -ln 0.8 → 0.006694306539426291
    // Anchor 1: w = 0.75 * 0.6^2 = 0.27 (background weight whatever the label), BCE(1, 0.6) = -ln 0.6
    //   = 0.5108256237659907 → 0.1379229184168175
    // Sum 0.1446172249562438, divided by max(1, 0) = 1.
    const [value, g] = gradOf(focal(), yTrue)(yPred);
    expect(value.item()).toBeCloseTo(0.1446172249562438, 14);
    expect((g as Tensor).data[2]).toBe(0);
  });

  it("two object anchors across the batch, one with several labels: the normaliser is 2", () => {
    // B = 2, N = 1, C = 2. Image 0: labels [1, 1], p [0.8, 0.6]. Image 1: labels [0, 1], p [0.3, 0.9].
    const yTrue = f64([[[1, 1, 1]], [[0, 1, 1]]]);
    const yPred = f64([[[0.8, 0.6]], [[0.3, 0.9]]]);
    // 0.25 * 0.2^2 * -ln 0.8 = 0.01 * 0.2231435513142098 = 0.002231435513142098
    // 0.25 * 0.4^2 * -ln 0.6 = 0.04 * 0.5108256237659907 = 0.02043302495063963
    // 0.75 * 0.3^2 * -ln 0.7 = 0.0675 * 0.3566749439387324 = 0.02407555871586444
    // 0.25 * 0.1^2 * -ln 0.9 = 0.0025 * 0.1053605156578263 = 0.000263401289144566
    // Sum 0.04700342046879073, normaliser max(1, 2) = 2 → 0.023501710234395366
    expect(focal()(yTrue, yPred).item()).toBeCloseTo(0.023501710234395366, 14);
  });

  it("everything ignored, or no anchors at all, gives 0 with a zero gradient", () => {
    const ignored = f64([
      [
        [1, 0, -1],
        [0, 1, -1],
      ],
    ]);
    const [value, g] = gradOf(
      focal(),
      ignored,
    )(
      f64([
        [
          [0.3, 0.7],
          [0.2, 0.1],
        ],
      ]),
    );
    expect(value.item()).toBe(0);
    expect(Array.from((g as Tensor).data)).toEqual([0, 0, 0, 0]);
    const empty = focal()(
      tensor([], { shape: [2, 0, 4], dtype: "float64" }),
      tensor([], { shape: [2, 0, 3], dtype: "float64" }),
    );
    expect(empty.item()).toBe(0);
    const noBatch = focal()(tensor([], { shape: [0, 5, 2] }), tensor([], { shape: [0, 5, 1] }));
    expect(noBatch.item()).toBe(0);
  });

  it("gamma 0 and gamma 1 on the first case", () => {
    const yTrue = f64([
      [
        [1, 0, 1],
        [0, 0, 0],
      ],
    ]);
    const yPred = f64([
      [
        [0.9, 0.2],
        [0.1, 0.3],
      ],
    ]);
    // gamma 0: 0.25 * 0.1053605156578263 + 0.75 * 0.2231435513142098 + 0.75 * 0.1053605156578263
    //   + 0.75 * 0.3566749439387324
    //   = 0.02634012891445658 + 0.16735766348565735 + 0.07902038674336973 + 0.2675062079540493
    //   = 0.19369779240011393 + 0.07902038674336973 + 0.2675062079540493 = 0.540224387097533
    expect(focal({ gamma: 0 })(yTrue, yPred).item()).toBeCloseTo(0.540224387097533, 14);
    // gamma 1: 0.25 * 0.1 * 0.10536… + 0.75 * 0.2 * 0.22314… + 0.75 * 0.1 * 0.10536… + 0.75 * 0.3 * 0.35667…
    //   = 0.002634012891445658 + 0.03347153269713147 + 0.007902038674336973 + 0.08025186238621479
    //   = 0.1242594466491289
    expect(focal({ gamma: 1 })(yTrue, yPred).item()).toBeCloseTo(0.1242594466491289, 14);
  });
});

describe("focal: the clip at exactly epsilon", () => {
  it("passes the gradient at p = 1e-7 on a positive (value and gradient by hand)", () => {
    const yTrue = f64([[[1, 1]]]);
    // L = 0.25 (1 - p)^2 (-ln p) at p = 1e-7: 0.25 * 0.99999980000001 * 16.11809565095832 = 4.029523106834838
    // dL/dp = 0.25 (-2 (1 - p)(-ln p) - (1 - p)^2 / p) = 0.25 (-32.23618... - 9999998.0000001) = -2500007.559047045
    // (with the clip blocking it, only the first term would remain: -8.059047019574377)
    const [value, g] = gradOf(focal(), yTrue)(f64([[[1e-7]]]));
    expect(value.item()).toBeCloseTo(4.029523106834838, 12);
    expect(close((g as Tensor).data[0], -2500007.559047045, 1e-12)).toBe(true);
  });

  it("passes the gradient at p = 1 - 1e-7 on a background anchor (value and gradient by hand)", () => {
    const yTrue = f64([[[0, 0]]]);
    // L = 0.75 p^2 (-ln(1 - p)), with 1 - p = 1e-7 (up to the rounding of 1 - 1e-7):
    //   0.75 * 0.9999998 * 16.118095… = 12.088569320899282
    // dL/dp = 0.75 (2 p (-ln(1 - p)) + p^2 / (1 - p)) = 0.75 (32.236… + 9999998.0…) = 7500022.681088803
    const [value, g] = gradOf(focal(), yTrue)(f64([[[1 - 1e-7]]]));
    expect(close(value.item(), 12.088569320899282, 1e-9)).toBe(true);
    expect(close((g as Tensor).data[0], 7500022.681088803, 1e-9)).toBe(true);
  });

  it("blocks the cross-entropy's gradient strictly outside the clip", () => {
    // p = 5e-8 < 1e-7 on a positive: BCE is the constant -ln(1e-7), only the weight's slope remains:
    // dL/dp = 0.25 * -2 (1 - p) * 16.11809565095832 = -8.059047422527...
    const p = 5e-8;
    const [, g] = gradOf(focal(), f64([[[1, 1]]]))(f64([[[p]]]));
    expect(close((g as Tensor).data[0], 0.25 * -2 * (1 - p) * -Math.log(1e-7), 1e-12)).toBe(true);
  });

  it("float32: the bounds are 1e-7 and 1 - 1e-7 rounded to float32, and pass the gradient too", () => {
    const lo = Math.fround(1e-7);
    const yPred = tensor([[[lo]]], { dtype: "float32" });
    const [, g] = gradOf(focal(), tensor([[[1, 1]]], { dtype: "float32" }))(yPred);
    // The cross-entropy's -1/p slope dominates: about -0.25 / 1e-7 = -2.5e6.
    expect((g as Tensor).data[0]).toBeLessThan(-2.4e6);
  });
});

describe("focal: gradients against central differences", () => {
  it("matches gradcheck over random B, N, C, alphas, gammas and anchor-state mixes", () => {
    fc.assert(
      fc.property(
        detectionCase({ maxBatch: 2, maxAnchors: 3, maxClasses: 3 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS),
        (c, alpha, gamma) => {
          const [yTrue, yPred] = caseTensors(c);
          const loss = focal({ alpha, gamma });
          assertGradcheck((p) => loss(yTrue, p), [yPred], { eps: 1e-6, atol: 1e-5, rtol: 1e-3 });
        },
      ),
      { numRuns: 100 },
    );
  });

  it("matches gradgradcheck (second order) on small cases", () => {
    fc.assert(
      fc.property(
        detectionCase({ minBatch: 1, maxBatch: 1, maxAnchors: 2, maxClasses: 2 }),
        fc.constantFrom(0, 1, 2, 5),
        (c, gamma) => {
          const [yTrue, yPred] = caseTensors(c);
          const loss = focal({ gamma });
          assertGradgradcheck((p) => loss(yTrue, p), [yPred], { atol: 1e-4, rtol: 1e-3 });
        },
      ),
      { numRuns: 25 },
    );
  });

  it("agrees with an independent element-by-element reference, value and gradient", () => {
    fc.assert(
      fc.property(
        detectionCase({
          maxBatch: 3,
          maxAnchors: 5,
          maxClasses: 4,
          softLabels: true,
          predMin: 0,
          predMax: 1,
        }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS, 1.5, 3),
        (c, alpha, gamma) => {
          const [yTrue, yPred] = caseTensors(c);
          const [value, g] = gradOf(focal({ alpha, gamma }), yTrue)(yPred);
          const ref = referenceFocal(c, alpha, gamma);
          expect(close(value.item(), ref.loss, 1e-10, 1e-12)).toBe(true);
          const grad = (g as Tensor).data;
          ref.grad.forEach((r, i) => {
            if (Number.isFinite(r)) expect(close(grad[i], r, 1e-9, 1e-9)).toBe(true);
            else expect(grad[i]).toBe(r);
          });
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("focal: identities", () => {
  it("gamma = 0 is alpha-balanced binary cross-entropy over the anchors that are not ignored", () => {
    fc.assert(
      fc.property(detectionCase(), fc.double({ min: 0, max: 1, noNaN: true }), (c, alpha) => {
        const [yTrue, yPred] = caseTensors(c);
        const k = c.classes;
        // alpha_t: alpha on an object anchor's positive labels, 1 - alpha on every other kept label, 0 when ignored.
        const weights: number[] = [];
        let objects = 0;
        for (let a = 0; a < c.batch * c.anchors; a++) {
          const state = c.yTrue[a * (k + 1) + k];
          if (state === 1) objects++;
          for (let j = 0; j < k; j++) {
            const y = c.yTrue[a * (k + 1) + j];
            weights.push(state === -1 ? 0 : state === 1 && y === 1 ? alpha : 1 - alpha);
          }
        }
        const labels = tensor(
          c.yTrue.filter((_, i) => i % (k + 1) !== k),
          { shape: yPred.shape, dtype: "float64" },
        );
        const balanced = div(
          sum(
            mul(
              tensor(weights, { shape: yPred.shape, dtype: "float64" }),
              binaryCrossEntropy(labels, yPred),
            ),
          ),
          Math.max(1, objects),
        );
        expect(
          close(focal({ alpha, gamma: 0 })(yTrue, yPred).item(), balanced.item(), 1e-12, 1e-14),
        ).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("the normaliser is batchNormalizer of the anchor state", () => {
    fc.assert(
      fc.property(detectionCase({ minBatch: 1 }), (c) => {
        const [yTrue] = caseTensors(c);
        let objects = 0;
        for (let a = 0; a < c.batch * c.anchors; a++)
          if (c.yTrue[a * (c.classes + 1) + c.classes] === 1) objects++;
        expect(batchNormalizer(anchorStateOf(yTrue)).item()).toBe(Math.max(1, objects));
      }),
      { numRuns: 50 },
    );
  });
});

describe("focal: no NaN or infinity", () => {
  const edges = [0, 1e-7, 1 - 1e-7, 1];
  for (const gamma of [0, 1, 2, 5]) {
    it(`finite loss and gradient at p in {0, 1e-7, 1 - 1e-7, 1}, gamma ${gamma}`, () => {
      // Every label, every state, every edge probability.
      const rows: number[][] = [];
      const preds: number[][] = [];
      for (const state of [1, 0, -1]) {
        for (const label of [0, 1]) {
          rows.push([label, label, label, label, state]);
          preds.push(edges);
        }
      }
      for (const dtype of ["float32", "float64"] as const) {
        const yTrue = tensor([rows], { dtype });
        const [value, g] = gradOf(focal({ gamma }), yTrue)(tensor([preds], { dtype }));
        expect(Number.isFinite(value.item())).toBe(true);
        expect(allFinite(g as Tensor)).toBe(true);
      }
    });
  }

  it("for 0 < gamma < 1 the slope of p^gamma at p = 0 is infinite, and so is the gradient (never NaN)", () => {
    // d/dp (1 - alpha) p^0.5 BCE(0, p) at p = 0: BCE = -ln(1 - 1e-7) > 0 is constant there, and
    // 0.5 p^-0.5 is +inf: the true one-sided derivative, as Keras reports it.
    const [value, g] = gradOf(focal({ gamma: 0.5 }), f64([[[0, 0]]]))(f64([[[0]]]));
    expect(Number.isFinite(value.item())).toBe(true);
    expect((g as Tensor).data[0]).toBe(Number.POSITIVE_INFINITY);
  });

  it("ignored anchors holding 0, 1 or NaN leave loss and gradient finite and unchanged", () => {
    const yTrue = f64([
      [
        [1, 0, 1],
        [0, 1, -1],
        [1, 1, -1],
        [0, 0, -1],
        [0, 0, 0],
      ],
    ]);
    const clean = f64([
      [
        [0.7, 0.4],
        [0.5, 0.5],
        [0.5, 0.5],
        [0.5, 0.5],
        [0.2, 0.1],
      ],
    ]);
    const dirty = f64([
      [
        [0.7, 0.4],
        [0, 1],
        [Number.NaN, Number.NaN],
        [1, Number.NaN],
        [0.2, 0.1],
      ],
    ]);
    const [v1, g1] = gradOf(focal(), yTrue)(clean);
    const [v2, g2] = gradOf(focal(), yTrue)(dirty);
    expect(v2.item()).toBe(v1.item());
    expect(Array.from((g2 as Tensor).data)).toEqual(Array.from((g1 as Tensor).data));
    expect(Array.from((g2 as Tensor).data.slice(2, 8))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("a NaN prediction in an anchor that is not ignored propagates to the loss (documented)", () => {
    for (const state of [0, 1]) {
      const yTrue = f64([
        [
          [1, state],
          [0, 0],
        ],
      ]);
      const [value, g] = gradOf(focal(), yTrue)(f64([[[Number.NaN], [0.3]]]));
      expect(value.item()).toBeNaN();
      expect((g as Tensor).data[0]).toBeNaN();
      expect(Number.isFinite((g as Tensor).data[1])).toBe(true);
    }
  });
});

describe("focal: ignored anchors are never read", () => {
  it("replacing their predictions by anything (NaN and infinities included) changes neither loss nor gradient", () => {
    const junk = fc.constantFrom(
      0,
      1,
      -3,
      7,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    );
    fc.assert(
      fc.property(
        detectionCase({ maxAnchors: 5 }),
        fc.array(junk, { minLength: 60, maxLength: 60 }),
        (c, values) => {
          const k = c.classes;
          const dirty = c.yPred.map((p, i) => {
            const anchor = Math.floor(i / k);
            return c.yTrue[anchor * (k + 1) + k] === -1 ? values[i % values.length] : p;
          });
          const [yTrue, clean] = caseTensors(c);
          const [, dirtyPred] = caseTensors({ ...c, yPred: dirty });
          const [v1, g1] = gradOf(focal(), yTrue)(clean);
          const [v2, g2] = gradOf(focal(), yTrue)(dirtyPred);
          expect(v2.item()).toBe(v1.item());
          expect(Array.from((g2 as Tensor).data)).toEqual(Array.from((g1 as Tensor).data));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("focal: float32 and float64 agree", () => {
  it("to float32 precision, value and gradient", () => {
    fc.assert(
      fc.property(
        detectionCase({ maxBatch: 2, maxAnchors: 6, maxClasses: 4 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...GAMMAS),
        (c, alpha, gamma) => {
          const loss = focal({ alpha, gamma });
          const [t64, p64] = caseTensors(c, "float64");
          // The same float32-representable inputs in both dtypes.
          const p32 = cast(p64, "float32");
          const [v32, g32] = gradOf(loss, cast(t64, "float32"))(p32);
          const [v64, g64] = gradOf(loss, t64)(cast(p32, "float64"));
          expect(v32.dtype).toBe("float32");
          expect(close(v32.item(), v64.item(), 1e-5, 1e-6)).toBe(true);
          const a = (g32 as Tensor).data;
          const b = (g64 as Tensor).data;
          for (let i = 0; i < a.length; i++) expect(close(a[i], b[i], 1e-5, 1e-6)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("focal: bad input", () => {
  const yTrue = f64([
    [
      [1, 0, 1],
      [0, 0, 0],
    ],
  ]);
  const yPred = f64([
    [
      [0.9, 0.2],
      [0.1, 0.3],
    ],
  ]);
  it("yTrue's last dimension must be C + 1", () => {
    expect(() =>
      focal()(
        f64([
          [
            [1, 0],
            [0, 0],
          ],
        ]),
        yPred,
      ),
    ).toThrow(/focal: the last dimension of yTrue must be C \+ 1 = 3 .*got 2/);
  });
  it("batch sizes must agree", () => {
    expect(() => focal()(f64([[[1, 0, 1]], [[1, 0, 1]]]), f64([[[0.5, 0.5]]]))).toThrow(
      /focal: yTrue and yPred must have the same batch size, got 2 .* and 1/,
    );
  });
  it("anchor counts must agree", () => {
    expect(() => focal()(f64([[[1, 0, 1]]]), yPred)).toThrow(
      /focal: yTrue and yPred must have the same number of anchors, got 1 .* and 2/,
    );
  });
  it("an anchor state outside {-1, 0, 1}", () => {
    expect(() =>
      focal()(
        f64([
          [
            [1, 0, 2],
            [0, 0, 0],
          ],
        ]),
        yPred,
      ),
    ).toThrow(
      /focal: the anchor state .* must be -1 \(ignore\), 0 \(background\) or 1 \(object\), got 2 at \[0, 0\]/,
    );
    expect(() =>
      focal()(
        f64([
          [
            [1, 0, 0.5],
            [0, 0, 0],
          ],
        ]),
        yPred,
      ),
    ).toThrow(/got 0.5/);
    expect(() =>
      focal()(
        f64([
          [
            [1, 0, Number.NaN],
            [0, 0, 0],
          ],
        ]),
        yPred,
      ),
    ).toThrow(/got NaN/);
  });
  it("labels outside [0, 1] (ignored anchors' labels are not read)", () => {
    expect(() =>
      focal()(
        f64([
          [
            [1, 2, 1],
            [0, 0, 0],
          ],
        ]),
        yPred,
      ),
    ).toThrow(/focal: the labels of yTrue must lie in \[0, 1\].*got 2 at \[0, 0, 1\]/);
    expect(() =>
      focal()(
        f64([
          [
            [1, 0, 1],
            [-0.5, 0, 0],
          ],
        ]),
        yPred,
      ),
    ).toThrow(/got -0.5 at \[0, 1, 0\]/);
    expect(() =>
      focal()(
        f64([
          [
            [1, 0, 1],
            [-1, 7, -1],
          ],
        ]),
        yPred,
      ),
    ).not.toThrow();
    // A NaN label where the anchor is read is an error (unlike a NaN prediction, which propagates).
    const readNaN = f64([
      [
        [1, Number.NaN, 1],
        [0, 0, 0],
      ],
    ]);
    expect(() => focal()(readNaN, yPred)).toThrow(/got NaN at \[0, 0, 1\]/);
    const ignoredNaN = f64([
      [
        [1, 0, 1],
        [Number.NaN, 0, -1],
      ],
    ]);
    expect(Number.isFinite(focal()(ignoredNaN, yPred).item())).toBe(true);
  });
  it("no classes", () => {
    expect(() =>
      focal()(tensor([0, 0], { shape: [1, 2, 1] }), tensor([], { shape: [1, 2, 0] })),
    ).toThrow(/focal: yPred must have at least 1 column/);
  });
  it("alpha outside [0, 1]", () => {
    expect(() => focal({ alpha: 1.5 })).toThrow(/focal: alpha must be in \[0, 1\], got 1.5/);
    expect(() => focal({ alpha: -0.25 })).toThrow(/focal: alpha must be in \[0, 1\], got -0.25/);
    expect(() => focal({ alpha: Number.NaN })).toThrow(/alpha/);
  });
  it("gamma < 0", () => {
    expect(() => focal({ gamma: -1 })).toThrow(/focal: gamma must be a finite number >= 0, got -1/);
  });
  it("integer-dtype predictions", () => {
    expect(() =>
      focal()(
        yTrue,
        tensor(
          [
            [
              [1, 0],
              [0, 0],
            ],
          ],
          { dtype: "int32" },
        ),
      ),
    ).toThrow(
      /focal: yPred must hold float32 or float64 probabilities, got an int32 tensor of shape \[1, 2, 2\]/,
    );
  });
  it("wrong ranks and non-tensors", () => {
    expect(() => focal()(yTrue, f64([[0.5, 0.5]]))).toThrow(/focal: yPred must have rank 3/);
    expect(() => focal()([[1]] as unknown as Tensor, yPred)).toThrow(
      /focal: yTrue must be a Tensor, got an array/,
    );
  });
});
