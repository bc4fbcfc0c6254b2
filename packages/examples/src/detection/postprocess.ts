/** From RetinaNet's dense outputs to detections per image, as torchvision's and keras-retinanet's post-processing: threshold, top-k per level, decode, clip, per-class NMS, cap. */

import {
  batchedNms,
  clipBoxes,
  gather,
  noGrad,
  reshape,
  slice,
  type Tensor,
  tensor,
  topk,
  zeros,
} from "@focalgrad/core";
import type { BoxCoder } from "@focalgrad/losses";
import type { Detections } from "./evaluate.js";

export interface PostprocessOptions {
  /** Candidates need a class probability above this. Default 0.05. */
  scoreThreshold?: number;
  /** Best candidates kept per pyramid level before NMS. Default 1000. */
  topkPerLevel?: number;
  /** IoU above which NMS suppresses a box of the same class. Default 0.5. */
  nmsThreshold?: number;
  /** Detections kept per image after NMS. Default 100. */
  maxDetections?: number;
}

/** The anchors of a detector: all of them `[N, 4]`, and where each pyramid level's rows start and how many. */
export interface AnchorSet {
  anchors: Tensor;
  levels: readonly { offset: number; count: number }[];
}

function checkOption(name: string, value: number, ok: boolean, expected: string): void {
  if (!ok) throw new Error(`postprocess: ${name} must be ${expected}, got ${value}`);
}

/**
 * Detections per image from class probabilities `[B, N, C]` and box regression `[B, N, 4]`
 * (anchors in `anchorSet` order): per level the (anchor, class) pairs whose probability exceeds
 * `scoreThreshold`, the `topkPerLevel` best of them; their boxes decoded by `coder` and clipped
 * to the image; per-class NMS at `nmsThreshold`; the `maxDetections` best. Sorted by score.
 *
 * @example
 * const detections = postprocess(classification, regression, anchorSet, cornerBoxCoder(), [64, 64]);
 * detections[0].boxes.shape; // [D, 4], D <= 100
 */
export function postprocess(
  classification: Tensor,
  regression: Tensor,
  anchorSet: AnchorSet,
  coder: BoxCoder,
  imageShape: readonly [number, number],
  options: PostprocessOptions = {},
): Detections[] {
  const {
    scoreThreshold = 0.05,
    topkPerLevel = 1000,
    nmsThreshold = 0.5,
    maxDetections = 100,
  } = options;
  checkOption(
    "scoreThreshold",
    scoreThreshold,
    scoreThreshold >= 0 && scoreThreshold < 1,
    "in [0, 1)",
  );
  checkOption(
    "topkPerLevel",
    topkPerLevel,
    Number.isInteger(topkPerLevel) && topkPerLevel >= 1,
    "an integer >= 1",
  );
  checkOption("nmsThreshold", nmsThreshold, nmsThreshold >= 0 && nmsThreshold <= 1, "in [0, 1]");
  checkOption(
    "maxDetections",
    maxDetections,
    Number.isInteger(maxDetections) && maxDetections >= 1,
    "an integer >= 1",
  );
  const { anchors, levels } = anchorSet;
  if (classification.rank !== 3 || regression.rank !== 3 || regression.shape[2] !== 4) {
    throw new Error(
      `postprocess: classification must be [B, N, C] and regression [B, N, 4], got [${classification.shape.join(", ")}] and [${regression.shape.join(", ")}]`,
    );
  }
  const [batch, n, numClasses] = classification.shape;
  if (regression.shape[0] !== batch || regression.shape[1] !== n || anchors.shape[0] !== n) {
    throw new Error(
      `postprocess: classification [${classification.shape.join(", ")}], regression [${regression.shape.join(", ")}] and anchors [${anchors.shape.join(", ")}] must agree on B and N`,
    );
  }
  return noGrad(() => {
    const decoded = coder.decode(anchors, regression);
    const probabilities = classification.data;
    const out: Detections[] = [];
    for (let b = 0; b < batch; b++) {
      const keptRows: number[] = [];
      const keptScores: number[] = [];
      const keptLabels: number[] = [];
      for (const { offset, count } of levels) {
        const candidates: number[] = [];
        const candidateScores: number[] = [];
        const base = (b * n + offset) * numClasses;
        for (let k = 0; k < count * numClasses; k++) {
          const p = probabilities[base + k];
          if (p > scoreThreshold) {
            candidates.push(k);
            candidateScores.push(p);
          }
        }
        if (candidates.length === 0) continue;
        const best = topk(tensor(candidateScores), Math.min(topkPerLevel, candidates.length));
        const order = best.indices.data;
        for (let i = 0; i < order.length; i++) {
          const flat = candidates[order[i]];
          keptRows.push(offset + Math.floor(flat / numClasses));
          keptLabels.push(flat % numClasses);
          keptScores.push(best.values.data[i]);
        }
      }
      if (keptRows.length === 0) {
        out.push({
          boxes: zeros([0, 4]),
          scores: zeros([0]),
          labels: zeros([0], { dtype: "int32" }),
        });
        continue;
      }
      const imageBoxes = reshape(slice(decoded, [b, 0, 0], [1, n, 4]), [n, 4]);
      const rows = tensor(keptRows, { dtype: "int32" });
      const boxes = clipBoxes(gather(imageBoxes, rows, 0), [imageShape[0], imageShape[1]]);
      const scores = tensor(keptScores);
      const labels = tensor(keptLabels, { dtype: "int32" });
      const kept = batchedNms(boxes, scores, labels, nmsThreshold);
      const top = kept.shape[0] > maxDetections ? slice(kept, [0], [maxDetections]) : kept;
      out.push({
        boxes: gather(boxes, top, 0),
        scores: gather(scores, top, 0),
        labels: gather(labels, top, 0),
      });
    }
    return out;
  });
}
