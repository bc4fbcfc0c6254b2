// Every loss gives bit for bit the same value and gradient whether its elementwise chains run
// fused (as on tensors above the 16 384-element threshold) or op by op (as below it), at the
// edges too: probabilities 0, 1, 1e-45, 1 − 1e-8, ε, 1 − ε; logits ±1e4 and ±∞; both float dtypes.
import { type DType, type Tensor, tensor } from "@focalgrad/core";
import { withFusion } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  distributionFocalLoss,
  focal,
  focalFromLogits,
  focalStar,
  poly1FocalLoss,
  qualityFocalLoss,
  retinanetFocal,
  sigmoidFocalLoss,
  smoothL1,
  softmaxFocalLoss,
  varifocalLoss,
} from "../src/index.js";
import { detectionCase } from "./helpers.js";

const eps = 1e-7;
const probability = fc.oneof(
  fc.constantFrom(0, 1, 1e-45, 1 - 1e-8, eps, 1 - eps, 0.5),
  fc.double({ min: 0, max: 1, noNaN: true }),
);
const logit = fc.oneof(
  fc.constantFrom(1e4, -1e4, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0),
  fc.double({ min: -20, max: 20, noNaN: true }),
);
const target = fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true }));

function bits(t: Tensor | null): number[] {
  return t === null ? [] : Array.from(t.read(), (v) => (Number.isNaN(v) ? Number.NaN : v));
}

/** The loss of `f` on a copy of `input` (which takes the gradient) and its gradient. */
function run(
  f: (input: Tensor) => Tensor,
  values: number[],
  shape: number[],
  dtype: DType,
  mode: "fused" | "opByOp",
): number[][] {
  return withFusion(mode, () => {
    const input = tensor(values, { shape, dtype, requiresGrad: true });
    const loss = f(input);
    loss.backward();
    return [bits(loss), bits(input.grad)];
  });
}

function agree(
  f: (input: Tensor) => Tensor,
  values: number[],
  shape: number[],
  dtype: DType,
): void {
  expect(run(f, values, shape, dtype, "fused")).toEqual(run(f, values, shape, dtype, "opByOp"));
}

const dtypes = ["float32", "float64"] as const;
const runs = { numRuns: 60 };

describe("every loss agrees fused and op by op", () => {
  for (const dtype of dtypes) {
    it(`focal, retinanetFocal (probabilities) and focalFromLogits, smoothL1 (${dtype})`, () => {
      fc.assert(
        fc.property(
          detectionCase({ minBatch: 1, maxAnchors: 4 }).chain((c) =>
            fc.tuple(
              fc.constant(c),
              fc.array(probability, { minLength: c.yPred.length, maxLength: c.yPred.length }),
              fc.array(logit, { minLength: c.yPred.length, maxLength: c.yPred.length }),
              fc.constantFrom(0, 0.25, 1),
              fc.constantFrom(0, 0.5, 2),
            ),
          ),
          ([c, p, x, alpha, gamma]) => {
            const shape = [c.batch, c.anchors, c.classes];
            const yTrue = tensor(c.yTrue, { shape: [c.batch, c.anchors, c.classes + 1], dtype });
            agree((t) => focal({ alpha, gamma })(yTrue, t), p, shape, dtype);
            agree((t) => retinanetFocal({ alpha, gamma })(yTrue, t), p, shape, dtype);
            agree((t) => focalFromLogits({ alpha, gamma })(yTrue, t), x, shape, dtype);
            // Box regression: 4 columns of predictions against the first 4 of a [B, N, 5] target.
            const boxes = [c.batch, c.anchors, 4];
            const regression = tensor(
              Array.from({ length: c.batch * c.anchors * 5 }, (_, i) =>
                i % 5 === 4
                  ? c.yTrue[Math.floor(i / 5) * (c.classes + 1) + c.classes]
                  : (i % 7) - 3,
              ),
              { shape: [c.batch, c.anchors, 5], dtype },
            );
            const pred = x.concat(x, x, x).slice(0, c.batch * c.anchors * 4);
            agree((t) => smoothL1({ sigma: 3 })(regression, t), pred, boxes, dtype);
          },
        ),
        runs,
      );
    });

    it(`dense-logit losses: sigmoid focal, FL*, QFL, VFL, Poly-1 (${dtype})`, () => {
      fc.assert(
        fc.property(
          fc
            .integer({ min: 1, max: 6 })
            .chain((n) =>
              fc.tuple(
                fc.array(logit, { minLength: n, maxLength: n }),
                fc.array(target, { minLength: n, maxLength: n }),
              ),
            ),
          ([x, t]) => {
            const shape = [x.length];
            const targets = tensor(t, { dtype });
            const hard = tensor(
              t.map((v) => (v > 0.5 ? 1 : 0)),
              { dtype },
            );
            agree((l) => sigmoidFocalLoss(l, targets, { reduction: "sum" }), x, shape, dtype);
            agree((l) => focalStar(l, hard, { reduction: "sum" }), x, shape, dtype);
            agree((l) => qualityFocalLoss(l, targets, { reduction: "sum" }), x, shape, dtype);
            agree((l) => varifocalLoss(l, targets, { reduction: "sum" }), x, shape, dtype);
            agree((l) => poly1FocalLoss(l, hard, { reduction: "sum" }), x, shape, dtype);
          },
        ),
        runs,
      );
    });

    it(`softmax focal and distribution focal losses (${dtype})`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 3 }).chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.array(logit, { minLength: n * 3, maxLength: n * 3 }),
              fc.array(fc.integer({ min: 0, max: 2 }), { minLength: n, maxLength: n }),
              fc.array(fc.double({ min: 0, max: 2, noNaN: true }), {
                minLength: n,
                maxLength: n,
              }),
            ),
          ),
          ([n, x, classes, distances]) => {
            const shape = [n, 3];
            const labels = tensor(classes, { dtype: "int32" });
            const targets = tensor(distances, { dtype });
            agree((l) => softmaxFocalLoss(l, labels), x, shape, dtype);
            agree((l) => distributionFocalLoss(l, targets), x, shape, dtype);
          },
        ),
        runs,
      );
    });
  }
});
