// The losses at the edges of their inputs: terms weighted by exactly 0 at p = 0 and 1, logits of
// ±1e4, |pred − target| near the float32 maximum, on small tensors (op by op) and on tensors
// large enough to run fused, in float32 and float64.

import { type DType, type Tensor, tensor, valueAndGrad } from "@focalgrad/core";
import { describe, expect, it } from "vitest";
import {
  anchorsFor,
  anchorTargets,
  centerBoxCoder,
  cornerBoxCoder,
  focal,
  focalFromLogits,
  retinanetFocal,
  sigmoidFocalLoss,
  smoothL1,
  softmaxFocalLoss,
} from "../src/index.js";

const dtypes: DType[] = ["float64", "float32"];

/** One anchor of a [1, N, 1 + 1] layout: prediction, label, anchor state; `count` copies. */
interface Group {
  p: number;
  label: number;
  state: number;
  count: number;
}

function layout(groups: Group[], dtype: DType): { yTrue: Tensor; yPred: Tensor } {
  const truth: number[] = [];
  const pred: number[] = [];
  for (const g of groups) {
    for (let i = 0; i < g.count; i++) {
      truth.push(g.label, g.state);
      pred.push(g.p);
    }
  }
  return {
    yTrue: tensor(truth, { shape: [1, pred.length, 2], dtype }),
    yPred: tensor(pred, { shape: [1, pred.length, 1], dtype }),
  };
}

/** The loss and its gradient, the gradient split back into the groups (first element of each). */
function evaluate(
  loss: (yTrue: Tensor, yPred: Tensor) => Tensor,
  groups: Group[],
  dtype: DType,
): { value: number; firsts: number[]; allFinite: boolean; uniform: boolean } {
  const { yTrue, yPred } = layout(groups, dtype);
  const [value, gradient] = valueAndGrad((p: Tensor) => loss(yTrue, p))(yPred);
  const g = (gradient as Tensor).read();
  const firsts: number[] = [];
  let at = 0;
  let uniform = true;
  for (const group of groups) {
    firsts.push(g[at]);
    for (let i = 1; i < group.count; i++) if (g[at + i] !== g[at]) uniform = false;
    at += group.count;
  }
  return { value: value.item(), firsts, allFinite: g.every(Number.isFinite), uniform };
}

function expectClose(actual: number, expected: number, dtype: DType): void {
  if (expected === 0) expect(actual === 0, `${actual} should be exactly 0`).toBe(true);
  else
    expect(Math.abs(actual - expected)).toBeLessThanOrEqual(
      Math.abs(expected) * (dtype === "float32" ? 2e-6 : 1e-12),
    );
}

// Hand-worked, alpha-free pieces at gamma = 0.5 and p = 0.5 (the clip at 1e-7 is inactive):
//   term = (1 − p)^0.5 · (−ln p) = √0.5 · ln 2 = 0.70710678 · 0.69314718 = 0.49012907
//   d/dp [(1 − p)^0.5 · (−ln p)] = −0.5 (1 − p)^−0.5 (−ln p) − (1 − p)^0.5 / p
//                               = −0.5 · 1.41421356 · 0.69314718 − 0.70710678 · 2 = −1.90434263
// and by symmetry the negative term p^0.5 · (−ln(1 − p)) has value 0.49012907, slope +1.90434263.
const term = Math.SQRT1_2 * Math.LN2;
const slope = 0.5 * Math.SQRT2 * Math.LN2 + 2 * Math.SQRT1_2;

