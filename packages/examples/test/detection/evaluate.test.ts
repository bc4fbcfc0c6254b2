import { type Tensor, tensor, zeros } from "@focalgrad/core";
import { describe, expect, it } from "vitest";
import { meanAveragePrecision } from "../../src/detection/evaluate.js";

const int = (values: number[]) => tensor(values, { dtype: "int32" });
const gt = (boxes: number[][], labels: number[]) => ({
  boxes: boxes.length === 0 ? zeros([0, 4]) : tensor(boxes),
  labels: int(labels),
});
const det = (boxes: number[][], scores: number[], labels: number[]) => ({
  boxes: boxes.length === 0 ? zeros([0, 4]) : tensor(boxes),
  scores: (scores.length === 0 ? zeros([0]) : tensor(scores)) as Tensor,
  labels: int(labels),
});

const A = [0, 0, 10, 10];
const B = [20, 0, 30, 10];
const FAR = [50, 50, 60, 60];

describe("meanAveragePrecision", () => {
  it("orders tied scores by image, then by position within the image", () => {
    // Image 0: a hit at 0.9. Image 1: a miss and then a hit, both at 0.8 (a tie).
    // Order hit, miss, hit: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    // VOC: envelope 1 up to recall 1/2, then 2/3: AP = 0.5 · 1 + 0.5 · 2/3 = 5/6.
    // COCO: recalls 0.00…0.50 (51 points) reach precision 1, 0.51…1.00 (50 points) 2/3:
    // AP = (51 + 50 · 2/3) / 101 = 0.834983…, the same at every IoU (the boxes are exact).
    const result = meanAveragePrecision(
      [det([A], [0.9], [0]), det([FAR, A], [0.8, 0.8], [0, 0])],
      [gt([A], [0]), gt([A], [0])],
    );
    expect(result.map).toBeCloseTo(5 / 6, 12);
    expect(result.perClass).toEqual([result.map]);
    expect(result.cocoMap).toBeCloseTo((51 + (50 * 2) / 3) / 101, 12);
  });

  it("matches a ground-truth box once: a duplicate is a false positive", () => {
    // Two boxes; detections: A (hit), A again (duplicate: miss), B (hit).
    // Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: VOC AP = 5/6 (were the duplicate a hit, AP = 1).
    const result = meanAveragePrecision(
      [det([A, A, B], [0.9, 0.8, 0.7], [0, 0, 0])],
      [gt([A, B], [0, 0])],
    );
    expect(result.map).toBeCloseTo(5 / 6, 12);
  });

  it("gives AP 0 to a class with ground truth and no detections, and handles images without detections", () => {
    // Class 0 found perfectly (AP 1); class 1 never detected (AP 0): mean 1/2.
    const result = meanAveragePrecision(
      [det([A], [0.9], [0]), det([], [], [])],
      [gt([A], [0]), gt([B], [1])],
    );
    expect(result.perClass).toEqual([1, 0]);
    expect(result.cocoPerClass).toEqual([1, 0]);
    expect(result.map).toBe(0.5);
    expect(result.cocoMap).toBe(0.5);
  });

  it("leaves a class without ground truth out of the mean (null), even if it has detections", () => {
    const result = meanAveragePrecision([det([A, B], [0.9, 0.95], [0, 1])], [gt([A], [0])], {
      numClasses: 3,
    });
    expect(result.perClass).toEqual([1, null, null]);
    expect(result.map).toBe(1);
    expect(result.cocoMap).toBe(1);
  });

  it("needs IoU above the threshold for VOC and at least each threshold for COCO", () => {
    // [0, 0, 10, 5] against A: IoU 50 / 100 = 0.5 exactly. VOC at 0.5 (strict): a miss, AP 0.
    // COCO: a hit at IoU 0.50 only (AP 1 there), a miss at 0.55…0.95: AP = 1 / 10.
    const result = meanAveragePrecision([det([[0, 0, 10, 5]], [0.9], [0])], [gt([A], [0])]);
    expect(result.map).toBe(0);
    expect(result.cocoMap).toBeCloseTo(0.1, 12);
    // At threshold 0.4 the same detection is a hit.
    expect(
      meanAveragePrecision([det([[0, 0, 10, 5]], [0.9], [0])], [gt([A], [0])], {
        iouThreshold: 0.4,
      }).map,
    ).toBe(1);
  });

  it("keeps COCO's best maxDetections per image and class", () => {
    // maxDetections 1: only the 0.9 miss survives for COCO, AP 0; VOC has no cap: hit second,
    // precision 1/2 at recall 1, AP 1/2.
    const result = meanAveragePrecision([det([FAR, A], [0.9, 0.8], [0, 0])], [gt([A], [0])], {
      maxDetections: 1,
    });
    expect(result.map).toBe(0.5);
    expect(result.cocoMap).toBe(0);
  });

  it("rejects mismatched inputs with a clear error", () => {
    expect(() => meanAveragePrecision([], [gt([A], [0])])).toThrow(
      /detections for 0 images but ground truth for 1/,
    );
    expect(() => meanAveragePrecision([det([A], [Number.NaN], [0])], [gt([A], [0])])).toThrow(
      /scores\[0\] is NaN/,
    );
    expect(() => meanAveragePrecision([det([], [], [])], [gt([], [])])).toThrow(
      /no ground-truth boxes/,
    );
    expect(() =>
      meanAveragePrecision([det([A], [0.5], [2])], [gt([A], [0])], { numClasses: 2 }),
    ).toThrow(/label 2, but numClasses is 2/);
  });
});
