/** Tests of the hand-fused focal loop: it must equal focalgrad's focal() + backward, and finite differences. */

import { type Tensor, tensor } from "@focalgrad/core";
import { focal } from "@focalgrad/losses";
import { describe, expect, it } from "vitest";
import { syntheticAnchorBatch } from "../src/data/anchors.js";
import { fusedFocal, fusedFocalInto } from "../src/fused/focal.js";
import { FusedFocalThreads } from "../src/fused/threads.js";

function autodiff(yTrue: Tensor, yPred: Tensor, alpha: number, gamma: number) {
  const leaf = yPred.detach();
  leaf.requiresGrad = true;
  const loss = focal({ alpha, gamma })(yTrue, leaf);
  loss.backward();
  return { loss: loss.item(), grad: leaf.grad! };
}

function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const tolerance = atol + rtol * Math.abs(expected[i]);
    if (!(Math.abs(actual[i] - expected[i]) <= tolerance)) {
      throw new Error(`element ${i}: ${actual[i]} vs ${expected[i]} (tolerance ${tolerance})`);
    }
  }
}

// A dense mix: many objects and ignored anchors, so that every branch is taken in a small batch.
const mixed = { batch: 2, anchors: 60, classes: 3, objectFraction: 0.3, ignoredFraction: 0.2 };

describe("fusedFocal", () => {
  for (const [alpha, gamma] of [
    [0.25, 2],
    [0.5, 0],
    [0.25, 0.5],
    [0.75, 1],
    [0.25, 3],
  ]) {
    it(`equals focal({ alpha: ${alpha}, gamma: ${gamma} }) and its backward in float64`, () => {
      const { yTrue, yPred } = syntheticAnchorBatch({ ...mixed, seed: 11, dtype: "float64" });
      const fused = fusedFocal(yTrue, yPred, { alpha, gamma });
      const reference = autodiff(yTrue, yPred, alpha, gamma);
      expect(fused.loss).toBeCloseTo(reference.loss, 12);
      expect(fused.grad.dtype).toBe("float64");
      expectClose(fused.grad.data, reference.grad.data, 1e-14, 1e-10);
    });
  }

  it("equals focal() + backward in float32 (loss to 1e-6 relative, gradient to float32 rounding)", () => {
    const { yTrue, yPred } = syntheticAnchorBatch({ ...mixed, anchors: 500, seed: 12 });
    const fused = fusedFocal(yTrue, yPred);
    const reference = autodiff(yTrue, yPred, 0.25, 2);
    expect(Math.abs(fused.loss - reference.loss) / reference.loss).toBeLessThan(1e-6);
    expect(fused.grad.dtype).toBe("float32");
    expectClose(fused.grad.data, reference.grad.data, 1e-9, 1e-5);
  });

  it("matches focal() at the clip edges, with soft labels, and never reads ignored anchors", () => {
    // [1, 6, 3]: an object with p = 0 and 1 on its positive class, p beyond 1 − ε on a negative;
    // a background anchor at p = 0, 1 and 1 − 1e-9; a soft label; two ignored anchors holding NaN.
    const yTrue = tensor(
      [
        [
          [1, 0, 0, 1],
          [0, 1, 0, 1],
          [0, 0, 0, 0],
          [0.3, 0, 1, 1],
          [0, 0, 0, -1],
          [1, 1, 1, -1],
        ],
      ],
      { dtype: "float64" },
    );
    const yPred = tensor(
      [
        [
          [0, 0.2, 1 - 1e-9],
          [0.4, 1, 0.3],
          [0, 1, 1 - 1e-9],
          [0.6, 0.1, 0.7],
          [Number.NaN, 0.5, 0.5],
          [0.2, Number.NaN, 1],
        ],
      ],
      { dtype: "float64" },
    );
    for (const gamma of [0, 2]) {
      const fused = fusedFocal(yTrue, yPred, { gamma });
      const reference = autodiff(yTrue, yPred, 0.25, gamma);
      expect(Number.isFinite(fused.loss)).toBe(true);
      expect(fused.loss).toBeCloseTo(reference.loss, 12);
      expectClose(fused.grad.data, reference.grad.data, 1e-12, 1e-10);
      expect(Array.from(fused.grad.data.subarray(12))).toEqual([0, 0, 0, 0, 0, 0]);
    }
  });

  it("normalises by one when the batch has no object anchor", () => {
    const yTrue = tensor(
      [
        [
          [0, 0],
          [1, -1],
        ],
      ],
      { dtype: "float64" },
    );
    const yPred = tensor([[[0.5], [0.5]]], { dtype: "float64" });
    // Only the background anchor counts: 0.75 · 0.5² · −log(0.5), divided by max(1, 0).
    expect(fusedFocal(yTrue, yPred).loss).toBeCloseTo(0.75 * 0.25 * Math.LN2, 14);
  });

  it("agrees with central finite differences of its own loss (gradcheck defaults)", () => {
    const { yTrue, yPred } = syntheticAnchorBatch({
      ...mixed,
      anchors: 20,
      seed: 13,
      dtype: "float64",
    });
    const { grad } = fusedFocal(yTrue, yPred, { gamma: 2 });
    const scratch = new Float64Array(yPred.size);
    const lossAt = (p: Float64Array) =>
      fusedFocalInto(yTrue.data, p, scratch, 40, 3, {}, "float64");
    const eps = 1e-6;
    const p = Float64Array.from(yPred.data);
    for (let i = 0; i < p.length; i++) {
      const saved = p[i];
      p[i] = saved + eps;
      const up = lossAt(p);
      p[i] = saved - eps;
      const down = lossAt(p);
      p[i] = saved;
      const numeric = (up - down) / (2 * eps);
      expect(Math.abs(grad.data[i] - numeric)).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(numeric));
    }
  });

  it("rejects shapes that do not pair up and non-float predictions", () => {
    const yPred = tensor([[[0.5, 0.5]]]);
    expect(() => fusedFocal(tensor([[[0, 0]]]), yPred)).toThrow(
      "fusedFocal: expected yTrue [B, N, C + 1] and yPred [B, N, C], got [1, 1, 2] and [1, 1, 2]",
    );
    expect(() => fusedFocal(tensor([[[0, 0, 1]]]), tensor([[[1, 0]]], { dtype: "int32" }))).toThrow(
      "fusedFocal: yPred must be float32 or float64, got int32",
    );
  });
});