for (const [name, make] of [
  ["focal", focal],
  ["retinanetFocal", retinanetFocal],
] as const) {
  describe(`${name} with a weight of exactly 0 (gamma 0.5): finite, exact gradients`, () => {
    for (const dtype of dtypes) {
      for (const [size, k, m] of [
        ["small", 1, 1],
        ["large (fused)", 9000, 20000],
      ] as const) {
        // alpha 1: positives at p = 0.5 (weight alpha = 1); background and negative objects at
        // p = 0 (weight 1 − alpha = 0, times 0^0.5 whose slope is infinite). Normaliser: 2k
        // objects. Loss = k · term / 2k; the positives' gradient −slope / 2k; the others 0.
        // alpha 0: positives at p = 1 (weight alpha = 0, times (1 − 1)^0.5); background and
        // negative objects at p = 0.5 (weight 1). Loss = (m + k) · term / 2k; gradients 0 and
        // slope / 2k.
        const cases = [
          {
            alpha: 1,
            at: [0.5, 0, 0],
            value: term / 2,
            gradients: [-slope / (2 * k), 0, 0],
          },
          {
            alpha: 0,
            at: [1, 0.5, 0.5],
            value: ((m + k) * term) / (2 * k),
            gradients: [0, slope / (2 * k), slope / (2 * k)],
          },
        ];
        for (const { alpha, at, value, gradients } of cases) {
          it(`alpha ${alpha}, the zero-weight anchors at p = ${at[alpha === 1 ? 1 : 0]}, ${dtype}, ${size}`, () => {
            const r = evaluate(
              make({ alpha, gamma: 0.5 }),
              [
                { p: at[0], label: 1, state: 1, count: k },
                { p: at[1], label: 0, state: 0, count: m },
                { p: at[2], label: 0, state: 1, count: k },
              ],
              dtype,
            );
            expect(r.allFinite).toBe(true);
            expect(r.uniform).toBe(true);
            expectClose(r.value, value, dtype);
            gradients.forEach((g, i) => {
              expectClose(r.firsts[i], g, dtype);
            });
          });
        }
      }
    }
  });
}

describe("probabilities at the edges (gamma 2): finite everywhere, the same small and large", () => {
  const edges = [0, 1, 1e-45, 1 - 1e-8, 1e-7, 1 - 1e-7, Number.EPSILON, 1 - Number.EPSILON];
  for (const [name, make] of [
    ["focal", focal],
    ["retinanetFocal", retinanetFocal],
  ] as const) {
    for (const dtype of dtypes) {
      it(`${name}, ${dtype}`, () => {
        const groups = (copies: number) =>
          edges.flatMap((p) => [
            { p, label: 1, state: 1, count: copies },
            { p, label: 0, state: 0, count: copies },
            { p, label: 0, state: 1, count: copies },
          ]);
        const small = evaluate(make({ alpha: 0.25, gamma: 2 }), groups(1), dtype);
        const copies = 700; // 24 groups · 700 = 16 800 anchors: above the fusion threshold
        const large = evaluate(make({ alpha: 0.25, gamma: 2 }), groups(copies), dtype);
        expect(small.allFinite && large.allFinite && large.uniform).toBe(true);
        // The same anchors `copies` times over: the same loss, each gradient 1/copies as large.
        expect(Number.isFinite(small.value)).toBe(true);
        expectClose(large.value, small.value, dtype);
        large.firsts.forEach((g, i) => {
          expect(Math.abs(g * copies - small.firsts[i])).toBeLessThanOrEqual(
            Math.abs(small.firsts[i]) * (dtype === "float32" ? 1e-5 : 1e-10),
          );
        });
      });
    }
  }

  it("focalFromLogits and sigmoidFocalLoss at logits ±1e4 and 0: finite, the same small and large", () => {
    for (const dtype of dtypes) {
      const logits = [-1e4, -30, 0, 30, 1e4];
      // 10 groups of 2000 anchors: 20 000, above the fusion threshold.
      const [small, large] = [1, 2000].map((count) =>
        evaluate(
          focalFromLogits({ alpha: 0.25, gamma: 2 }),
          logits.flatMap((p) => [
            { p, label: 1, state: 1, count },
            { p, label: 0, state: 0, count },
          ]),
          dtype,
        ),
      );
      expect(small.allFinite && large.allFinite && Number.isFinite(small.value)).toBe(true);
      expectClose(large.value, small.value, dtype);
      const x = tensor(logits, { dtype });
      const t = tensor([1, 0, 1, 0, 1], { dtype });
      const [value, g] = valueAndGrad((v: Tensor) => sigmoidFocalLoss(v, t, { reduction: "sum" }))(
        x,
      );
      expect(Number.isFinite(value.item())).toBe(true);
      expect((g as Tensor).read().every(Number.isFinite)).toBe(true);
    }
  });
});

describe("softmaxFocalLoss on the row [1e4, 1e4, 0]", () => {
  it("has the hand-worked value and gradient in float32", () => {
    // p = softmax = [1/2, 1/2, 0]; target 0, alpha 0.25, gamma 2:
    //   L = −alpha (1 − p)^2 ln p = 0.25 · 0.25 · ln 2 = 0.04332170
    //   dL/dp = −alpha [−2 (1 − p) ln p + (1 − p)^2 / p] = −0.25 (0.69314718 + 0.5) = −0.29828680
    //   dp/dx = p (δ − p) = [0.25, −0.25, 0], so dL/dx = [−0.07457170, 0.07457170, 0].
    const x = tensor([[1e4, 1e4, 0]]);
    const targets = tensor([0], { dtype: "int32" });
    const [value, g] = valueAndGrad((v: Tensor) => softmaxFocalLoss(v, targets))(x);
    const dLdp = -0.25 * (Math.LN2 + 0.5);
    expectClose(value.item(), 0.0625 * Math.LN2, "float32");
    const grad = (g as Tensor).read();
    expectClose(grad[0], dLdp * 0.25, "float32");
    expectClose(grad[1], -dLdp * 0.25, "float32");
    expect(Math.abs(grad[2])).toBe(0);
  });
});

