import { type Tensor, tensor } from "@focalgrad/core";
import { describe, expect, it } from "vitest";
import {
  type AnchorTargetOptions,
  type Annotation,
  anchorsFor,
  anchorTargets,
  centerBoxCoder,
  focal,
  smoothL1,
} from "../src/index.js";
import { f64 } from "./helpers.js";

const int32 = (v: number[]) => tensor(v, { dtype: "int32" });
const annotation = (boxes: number[][], labels: number[]): Annotation => ({
  boxes: boxes.length > 0 ? f64(boxes) : f64([], [0, 4]),
  labels: int32(labels),
});
/** Row `a` of image `b` of a [B, N, K] tensor. */
const row = (t: Tensor, b: number, a: number) => {
  const k = t.shape[2];
  const start = (b * t.shape[1] + a) * k;
  return Array.from(t.data.subarray(start, start + k));
};
const states = (t: Tensor, b = 0) =>
  Array.from({ length: t.shape[1] }, (_, a) => row(t, b, a)[t.shape[2] - 1]);

const unit = f64([[0, 0, 10, 10]]); // area 100
const wide = { imageShape: [100, 100] as const };
/** The targets of the anchor `unit` in one image with these boxes and labels. */
const againstUnit = (
  boxes: number[][],
  labels: number[],
  options: Partial<AnchorTargetOptions> = {},
) => anchorTargets(unit, [annotation(boxes, labels)], { numClasses: 2, ...wide, ...options });

describe("anchorTargets: the assignment at the boundary IoUs", () => {
  // Each image holds one box against the anchor [0, 0, 10, 10] (area 100). A box [0, 0, 10, h]
  // inside it has intersection 10 h and union 100, so IoU = 10 h / 100, exactly h / 10 for these
  // integers and halves: 0.5 and 0.4 round to the same doubles as the literals 0.5 and 0.4.
  const iouCase = (h: number, options: Partial<AnchorTargetOptions> = {}) =>
    againstUnit([[0, 0, 10, h]], [2], { numClasses: 3, ...options });

  it("IoU exactly 0.5 is an object; just below is ignored", () => {
    // h = 5: IoU 50 / 100 = 0.5 >= positiveOverlap -> state 1, one-hot class 2.
    expect(row(iouCase(5).labels, 0, 0)).toEqual([0, 0, 1, 1]);
    // h = 4.9: IoU 0.49 -> ignored, labels untouched (0).
    expect(row(iouCase(4.9).labels, 0, 0)).toEqual([0, 0, 0, -1]);
  });

  it("IoU exactly 0.4 is background (keras-retinanet ignores only IoU > negativeOverlap); just above is ignored", () => {
    // h = 4: IoU 40 / 100 = 0.4, not > 0.4 -> background.
    expect(row(iouCase(4).labels, 0, 0)).toEqual([0, 0, 0, 0]);
    expect(row(iouCase(4).regression, 0, 0)[4]).toBe(0);
    // h = 4.5: IoU 0.45 in (0.4, 0.5) -> ignored; h = 3.9: 0.39 -> background.
    expect(row(iouCase(4.5).labels, 0, 0)[3]).toBe(-1);
    expect(row(iouCase(3.9).labels, 0, 0)[3]).toBe(0);
  });

  it("an IoU of 2 / 5 against a threshold of 0.4, and thresholds that meet", () => {
    // anchor [0, 0, 5, 1] (area 5), box [0, 0, 2, 1] (area 2): IoU 2 / 5, rounded to the double 0.4.
    const a = f64([[0, 0, 5, 1]]);
    const ann = [annotation([[0, 0, 2, 1]], [0])];
    expect(states(anchorTargets(a, ann, { numClasses: 1, ...wide }).labels)).toEqual([0]);
    // positiveOverlap = negativeOverlap = 0.4: IoU 0.4 >= 0.4 -> object; no band is ignored.
    const meet = { numClasses: 1, positiveOverlap: 0.4, negativeOverlap: 0.4, ...wide };
    expect(states(anchorTargets(a, ann, meet).labels)).toEqual([1]);
    // negativeOverlap 0.39: 0.4 > 0.39 and < 0.5 -> ignored.
    expect(
      states(anchorTargets(a, ann, { numClasses: 1, negativeOverlap: 0.39, ...wide }).labels),
    ).toEqual([-1]);
  });

  it("the same with float32 anchors and boxes (integer coordinates are exact)", () => {
    const a = tensor([[0, 0, 10, 10]]);
    const t = (h: number) =>
      states(
        anchorTargets(a, [{ boxes: tensor([[0, 0, 10, h]]), labels: int32([0]) }], {
          numClasses: 1,
          ...wide,
        }).labels,
      );
    expect([t(5), t(4)]).toEqual([[1], [0]]);
  });
});

