// Empty inputs follow PyTorch: empty results, −∞ for an empty log-sum-exp, NaN for an empty mean,
// an error naming the op the caller used for an empty max or min, never one naming another op.

import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";
import { withFusion } from "../../src/testing/index.js";

const modes = ["opByOp", "fused"] as const;

describe("empty reductions", () => {
  it("sum of nothing is 0; mean of nothing is NaN (0 / 0)", () => {
    expect(F.sum(F.zeros([0])).item()).toBe(0);
    expect(F.sum(F.zeros([0], { dtype: "int32" })).item()).toBe(0);
    expect(F.mean(F.zeros([0])).item()).toBeNaN();
    expect(F.mean(F.zeros([2, 0]), { axis: 1 }).toArray()).toEqual([Number.NaN, Number.NaN]);
    expect(F.sum(F.zeros([2, 0]), { axis: 0 }).shape).toEqual([0]);
  });

  it("logSumExp of nothing is −∞ (log 0), per group too", () => {
    expect(F.logSumExp(F.zeros([0])).item()).toBe(Number.NEGATIVE_INFINITY);
    expect(F.logSumExp(F.zeros([2, 0]), { axis: 1 }).toArray()).toEqual([
      Number.NEGATIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
    expect(F.logSumExp(F.zeros([0, 3]), { axis: 1 }).shape).toEqual([0]);
  });

  it("max and min of nothing are errors naming max or min (PyTorch errors too)", () => {
    expect(() => F.max(F.zeros([0]))).toThrow("max: cannot reduce axis 0 of size 0");
    expect(() => F.min(F.zeros([3, 0]), { axis: 1 })).toThrow(
      "min: cannot reduce axis 1 of size 0",
    );
    // Reducing a non-empty axis of an empty tensor is fine: an empty result.
    expect(F.max(F.zeros([0, 3]), { axis: 1 }).shape).toEqual([0]);
  });

  for (const mode of modes) {
    it(`softmax and logSoftmax of an empty axis or batch are empty, with gradients, ${mode}`, () => {
      withFusion(mode, () => {
        for (const shape of [
          [2, 0],
          [0, 3],
          [0, 0],
        ]) {
          const x = F.zeros(shape, { requiresGrad: true });
          expect(F.softmax(x).shape).toEqual(shape);
          expect(F.logSoftmax(x, 0).shape).toEqual(shape);
          F.sum(F.logSoftmax(x)).backward();
          expect(x.grad!.shape).toEqual(shape);
        }
      });
    });
  }
});

describe("layers and spatial ops on an empty batch", () => {
  it("GroupNorm gives an empty result and empty gradients", () => {
    const gn = new F.nn.GroupNorm(1, 2);
    const x = F.zeros([0, 2, 3, 3], { requiresGrad: true });
    const y = gn.forward(x);
    expect(y.shape).toEqual([0, 2, 3, 3]);
    F.sum(y).backward();
    expect(x.grad!.shape).toEqual([0, 2, 3, 3]);
    // Nothing flows into the parameters from no samples: exactly 0.
    expect([...gn.weight!.grad!.read()]).toEqual([0, 0]);
  });

  it("BatchNorm2d gives an empty result and leaves its running statistics alone", () => {
    const bn = new F.nn.BatchNorm2d(2);
    const y = bn.forward(F.zeros([0, 2, 4, 4]));
    expect(y.shape).toEqual([0, 2, 4, 4]);
    expect([...bn.runningMean.read()]).toEqual([0, 0]);
    expect([...bn.runningVar.read()]).toEqual([1, 1]);
    expect(bn.numBatchesTracked.item()).toBe(0);
  });

  it("conv2d, pools, upsample, Linear and matmul give empty results", () => {
    const x = F.zeros([0, 3, 8, 8], { requiresGrad: true });
    const w = F.uniform([4, 3, 3, 3], { seed: 0, requiresGrad: true });
    const y = F.conv2d(x, w, { padding: 1, bias: F.zeros([4]) });
    expect(y.shape).toEqual([0, 4, 8, 8]);
    F.sum(y).backward();
    expect(x.grad!.shape).toEqual([0, 3, 8, 8]);
    expect([...w.grad!.read()].every((v) => v === 0)).toBe(true);
    expect(F.maxPool2d(x, { kernelSize: 2 }).shape).toEqual([0, 3, 4, 4]);
    expect(F.avgPool2d(x, { kernelSize: 2 }).shape).toEqual([0, 3, 4, 4]);
    expect(F.upsampleNearest2d(x, { scaleFactor: 2 }).shape).toEqual([0, 3, 16, 16]);
    const linear = new F.nn.Linear(5, 2, { seed: 0 });
    expect(linear.forward(F.zeros([0, 5])).shape).toEqual([0, 2]);
    expect(F.matmul(F.zeros([2, 0]), F.zeros([0, 3])).toArray()).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
  });
});