describe("smoothL1 with |pred − target| near the float32 maximum", () => {
  for (const dtype of dtypes) {
    for (const anchors of [1, 4100]) {
      it(`${dtype}, ${anchors} anchors (${anchors * 4 >= 16384 ? "fused" : "op by op"})`, () => {
        // |d| = 3e38 is on the linear branch, whose slope is sign(d) = 1; the normaliser is the
        // number of object anchors. (The quadratic branch's slope 9 d overflows float32; it is
        // not selected and must not make 0 · ∞.)
        const yTrue = tensor(
          Array.from({ length: anchors }, () => [0, 0, 0, 0, 1]),
          { dtype },
        );
        const yPred = tensor(
          Array.from({ length: anchors }, () => [3e38, -3e38, 3e38, 0.1]),
          { dtype },
        );
        const [, g] = valueAndGrad((p: Tensor) =>
          smoothL1()(tensor(yTrue.read(), { shape: [1, anchors, 5], dtype }), p),
        )(tensor(yPred.read(), { shape: [1, anchors, 4], dtype }));
        const grad = (g as Tensor).read();
        // 0.1 < 1/9, the quadratic branch: d/dp of 4.5 · 0.1² is 9 · 0.1 = 0.9, over the anchors.
        for (let a = 0; a < anchors; a += Math.max(1, anchors - 1)) {
          expectClose(grad[4 * a], 1 / anchors, dtype);
          expectClose(grad[4 * a + 1], -1 / anchors, dtype);
          expectClose(grad[4 * a + 2], 1 / anchors, dtype);
          const small = dtype === "float32" ? Math.fround(0.1) : 0.1;
          expectClose(grad[4 * a + 3], (9 * small) / anchors, dtype);
        }
        expect(grad.every(Number.isFinite)).toBe(true);
      });
    }
  }
});

describe("options from plain JavaScript", () => {
  // biome-ignore lint/suspicious/noExplicitAny: plain-JavaScript calls are the point
  const js = { focal, retinanetFocal, smoothL1, sigmoidFocalLoss, softmaxFocalLoss } as any;
  it("a misspelt key or a non-object is an error naming the loss, not a silent default", () => {
    expect(() => js.focal({ aplha: 0.5 })).toThrow(
      'focal: unknown option "aplha" (expected alpha, gamma)',
    );
    expect(() => js.retinanetFocal(0.25)).toThrow("retinanetFocal: options must be an object");
    expect(() => js.smoothL1({ sigma: 3, beta: 1 })).toThrow('smoothL1: unknown option "beta"');
    const x = tensor([0.5, -0.5]);
    const t = tensor([1, 0]);
    expect(() => js.sigmoidFocalLoss(x, t, "mean")).toThrow(
      'sigmoidFocalLoss: options must be an object such as { alpha: … } (keys: alpha, gamma, reduction), got the string "mean"',
    );
    expect(() =>
      js.softmaxFocalLoss(tensor([[1, 2]]), tensor([0], { dtype: "int32" }), { reduce: "sum" }),
    ).toThrow('softmaxFocalLoss: unknown option "reduce"');
  });
});

describe("options of the anchor and target builders are checked at run time", () => {
  it("names the builder and the unknown key", () => {
    expect(() => anchorsFor([64, 64], { level: [3] } as never)).toThrow(
      /anchorsFor: unknown option "level"/,
    );
    expect(() => cornerBoxCoder({ stds: [1, 1, 1, 1] } as never)).toThrow(
      /cornerBoxCoder: unknown option "stds"/,
    );
    expect(() => centerBoxCoder({ weight: [1, 1, 1, 1] } as never)).toThrow(
      /centerBoxCoder: unknown option "weight"/,
    );
    const anchors = tensor([[0, 0, 8, 8]]);
    expect(() =>
      anchorTargets(anchors, [], { numClasses: 1, imageShape: null, positive: 0.5 } as never),
    ).toThrow(/anchorTargets: unknown option "positive"/);
  });
});
