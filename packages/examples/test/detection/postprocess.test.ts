import { tensor, zeros } from "@focalgrad/core";
import { cornerBoxCoder } from "@focalgrad/losses";
import { describe, expect, it } from "vitest";
import { postprocess } from "../../src/detection/postprocess.js";

// Level 0: anchors A1 and A2 (A2 is A1 moved 1 px right: IoU 90 / 110 = 0.82); level 1: A3 apart.
const anchors = tensor([
  [0, 0, 10, 10],
  [1, 0, 11, 10],
  [20, 20, 30, 30],
]);
const anchorSet = {
  anchors,
  levels: [
    { offset: 0, count: 2 },
    { offset: 2, count: 1 },
  ],
};
// Class probabilities per anchor (2 classes); zero regression decodes to the anchors themselves.
const classification = tensor([
  [
    [0.9, 0.04],
    [0.8, 0.3],
    [0.03, 0.6],
  ],
]);
const regression = zeros([1, 3, 4]);
const coder = cornerBoxCoder();

const run = (options = {}) =>
  postprocess(classification, regression, anchorSet, coder, [64, 64], options)[0];

describe("postprocess", () => {
  it("thresholds, suppresses per class and sorts by score, worked by hand", () => {
    // Candidates > 0.05: (A1, 0, 0.9), (A2, 0, 0.8), (A2, 1, 0.3), (A3, 1, 0.6).
    // Class 0: A2 overlaps A1 at 0.82 > 0.5, suppressed. Class 1: A2 and A3 do not overlap, both stay
    // (NMS is per class: A2's class-1 box survives though A1 took its class-0 box).
    const d = run();
    expect(Array.from(d.scores.data)).toEqual([0.9, 0.6, 0.3].map(Math.fround));
    expect(Array.from(d.labels.data)).toEqual([0, 1, 1]);
    expect(d.boxes.toArray()).toEqual([
      [0, 0, 10, 10],
      [20, 20, 30, 30],
      [1, 0, 11, 10],
    ]);
  });

  it("keeps the top k per level before NMS and caps the detections", () => {
    // Top 1 per level: (A1, 0, 0.9) on level 0 and (A3, 1, 0.6) on level 1.
    expect(Array.from(run({ topkPerLevel: 1 }).scores.data)).toEqual([0.9, 0.6].map(Math.fround));
    expect(Array.from(run({ maxDetections: 2 }).labels.data)).toEqual([0, 1]);
    // A threshold of 0.5 leaves 0.9, 0.8 (suppressed) and 0.6.
    expect(Array.from(run({ scoreThreshold: 0.5 }).scores.data)).toEqual(
      [0.9, 0.6].map(Math.fround),
    );
  });

  it("clips decoded boxes to the image and returns empty detections when nothing passes", () => {
    const outside = { anchors: tensor([[-5, -5, 5, 5]]), levels: [{ offset: 0, count: 1 }] };
    const d = postprocess(tensor([[[0.7]]]), zeros([1, 1, 4]), outside, coder, [64, 64])[0];
    expect(d.boxes.toArray()).toEqual([[0, 0, 5, 5]]);
    const none = postprocess(tensor([[[0.01]]]), zeros([1, 1, 4]), outside, coder, [64, 64])[0];
    expect(none.boxes.shape).toEqual([0, 4]);
    expect(none.labels.dtype).toBe("int32");
  });

  it("rejects mismatched shapes and bad options by name", () => {
    expect(() => postprocess(classification, zeros([1, 2, 4]), anchorSet, coder, [64, 64])).toThrow(
      /must agree on B and N/,
    );
    expect(() => run({ scoreThreshold: 1 })).toThrow(/scoreThreshold must be in \[0, 1\), got 1/);
    expect(() => run({ maxDetections: 0 })).toThrow(/maxDetections must be an integer >= 1/);
  });
});
