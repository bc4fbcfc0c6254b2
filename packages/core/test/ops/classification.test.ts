/** Tests of ops/classification.ts: nllLoss and crossEntropy on class indices, PyTorch's semantics. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crossEntropy, logSoftmax, nllLoss, type Tensor, tensor } from "../../src/index.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../../src/testing/index.js";

const f64 = (values: number[][] | number[], shape?: number[]) =>
  tensor(values, { dtype: "float64", ...(shape ? { shape } : {}) });
const labels = (values: number[], shape?: number[]) =>
  tensor(values, { dtype: "int32", ...(shape ? { shape } : {}) });

// Both rows have softmax [1/4, 3/4]: log-probabilities ln(1/4) = −1.3862943611198906 and
// ln(3/4) = −0.2876820724517809.
const logits = () =>
  f64([
    [0, Math.log(3)],
    [0, Math.log(3)],
  ]);
const LN_QUARTER = Math.log(0.25);
const LN_THREE_QUARTERS = Math.log(0.75);

describe("crossEntropy", () => {
  it("is −log p of the target class, averaged", () => {
    // Targets [1, 0]: (0.2876820724517809 + 1.3862943611198906) / 2 = 0.8369882167858358.
    expect(crossEntropy(logits(), labels([1, 0])).item()).toBeCloseTo(0.8369882167858358, 14);
    expect(crossEntropy(logits(), labels([1, 0]), { reduction: "sum" }).item()).toBeCloseTo(
      1.6739764335716716,
      14,
    );
    const none = crossEntropy(logits(), labels([1, 0]), {
      reduction: "none",
    }).toArray() as number[];
    expect(none[0]).toBeCloseTo(-LN_THREE_QUARTERS, 14);
    expect(none[1]).toBeCloseTo(-LN_QUARTER, 14);
  });

  it("weights a sample by its class and divides the mean by the weights taken", () => {
    // weight [2, 1], targets [1, 0]: (1 · 0.28768… + 2 · 1.38629…) / (1 + 2) = 1.0200902649...
    const weight = f64([2, 1]);
    const expected = (-LN_THREE_QUARTERS - 2 * LN_QUARTER) / 3;
    expect(crossEntropy(logits(), labels([1, 0]), { weight }).item()).toBeCloseTo(expected, 14);
  });

  it("skips ignored targets in the sum and in the mean's count, and reads nothing there", () => {
    const x = f64([
      [0, Math.log(3)],
      [Number.NaN, 5],
    ]);
    x.requiresGrad = true;
    const loss = crossEntropy(x, labels([1, -100]));
    expect(loss.item()).toBeCloseTo(-LN_THREE_QUARTERS, 14);
    loss.backward();
    // d/dx of −log softmax(x)_1 for row 0 is softmax − onehot = [1/4, −1/4]; row 1 exactly 0.
    const g = x.grad!.toArray() as number[][];
    expect(g[0][0]).toBeCloseTo(0.25, 14);
    expect(g[0][1]).toBeCloseTo(-0.25, 14);
    expect(g[1]).toEqual([0, 0]);
    expect(crossEntropy(x, labels([1, 7]), { ignoreIndex: 7 }).item()).toBeCloseTo(
      -LN_THREE_QUARTERS,
      14,
    );
    // Every target ignored: 0 / 0, as PyTorch.
    expect(crossEntropy(logits(), labels([-100, -100])).item()).toBeNaN();
    const none = crossEntropy(x, labels([1, -100]), { reduction: "none" }).toArray() as number[];
    expect(none[0]).toBeCloseTo(-LN_THREE_QUARTERS, 14);
    expect(none[1]).toBe(0);
  });

  it("smooths labels: (1 − ε) · nll + (ε / C) · Σ_c −log p_c", () => {
    // One row, target 1, ε = 0.2, C = 2: 0.8 · 0.2876820724517809
    //   + 0.1 · (1.3862943611198906 + 0.2876820724517809) = 0.397543309...
    const x = f64([[0, Math.log(3)]]);
    const expected = 0.8 * -LN_THREE_QUARTERS + 0.1 * -(LN_QUARTER + LN_THREE_QUARTERS);
    expect(crossEntropy(x, labels([1]), { labelSmoothing: 0.2 }).item()).toBeCloseTo(expected, 14);
    // With weight [2, 1] and targets [1, 0] (mean): smooth_n = −(2 ln ¼ + 1 ln ¾) for both rows,
    // divided by the taken weights 1 + 2 = 3, as PyTorch.
    const weight = f64([2, 1]);
    const nll = (-LN_THREE_QUARTERS - 2 * LN_QUARTER) / 3;
    const smooth = (2 * -(2 * LN_QUARTER + LN_THREE_QUARTERS)) / 3;
    const loss = crossEntropy(logits(), labels([1, 0]), { weight, labelSmoothing: 0.2 }).item();
    expect(loss).toBeCloseTo(0.8 * nll + 0.1 * smooth, 14);
  });

  it("takes class scores on axis 1 of [N, C, d1, …], as PyTorch", () => {
    // [N = 1, C = 2, L = 2], x[n][c][l]: position 0 has logits [0, ln 3], position 1 [ln 3, 0];
    // target 1 at both: −ln ¾ at position 0, −ln ¼ at position 1.
    const x = f64([0, Math.log(3), Math.log(3), 0], [1, 2, 2]);
    const loss = crossEntropy(x, labels([1, 1], [1, 2]), { reduction: "none" });
    expect(loss.shape).toEqual([1, 2]);
    const values = loss.toArray() as number[][];
    expect(values[0][0]).toBeCloseTo(-LN_THREE_QUARTERS, 14);
    expect(values[0][1]).toBeCloseTo(-LN_QUARTER, 14);
  });

  it("has gradients that match finite differences, first and second order", () => {
    fc.assert(
      fc.property(
        floatTensor([4, 3], { min: -3, max: 3 }),
        fc.array(fc.integer({ min: -1, max: 2 }), { minLength: 4, maxLength: 4 }),
        fc.constantFrom(0, 0.1),
        (x, t, labelSmoothing) => {
          const target = labels(t);
          const weight = f64([1, 0.5, 2]);
          const f = (input: Tensor) =>
            crossEntropy(input, target, { ignoreIndex: -1, labelSmoothing, weight });
          if (t.every((k) => k === -1)) return;
          assertGradcheck(f, [x]);
          assertGradgradcheck(f, [x]);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("names the argument for bad input", () => {
    expect(() => crossEntropy(logits(), labels([2, 0]))).toThrow(
      "crossEntropy: target must hold class indices in [0, 1] or ignoreIndex (-100), got 2 at flat index 0",
    );
    expect(() => crossEntropy(logits(), tensor([1, 0]))).toThrow(
      "crossEntropy: target must be an int32 tensor of class indices of shape [2] (input [2, 2] without its class axis), got float32 [2]",
    );
    expect(() => crossEntropy(f64([1, 2]), labels([0]))).toThrow(
      "crossEntropy: input must have shape [N, C] or [N, C, d1, …] (class scores on axis 1), got [2]",
    );
    expect(() => crossEntropy(logits(), labels([1, 0]), { labelSmoothing: 2 })).toThrow(
      "crossEntropy: labelSmoothing must be in [0, 1], got 2",
    );
    expect(() => crossEntropy(logits(), labels([1, 0]), { weight: f64([1, 2, 3]) })).toThrow(
      "crossEntropy: weight must be a float64 tensor of shape [2] (one per class), got float64 [3]",
    );
    expect(() => crossEntropy(logits(), labels([1, 0]), { reduction: "avg" as never })).toThrow(
      `crossEntropy: reduction must be 'none', 'mean' or 'sum', got "avg"`,
    );
  });
});

describe("nllLoss", () => {
  it("is −input[n, y_n] on log-probabilities, and crossEntropy is nllLoss of logSoftmax", () => {
    const logProbs = f64([
      [-0.5, -1.5],
      [-2, -0.25],
    ]);
    // Targets [0, 1]: (0.5 + 0.25) / 2 = 0.375.
    expect(nllLoss(logProbs, labels([0, 1])).item()).toBe(0.375);
    const x = logits();
    expect(nllLoss(logSoftmax(x, 1), labels([1, 0])).item()).toBeCloseTo(
      crossEntropy(x, labels([1, 0])).item(),
      15,
    );
  });

  it("has gradients that match finite differences", () => {
    fc.assert(
      fc.property(floatTensor([3, 4]), (x) => {
        const f = (input: Tensor) => nllLoss(input, labels([3, -100, 0]), { reduction: "sum" });
        assertGradcheck(f, [x]);
      }),
      { numRuns: 30 },
    );
  });
});
