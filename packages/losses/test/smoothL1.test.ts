import { type Tensor, tensor, valueAndGrad } from "@focalgrad/core";
import { assertGradcheck } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { smoothL1 } from "../src/index.js";
import { allFinite, close, f64 } from "./helpers.js";

const gradOf = (loss: (yTrue: Tensor, yPred: Tensor) => Tensor, yTrue: Tensor) =>
  valueAndGrad((p: Tensor) => loss(yTrue, p));

/** Regression cases [B, N, 4] whose |pred - target| stays away from 0 and from 1/sigma^2. */
const regressionCase = fc
  .record({
    batch: fc.integer({ min: 0, max: 2 }),
    anchors: fc.integer({ min: 0, max: 3 }),
    sigma: fc.constantFrom(1, 2, 3, 0.5),
  })
  .chain(({ batch, anchors, sigma }) => {
    const n = batch * anchors;
    const knot = 1 / (sigma * sigma);
    // |d| drawn from (0.05, knot - 0.05) ∪ (knot + 0.05, knot + 2), with a random sign.
    const distance = fc.oneof(
      fc.double({
        min: Math.min(0.05, knot / 2),
        max: Math.max(knot - 0.05, knot / 2),
        noNaN: true,
      }),
      fc.double({ min: knot + 0.05, max: knot + 2, noNaN: true }),
    );
    return fc
      .tuple(
        fc.array(fc.constantFrom(-1, 0, 1), { minLength: n, maxLength: n }),
        fc.array(fc.double({ min: -2, max: 2, noNaN: true }), {
          minLength: 4 * n,
          maxLength: 4 * n,
        }),
        fc.array(fc.tuple(distance, fc.boolean()), { minLength: 4 * n, maxLength: 4 * n }),
      )
      .map(([states, targets, moves]) => {
        const yTrue: number[] = [];
        const yPred: number[] = [];
        for (let a = 0; a < n; a++) {
          for (let j = 0; j < 4; j++) {
            const [d, up] = moves[a * 4 + j];
            yTrue.push(targets[a * 4 + j]);
            yPred.push(targets[a * 4 + j] + (up ? d : -d));
          }
          yTrue.push(states[a]);
        }
        return {
          sigma,
          yTrue: tensor(yTrue, { shape: [batch, anchors, 5], dtype: "float64" }),
          yPred: tensor(yPred, { shape: [batch, anchors, 4], dtype: "float64" }),
        };
      });
  });

describe("smoothL1: exact values worked out by hand", () => {
  it("sigma 3, one object anchor", () => {
    // sigma^2 = 9, knot 1/9 = 0.1111…, 0.5/9 = 0.0555…
    // |d| = [0.1, 0, 0.3, 0]: 0.1 < 1/9 → 0.5 * 9 * 0.01 = 0.045; 0 → 0; 0.3 → 0.3 - 0.0555… = 0.2444…; 0 → 0
    // Sum 0.2894444444444444; the background anchor is not counted; normaliser max(1, 1) = 1.
    const yTrue = f64([
      [
        [0.1, 0.2, 0.0, 0.5, 1],
        [9, 9, 9, 9, 0],
      ],
    ]);
    const yPred = f64([
      [
        [0.0, 0.2, 0.3, 0.5],
        [0, 0, 0, 0],
      ],
    ]);
    const [value, g] = gradOf(smoothL1({ sigma: 3 }), yTrue)(yPred);
    expect(value.item()).toBeCloseTo(0.2894444444444444, 15);
    // Gradients: quadratic 9 * (0.0 - 0.1) = -0.9; d = 0 → 0; linear sign(0.3) = 1; background 0.
    const grad = Array.from((g as Tensor).data);
    expect(grad[0]).toBeCloseTo(-0.9, 15);
    expect(grad.slice(1)).toEqual([0, 1, 0, 0, 0, 0, 0]);
  });

  it("two object anchors in different images: the normaliser is 2", () => {
    // Image 0: d = [0.5, 0, 0, 0] with sigma 1 → 0.5 >= 1 is false → 0.5 * 1 * 0.25 = 0.125
    // Image 1: d = [0, 0, 2, 0] → 2 - 0.5 = 1.5. Sum 1.625 / max(1, 2) = 0.8125
    const yTrue = f64([[[0, 0, 0, 0, 1]], [[0, 0, 0, 0, 1]]]);
    const yPred = f64([[[0.5, 0, 0, 0]], [[0, 0, -2, 0]]]);
    expect(smoothL1({ sigma: 1 })(yTrue, yPred).item()).toBe(0.8125);
  });

  it("no object anchors: 0, whatever the other anchors hold (NaN included)", () => {
    const yTrue = f64([
      [
        [1, 2, 3, 4, 0],
        [Number.NaN, 0, 0, 0, -1],
      ],
    ]);
    const yPred = f64([
      [
        [0, 0, 0, 0],
        [Number.NaN, 1, 1, 1],
      ],
    ]);
    const [value, g] = gradOf(smoothL1(), yTrue)(yPred);
    expect(value.item()).toBe(0);
    expect(allFinite(g as Tensor)).toBe(true);
    expect(Array.from((g as Tensor).data).every((v) => v === 0)).toBe(true);
  });

  it("the knot |d| = 1/sigma^2 takes the linear branch; both slopes are 1 there", () => {
    // sigma 2: knot 0.25 (exact in binary). d = 0.75 - 0.5 = 0.25: not < 0.25 → 0.25 - 0.5/4 = 0.125,
    // the quadratic 0.5 * 4 * 0.0625 gives 0.125 too. Gradient: sign(d) * 1 = 1 (quadratic: 4 * 0.25 = 1).
    const yTrue = f64([[[0.5, 0, 0, 0, 1]]]);
    const [value, g] = gradOf(smoothL1({ sigma: 2 }), yTrue)(f64([[[0.75, 0, 0, 0]]]));
    expect(value.item()).toBe(0.125);
    expect((g as Tensor).data[0]).toBe(1);
  });

  it("|d| = 0 has gradient 0 (the subgradient of |x| at 0 is 0, and so is 0.5 sigma^2 d^2's slope)", () => {
    const yTrue = f64([[[0.3, 0, 0, 0, 1]]]);
    const [, g] = gradOf(smoothL1(), yTrue)(f64([[[0.3, 0, 0, 0]]]));
    expect(Array.from((g as Tensor).data)).toEqual([0, 0, 0, 0]);
  });
});