describe("FusedFocalThreads", () => {
  it("gives the single loop's gradient bit for bit and its loss to rounding, on 1, 2 and 3 threads", () => {
    // Objects, background and ignored anchors spread over every thread's range.
    const { yTrue, yPred } = syntheticAnchorBatch({ ...mixed, anchors: 301, seed: 14 });
    const single = fusedFocal(yTrue, yPred);
    for (const threads of [1, 2, 3]) {
      const fused = new FusedFocalThreads(
        yTrue.read() as Float32Array,
        yPred.read() as Float32Array,
        2 * 301,
        3,
        threads,
      );
      try {
        // yTrue 602 × 4 and yPred, grad 602 × 3 float32, one float64 loss per thread.
        expect(fused.sharedBytes).toBe(602 * 4 * 4 + 2 * 602 * 3 * 4 + 8 * threads);
        for (let run = 0; run < 2; run++) {
          // Each element's gradient is the same expression with the same normaliser.
          expect(Math.abs(fused.run() - single.loss)).toBeLessThanOrEqual(1e-12 * single.loss);
          expect(Array.from(fused.grad)).toEqual(Array.from(single.grad.read()));
        }
      } finally {
        fused.close();
      }
    }
  });

  it("rejects arrays that do not match the anchors and classes, and a thread count below 1", () => {
    const yTrue = new Float32Array(2 * 4);
    const yPred = new Float32Array(2 * 3);
    expect(() => new FusedFocalThreads(yTrue, yPred, 2, 2)).toThrow(
      "FusedFocalThreads: expected yTrue of 2 × 3 and yPred of 2 × 2 elements, got 8 and 6",
    );
    expect(() => new FusedFocalThreads(yTrue, yPred, 2, 3, 0)).toThrow(
      "FusedFocalThreads: threads must be an integer >= 1, got 0",
    );
  });
});