describe("anchorTargets: matching, labels and regression targets", () => {
  it("regression targets from keras-retinanet's coder for every anchor, hand-worked", () => {
    // A0 [0, 0, 10, 10], A1 [20, 0, 30, 10]; box [0, 0, 10, 5] of class 0.
    // A0: IoU 0.5 -> object; targets ((0-0)/10, (0-0)/10, (10-10)/10, (5-10)/10) / 0.2 = [0, 0, 0, -2.5].
    // A1: IoU 0 -> background, still encoded against its best box (box 0):
    //   ((0-20)/10, 0/10, (10-30)/10, (5-10)/10) / 0.2 = [-10, 0, -10, -2.5].
    const anchors = f64([
      [0, 0, 10, 10],
      [20, 0, 30, 10],
    ]);
    const { labels, regression } = anchorTargets(anchors, [annotation([[0, 0, 10, 5]], [0])], {
      numClasses: 2,
      ...wide,
    });
    expect(labels.shape).toEqual([1, 2, 3]);
    expect(regression.shape).toEqual([1, 2, 5]);
    expect(labels.dtype).toBe("float32");
    expect(row(labels, 0, 0)).toEqual([1, 0, 1]);
    expect(row(labels, 0, 1)).toEqual([0, 0, 0]);
    expect(row(regression, 0, 0)).toEqual([0, 0, 0, -2.5, 1]);
    expect(row(regression, 0, 1)).toEqual([-10, 0, -10, -2.5, 0]);
  });

  it("another coder: torchvision's centre / log-size deltas", () => {
    // A0 centre (5, 5), 10 × 10; box [0, 0, 10, 5]: centre (5, 2.5), 10 × 5.
    //   [0 / 10, -2.5 / 10, log(10 / 10), log(5 / 10)] = [0, -0.25, 0, log 0.5]
    const { regression } = againstUnit([[0, 0, 10, 5]], [0], {
      boxCoder: centerBoxCoder(),
      dtype: "float64",
    });
    expect(regression.dtype).toBe("float64");
    expect(row(regression, 0, 0)).toEqual([0, -0.25, 0, Math.log(0.5), 1]);
  });

  it("each anchor takes its best box; ties go to the first box", () => {
    // box 0 [0, 0, 10, 3] (class 0): IoU 0.3; box 1 [0, 0, 10, 6] (class 1): IoU 0.6 -> class 1.
    const best = againstUnit(
      [
        [0, 0, 10, 3],
        [0, 0, 10, 6],
      ],
      [0, 1],
    );
    expect(row(best.labels, 0, 0)).toEqual([0, 1, 1]);
    // box 0 [0, 0, 10, 5] and box 1 [0, 5, 10, 10] both have IoU 0.5 -> box 0 (class 0), whose
    // targets are [0, 0, 0, -2.5] (box 1's would be [0, 2.5, 0, 0]).
    const tie = againstUnit(
      [
        [0, 0, 10, 5],
        [0, 5, 10, 10],
      ],
      [0, 1],
    );
    expect(row(tie.labels, 0, 0)).toEqual([1, 0, 1]);
    expect(row(tie.regression, 0, 0)).toEqual([0, 0, 0, -2.5, 1]);
  });

  it("one level of anchorsFor against a box equal to one anchor, worked by hand", () => {
    // 32 × 32 image, P3 with one 32 × 32 anchor per position: centres 4, 12, 20, 28 (4 × 4 grid),
    // anchor (row j, column i) = [8i - 12, 8j - 12, 8i + 20, 8j + 20]. The box is anchor 5
    // (row 1, column 1): [-4, -4, 28, 28].
    //   anchor 5: IoU 1 -> object.
    //   anchors 1, 4, 6, 9 (a step of 8 in x or y): inter 24 · 32 = 768, union 2048 - 768 = 1280 -> 0.6 -> object.
    //   anchors 0, 2, 8, 10 (diagonal): inter 24 · 24 = 576, union 1472 -> 0.391… -> background.
    //   anchors 3, 7, 11, 12, 13, 14 (two steps away in one axis): inter ≤ 16 · 32 = 512, union ≥ 1536 -> ≤ 1/3 -> background.
    //   anchor 15 and the others further away: less still.
    const anchors = anchorsFor([32, 32], { levels: [3], ratios: [1], scales: [1] });
    expect(anchors.shape).toEqual([16, 4]);
    const { labels, regression } = anchorTargets(anchors, [annotation([[-4, -4, 28, 28]], [0])], {
      numClasses: 1,
      imageShape: [32, 32],
    });
    const expected = new Array(16).fill(0);
    for (const a of [1, 4, 5, 6, 9]) expected[a] = 1;
    expect(states(labels)).toEqual(expected);
    expect(states(regression)).toEqual(expected);
    expect(row(regression, 0, 5)).toEqual([0, 0, 0, 0, 1]);
    // anchor 4 [-12, -4, 20, 28]: ((-4 + 12) / 32, 0, (28 - 20) / 32, 0) / 0.2 = [1.25, 0, 1.25, 0]
    expect(row(regression, 0, 4)).toEqual([1.25, 0, 1.25, 0, 1]);
  });

  it("an image without boxes is all background; images of a batch are independent", () => {
    const anchors = f64([
      [0, 0, 10, 10],
      [20, 0, 30, 10],
    ]);
    const { labels, regression } = anchorTargets(
      anchors,
      [annotation([], []), annotation([[20, 0, 30, 10]], [1])],
      { numClasses: 2, ...wide },
    );
    expect(labels.shape).toEqual([2, 2, 3]);
    expect(Array.from(labels.data.subarray(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(regression.data.subarray(0, 10))).toEqual(new Array(10).fill(0));
    // image 1: A0 IoU 0 -> background; A1 is the box -> object of class 1, zero targets.
    expect(row(labels, 1, 0)).toEqual([0, 0, 0]);
    expect(row(labels, 1, 1)).toEqual([0, 1, 1]);
    expect(row(regression, 1, 1)).toEqual([0, 0, 0, 0, 1]);
  });

  it("float32 targets are the float64 ones rounded once", () => {
    const anchors = anchorsFor([48, 48], { levels: [3, 4], dtype: "float64" });
    const ann = [
      annotation(
        [
          [3, 5, 29, 41],
          [20, 2, 47, 19],
        ],
        [0, 1],
      ),
    ];
    const options = { numClasses: 2, imageShape: [48, 48] as const };
    const t64 = anchorTargets(anchors, ann, { ...options, dtype: "float64" });
    const t32 = anchorTargets(anchors, ann, options);
    expect(Array.from(t32.regression.data)).toEqual(Array.from(t64.regression.data, Math.fround));
    expect(Array.from(t32.labels.data)).toEqual(Array.from(t64.labels.data));
  });
});

describe("anchorTargets: anchors outside the image", () => {
  // image [64, 64]: an anchor is ignored when its centre has x >= 64 or y >= 64.
  const anchors = f64([
    [54, 0, 74, 10], // cx = 64: ignored
    [53, 0, 74, 10], // cx = 63.5: kept
    [0, 50, 10, 78], // cy = 64: ignored
    [-20, -20, 10, 10], // cx = cy = -5: kept (only the right and bottom edges count)
  ]);

  it("are ignored, also in an image without boxes, and an object there keeps its one-hot row", () => {
    const { labels, regression } = anchorTargets(
      anchors,
      [annotation([], []), annotation([[54, 0, 74, 10]], [0])],
      { numClasses: 1, imageShape: [64, 64] },
    );
    expect(states(labels, 0)).toEqual([-1, 0, -1, 0]);
    expect(states(regression, 0)).toEqual([-1, 0, -1, 0]);
    // image 1: anchor 0 is the box (IoU 1) but outside -> -1 with its class column still 1;
    // anchor 1 [53, 0, 74, 10] vs the box: inter 20 · 10 = 200, union 210 -> 0.952 -> object.
    expect(row(labels, 1, 0)).toEqual([1, -1]);
    expect(row(labels, 1, 1)).toEqual([1, 1]);
    expect(states(regression, 1)).toEqual([-1, 1, -1, 0]);
  });

  it("one image shape per image, and null for no centre rule", () => {
    const ann = [annotation([], []), annotation([], [])];
    const perImage = anchorTargets(anchors, ann, {
      numClasses: 1,
      imageShape: [
        [64, 64],
        [100, 64],
      ],
    });
    expect(states(perImage.labels, 0)).toEqual([-1, 0, -1, 0]);
    // image 1 is 100 high: anchor 2 (cy = 64) is inside; anchor 0 (cx = 64) is not.
    expect(states(perImage.labels, 1)).toEqual([-1, 0, 0, 0]);
    const none = anchorTargets(anchors, ann, { numClasses: 1, imageShape: null });
    expect(Array.from(none.labels.data)).toEqual(new Array(16).fill(0));
  });
});

describe("anchorTargets: lowQualityMatches", () => {
  it("every anchor tied at a box's highest IoU becomes an object", () => {
    // A0 = A1 = [0, 0, 10, 10], A2 [20, 0, 30, 10]; box [0, 0, 10, 3] of class 1: IoU 0.3 with A0
    // and A1 (below 0.4: background), 0 with A2. Its highest IoU is 0.3, held by A0 and A1.
    const anchors = f64([
      [0, 0, 10, 10],
      [0, 0, 10, 10],
      [20, 0, 30, 10],
    ]);
    const ann = [annotation([[0, 0, 10, 3]], [1])];
    const options = { numClasses: 2, ...wide };
    expect(states(anchorTargets(anchors, ann, options).labels)).toEqual([0, 0, 0]);
    const { labels, regression } = anchorTargets(anchors, ann, {
      ...options,
      lowQualityMatches: true,
    });
    expect(row(labels, 0, 0)).toEqual([0, 1, 1]);
    expect(row(labels, 0, 1)).toEqual([0, 1, 1]);
    expect(row(labels, 0, 2)).toEqual([0, 0, 0]);
    // targets of A0: (0, 0, 0, (3 - 10) / 10) / 0.2 = [0, 0, 0, -3.5]
    expect(row(regression, 0, 0)).toEqual([0, 0, 0, -3.5, 1]);
  });

  it("a forced anchor takes its own best box (as torchvision's matcher), an ignored one too", () => {
    // A0 [0, 0, 10, 10]; box 0 [0, 0, 10, 2] (class 0): IoU 0.2; box 1 [0, 0, 10, 4.5] (class 1):
    // IoU 0.45 (ignored). A0 is the best anchor of both, and its own best box is box 1 -> class 1.
    const { labels } = againstUnit(
      [
        [0, 0, 10, 2],
        [0, 0, 10, 4.5],
      ],
      [0, 1],
      {
        lowQualityMatches: true,
      },
    );
    expect(row(labels, 0, 0)).toEqual([0, 1, 1]);
  });

  it("a box that overlaps no anchor forces nothing", () => {
    const { labels } = againstUnit([[50, 50, 60, 60]], [0], { lowQualityMatches: true });
    expect(row(labels, 0, 0)).toEqual([0, 0, 0]);
  });
});

describe("anchorTargets feeds the losses", () => {
  it("focal and smoothL1 accept its targets", () => {
    const anchors = anchorsFor([32, 32], { levels: [3] });
    const { labels, regression } = anchorTargets(anchors, [annotation([[4, 4, 28, 20]], [2])], {
      numClasses: 3,
      imageShape: [32, 32],
      lowQualityMatches: true, // at least one object anchor, so that smoothL1 has something to sum
    });
    const n = anchors.shape[0];
    const classification = tensor(new Float32Array(n * 3).fill(0.01), { shape: [1, n, 3] });
    const deltas = tensor(new Float32Array(n * 4), { shape: [1, n, 4] });
    expect(Number.isFinite(focal()(labels, classification).item())).toBe(true);
    expect(smoothL1()(regression, deltas).item()).toBeGreaterThan(0);
  });
});

describe("anchorTargets validation", () => {
  const ok = [annotation([[0, 0, 10, 5]], [0])];
  const opts = { numClasses: 2, ...wide };
  it("anchors and annotations", () => {
    expect(() => anchorTargets(f64([0, 0, 1, 1]), ok, opts)).toThrow(
      /anchorTargets: anchors must be a float32 or float64 tensor of shape \[N, 4\] \(x1, y1, x2, y2\), got a float64 tensor of shape \[4\]/,
    );
    expect(() => anchorTargets(f64([[0, Number.NaN, 1, 1]]), ok, opts)).toThrow(
      /anchorTargets: every box of anchors must be finite with x2 > x1 and y2 > y1, got \[0, NaN, 1, 1\] at row 0/,
    );
    expect(() => anchorTargets(unit, {} as Annotation[], opts)).toThrow(
      /annotations must be an array/,
    );
    expect(() => anchorTargets(unit, [null as unknown as Annotation], opts)).toThrow(
      /annotations\[0\] must be an object \{ boxes, labels \}, got null/,
    );
    expect(() =>
      anchorTargets(unit, [{ boxes: f64([0, 0, 1, 1]), labels: int32([0]) }], opts),
    ).toThrow(/annotations\[0\].boxes must be a float32 or float64 tensor of shape \[K, 4\]/);
    expect(() =>
      anchorTargets(unit, [{ boxes: f64([[0, 0, 1, 1]]), labels: f64([0]) }], opts),
    ).toThrow(
      /annotations\[0\].labels must be an int32 tensor of shape \[K\], got a float64 tensor of shape \[1\]/,
    );
    expect(() =>
      anchorTargets(unit, [{ boxes: f64([[0, 0, 1, 1]]), labels: int32([0, 1]) }], opts),
    ).toThrow(/annotations\[0\] has 1 boxes but 2 labels/);
    expect(() => anchorTargets(unit, [ok[0], annotation([[0, 0, 10, 5]], [2])], opts)).toThrow(
      /annotations\[1\].labels\[0\] must lie in \[0, 2\) \(numClasses 2\), got 2/,
    );
    expect(() => anchorTargets(unit, [annotation([[0, 0, 10, 5]], [-1])], opts)).toThrow(
      /labels\[0\] must lie in \[0, 2\)/,
    );
    expect(() =>
      anchorTargets(
        unit,
        [
          annotation(
            [
              [0, 0, 10, 5],
              [3, 3, 3, 9],
            ],
            [0, 0],
          ),
        ],
        opts,
      ),
    ).toThrow(
      /anchorTargets: every box of annotations\[0\].boxes must be finite with x2 > x1 and y2 > y1, got \[3, 3, 3, 9\] at row 1/,
    );
    expect(() =>
      anchorTargets(unit, [annotation([[0, 0, Number.POSITIVE_INFINITY, 5]], [0])], opts),
    ).toThrow(/every box of annotations\[0\].boxes must be finite .* at row 0/);
  });

  it("options", () => {
    expect(() => anchorTargets(unit, ok, { ...opts, numClasses: 0 })).toThrow(
      /numClasses must be an integer >= 1, got 0/,
    );
    expect(() => anchorTargets(unit, ok, { ...opts, numClasses: 1.5 })).toThrow(/numClasses/);
    expect(() => anchorTargets(unit, ok, { ...opts, negativeOverlap: 0.6 })).toThrow(
      /anchorTargets: negativeOverlap \(0.6\) must not exceed positiveOverlap \(0.5\)/,
    );
    expect(() => anchorTargets(unit, ok, { ...opts, positiveOverlap: 1.5 })).toThrow(
      /positiveOverlap must be a number in \[0, 1\], got 1.5/,
    );
    expect(() => anchorTargets(unit, ok, { ...opts, negativeOverlap: Number.NaN })).toThrow(
      /negativeOverlap must be a number/,
    );
    expect(() => anchorTargets(unit, ok, { numClasses: 2 } as AnchorTargetOptions)).toThrow(
      /options.imageShape is required/,
    );
    expect(() => anchorTargets(unit, ok, { ...opts, imageShape: [0, 10] })).toThrow(
      /imageShape must be \[height, width\], two finite numbers > 0, got \[0,10\]/,
    );
    expect(() =>
      anchorTargets(unit, ok, {
        ...opts,
        imageShape: [
          [10, 10],
          [10, 10],
        ],
      }),
    ).toThrow(/imageShape must be one \[height, width\] or one per image \(1\), got 2 shapes/);
    expect(() =>
      anchorTargets(unit, ok, { ...opts, lowQualityMatches: 1 as unknown as boolean }),
    ).toThrow(/lowQualityMatches must be a boolean/);
    const flat = { encode: () => f64([0, 0, 0, 0]), decode: (a: Tensor) => a };
    expect(() => anchorTargets(unit, ok, { ...opts, boxCoder: flat })).toThrow(
      /boxCoder.encode must return \[N, 4\] = \[1, 4\] for anchors \[1, 4\], got a float64 tensor of shape \[4\]/,
    );
    expect(() => anchorTargets(unit, ok, { ...opts, boxCoder: {} as never })).toThrow(
      /boxCoder must be a BoxCoder/,
    );
    expect(() => anchorTargets(unit, ok, { ...opts, dtype: "int32" as "float32" })).toThrow(
      /dtype must be "float32" or "float64", got "int32"/,
    );
    expect(() => anchorTargets(unit, ok, null as unknown as AnchorTargetOptions)).toThrow(
      /options must be an object/,
    );
  });
});