describe("smoothL1: properties", () => {
  it("gradients match central differences away from the knot and from d = 0", () => {
    fc.assert(
      fc.property(regressionCase, ({ sigma, yTrue, yPred }) => {
        assertGradcheck((p) => smoothL1({ sigma })(yTrue, p), [yPred]);
      }),
      { numRuns: 60 },
    );
  });

  it("float32 and float64 agree to float32 precision", () => {
    fc.assert(
      fc.property(regressionCase, ({ sigma, yTrue, yPred }) => {
        const loss = smoothL1({ sigma });
        const a = loss(
          tensor(Float32Array.from(yTrue.data), { shape: yTrue.shape }),
          tensor(Float32Array.from(yPred.data), { shape: yPred.shape }),
        );
        const b = loss(yTrue, yPred);
        expect(a.dtype).toBe("float32");
        expect(close(a.item(), b.item(), 1e-5, 1e-5)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it("a NaN in an object anchor's prediction propagates (documented)", () => {
    expect(smoothL1()(f64([[[0, 0, 0, 0, 1]]]), f64([[[Number.NaN, 0, 0, 0]]])).item()).toBeNaN();
  });
});

describe("smoothL1: bad input", () => {
  const yTrue = f64([[[0, 0, 0, 0, 1]]]);
  const yPred = f64([[[0, 0, 0, 0]]]);
  it("yTrue's last dimension must be that of yPred + 1", () => {
    expect(() => smoothL1()(f64([[[0, 0, 0, 1]]]), yPred)).toThrow(
      /smoothL1: the last dimension of yTrue must be C \+ 1 = 5 .*got 4/,
    );
  });
  it("batch and anchor counts must agree", () => {
    expect(() => smoothL1()(f64([[[0, 0, 0, 0, 1]], [[0, 0, 0, 0, 1]]]), yPred)).toThrow(
      /same batch size/,
    );
    expect(() =>
      smoothL1()(
        f64([
          [
            [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1],
          ],
        ]),
        yPred,
      ),
    ).toThrow(/same number of anchors/);
  });
  it("an anchor state outside {-1, 0, 1}", () => {
    expect(() => smoothL1()(f64([[[0, 0, 0, 0, 3]]]), yPred)).toThrow(
      /smoothL1: the anchor state .* got 3/,
    );
  });
  it("sigma must be > 0", () => {
    expect(() => smoothL1({ sigma: 0 })).toThrow(
      /smoothL1: sigma must be a finite number > 0, got 0/,
    );
  });
  it("integer predictions", () => {
    expect(() => smoothL1()(yTrue, tensor([[[0, 0, 0, 0]]], { dtype: "int32" }))).toThrow(
      /smoothL1: yPred must hold float32 or float64 regression outputs/,
    );
  });
});
