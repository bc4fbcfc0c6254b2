/** Detection metrics: PASCAL VOC's all-point average precision at one IoU, and COCO's AP over IoU 0.50:0.95 with 101-point interpolation. */

import { boxIou, type Tensor } from "@focalgrad/core";
import type { Annotation } from "./datasets.js";

/** The detections of one image: boxes `[D, 4]` (x1, y1, x2, y2), scores `[D]`, labels `[D]` int32. */
export interface Detections {
  boxes: Tensor;
  scores: Tensor;
  labels: Tensor;
}

export interface MapOptions {
  /** IoU a detection must exceed to match a ground-truth box, for `map` (VOC's rule). Default 0.5. */
  iouThreshold?: number;
  /** Number of classes; default one more than the largest label seen. */
  numClasses?: number;
  /** COCO's cap: the best-scoring detections kept per image and class for `cocoMap`. Default 100. */
  maxDetections?: number;
}

export interface MapResult {
  /** Mean over the classes that have ground truth of VOC's all-point AP at `iouThreshold`. */
  map: number;
  /** That AP per class; null for a class without ground-truth boxes (left out of the mean). */
  perClass: (number | null)[];
  /** COCO's AP: 101-point interpolated AP averaged over IoU 0.50, 0.55, …, 0.95, then over classes. */
  cocoMap: number;
  /** COCO's AP per class; null for a class without ground truth. */
  cocoPerClass: (number | null)[];
}

/** COCO's IoU thresholds 0.50:0.05:0.95, computed as NumPy's linspace does. */
const COCO_IOUS = Array.from({ length: 10 }, (_, i) => 0.5 + (0.45 * i) / 9);

/** COCO's recall points 0:0.01:1. */
const COCO_RECALLS = Array.from({ length: 101 }, (_, i) => i / 100);

interface ImageEntry {
  gtLabels: ArrayLike<number>;
  detLabels: ArrayLike<number>;
  scores: ArrayLike<number>;
  /** Row-major [D, G]. */
  iou: ArrayLike<number>;
  gtCount: number;
}

function checkBoxesArg(name: string, boxes: unknown, count: number | null): number {
  const t = boxes as Tensor;
  if (
    t === null ||
    typeof t !== "object" ||
    !Array.isArray(t.shape) ||
    t.shape.length !== 2 ||
    t.shape[1] !== 4 ||
    (count !== null && t.shape[0] !== count)
  ) {
    const shown =
      t !== null && typeof t === "object" && Array.isArray(t.shape)
        ? `[${t.shape.join(", ")}]`
        : String(t);
    throw new Error(
      `meanAveragePrecision: ${name} must be a tensor [${count ?? "K"}, 4], got ${shown}`,
    );
  }
  return t.shape[0];
}

function checkVector(name: string, t: unknown, count: number): ArrayLike<number> {
  const v = t as Tensor;
  if (v === null || typeof v !== "object" || v.rank !== 1 || v.shape[0] !== count) {
    throw new Error(`meanAveragePrecision: ${name} must be a tensor [${count}]`);
  }
  return v.data;
}

function checkLabels(name: string, labels: ArrayLike<number>): void {
  for (let i = 0; i < labels.length; i++) {
    if (!Number.isInteger(labels[i]) || labels[i] < 0) {
      throw new Error(
        `meanAveragePrecision: ${name} must hold integer labels >= 0, got ${labels[i]}`,
      );
    }
  }
}

/** Which detections of one class (in the global score order) are true positives under one matching rule. */
function truePositives(
  order: { image: number; det: number }[],
  images: ImageEntry[],
  label: number,
  threshold: number,
  rule: "voc" | "coco",
): boolean[] {
  const taken = images.map((e) => new Uint8Array(e.gtCount));
  return order.map(({ image, det }) => {
    const e = images[image];
    let best = -1;
    if (rule === "voc") {
      // The devkit: the best-overlapping box of the class; a hit only above the threshold and if
      // that box is still free (a second detection of it is a false positive).
      let bestIou = -Infinity;
      for (let g = 0; g < e.gtCount; g++) {
        if (e.gtLabels[g] !== label) continue;
        const iou = e.iou[det * e.gtCount + g];
        if (iou > bestIou) {
          bestIou = iou;
          best = g;
        }
      }
      if (best < 0 || !(bestIou > threshold) || taken[image][best] === 1) return false;
    } else {
      // pycocotools: the best-overlapping box among those still free, at IoU >= the threshold.
      let bestIou = Math.min(threshold, 1 - 1e-10);
      for (let g = 0; g < e.gtCount; g++) {
        if (e.gtLabels[g] !== label || taken[image][g] === 1) continue;
        const iou = e.iou[det * e.gtCount + g];
        if (iou < bestIou) continue;
        bestIou = iou;
        best = g;
      }
      if (best < 0) return false;
    }
    taken[image][best] = 1;
    return true;
  });
}

/** Precision and recall after each detection, in score order. */
function precisionRecall(
  hits: boolean[],
  positives: number,
): { precision: number[]; recall: number[] } {
  const precision: number[] = [];
  const recall: number[] = [];
  let tp = 0;
  hits.forEach((hit, i) => {
    if (hit) tp++;
    precision.push(tp / (i + 1));
    recall.push(tp / positives);
  });
  return { precision, recall };
}

/** The precision envelope: at each point, the best precision at this recall or beyond. */
function envelope(precision: number[]): number[] {
  const out = [...precision];
  for (let i = out.length - 2; i >= 0; i--) out[i] = Math.max(out[i], out[i + 1]);
  return out;
}

/** VOC 2010+ all-point AP: the area under the precision envelope, summed where recall changes. */
function allPointAp(hits: boolean[], positives: number): number {
  const { precision, recall } = precisionRecall(hits, positives);
  const mrec = [0, ...recall, 1];
  const mpre = envelope([0, ...precision, 0]);
  let ap = 0;
  for (let i = 1; i < mrec.length; i++) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
  return ap;
}

/** COCO's AP: the mean of the envelope's precision at the first point reaching each of 101 recalls (0 past the last). */
function interpolatedAp(hits: boolean[], positives: number): number {
  const { precision, recall } = precisionRecall(hits, positives);
  const pr = envelope(precision);
  let total = 0;
  let i = 0;
  for (const r of COCO_RECALLS) {
    while (i < recall.length && recall[i] < r) i++;
    total += i < recall.length ? pr[i] : 0;
  }
  return total / COCO_RECALLS.length;
}

function mean(values: (number | null)[]): number {
  const present = values.filter((v): v is number => v !== null);
  return present.reduce((a, b) => a + b, 0) / present.length;
}

/**
 * Mean average precision of `detections` against `groundTruths` (one entry per image each).
 * `map` is PASCAL VOC's: detections of a class sorted by score (stable: ties keep image order,
 * then the order within an image), each matched to the ground-truth box of its class it overlaps
 * most, a true positive if that IoU exceeds `iouThreshold` and the box was not matched before;
 * AP is the area under the all-point precision envelope. `cocoMap` is pycocotools': per image and
 * class the `maxDetections` best detections, matched to the best still-unmatched box at IoU >= t,
 * AP from precision interpolated at 101 recall points, averaged over t = 0.50, 0.55, …, 0.95.
 * Classes without ground truth are reported as null and left out of both means.
 *
 * @example
 * const gt = [{ boxes: tensor([[0, 0, 10, 10]]), labels: tensor([0], { dtype: "int32" }) }];
 * const det = [{
 *   boxes: tensor([[0, 0, 10, 10], [20, 20, 30, 30]]),
 *   scores: tensor([0.9, 0.8]),
 *   labels: tensor([0, 0], { dtype: "int32" }),
 * }];
 * meanAveragePrecision(det, gt).map; // 1: the hit comes first, the miss costs no recall
 */
export function meanAveragePrecision(
  detections: readonly Detections[],
  groundTruths: readonly Annotation[],
  options: MapOptions = {},
): MapResult {
  const { iouThreshold = 0.5, maxDetections = 100 } = options;
  if (!Array.isArray(detections) || !Array.isArray(groundTruths)) {
    throw new Error(
      "meanAveragePrecision: detections and groundTruths must be arrays (one entry per image)",
    );
  }
  if (detections.length !== groundTruths.length) {
    throw new Error(
      `meanAveragePrecision: got detections for ${detections.length} images but ground truth for ${groundTruths.length}`,
    );
  }
  if (!(iouThreshold >= 0 && iouThreshold < 1)) {
    throw new Error(`meanAveragePrecision: iouThreshold must be in [0, 1), got ${iouThreshold}`);
  }
  if (!Number.isInteger(maxDetections) || maxDetections < 1) {
    throw new Error(
      `meanAveragePrecision: maxDetections must be an integer >= 1, got ${maxDetections}`,
    );
  }
  let numClasses = options.numClasses ?? 0;
  const images: ImageEntry[] = detections.map((d, i) => {
    const gtCount = checkBoxesArg(`groundTruths[${i}].boxes`, groundTruths[i]?.boxes, null);
    const gtLabels = checkVector(`groundTruths[${i}].labels`, groundTruths[i].labels, gtCount);
    const detCount = checkBoxesArg(`detections[${i}].boxes`, d?.boxes, null);
    const scores = checkVector(`detections[${i}].scores`, d.scores, detCount);
    const detLabels = checkVector(`detections[${i}].labels`, d.labels, detCount);
    checkLabels(`groundTruths[${i}].labels`, gtLabels);
    checkLabels(`detections[${i}].labels`, detLabels);
    for (let k = 0; k < detCount; k++) {
      if (!Number.isFinite(scores[k])) {
        throw new Error(
          `meanAveragePrecision: detections[${i}].scores[${k}] is ${scores[k]}, expected a finite score`,
        );
      }
    }
    if (options.numClasses === undefined) {
      for (const l of [...Array.from(gtLabels), ...Array.from(detLabels)])
        numClasses = Math.max(numClasses, l + 1);
    }
    const iou = detCount > 0 && gtCount > 0 ? boxIou(d.boxes, groundTruths[i].boxes).data : [];
    return { gtLabels, detLabels, scores, iou, gtCount };
  });
  for (const [i, e] of images.entries()) {
    for (const l of [...Array.from(e.gtLabels), ...Array.from(e.detLabels)]) {
      if (l >= numClasses) {
        throw new Error(
          `meanAveragePrecision: image ${i} has label ${l}, but numClasses is ${numClasses}`,
        );
      }
    }
  }
  const perClass: (number | null)[] = [];
  const cocoPerClass: (number | null)[] = [];
  for (let label = 0; label < numClasses; label++) {
    let positives = 0;
    const all: { image: number; det: number; score: number; rank: number }[] = [];
    images.forEach((e, image) => {
      for (let g = 0; g < e.gtCount; g++) if (e.gtLabels[g] === label) positives++;
      const mine: number[] = [];
      for (let k = 0; k < e.detLabels.length; k++) if (e.detLabels[k] === label) mine.push(k);
      // Rank within the image by score (stable), for COCO's per-image cap.
      mine.sort((a, b) => e.scores[b] - e.scores[a]);
      for (const [rank, det] of mine.entries())
        all.push({ image, det, score: e.scores[det], rank });
    });
    if (positives === 0) {
      perClass.push(null);
      cocoPerClass.push(null);
      continue;
    }
    // Array.prototype.sort is stable: ties keep image order, then within-image score order.
    all.sort((a, b) => b.score - a.score || a.image - b.image || a.rank - b.rank);
    perClass.push(allPointAp(truePositives(all, images, label, iouThreshold, "voc"), positives));
    const capped = all.filter((d) => d.rank < maxDetections);
    cocoPerClass.push(
      COCO_IOUS.reduce(
        (sum, t) =>
          sum + interpolatedAp(truePositives(capped, images, label, t, "coco"), positives),
        0,
      ) / COCO_IOUS.length,
    );
  }
  if (perClass.every((v) => v === null)) {
    throw new Error("meanAveragePrecision: there are no ground-truth boxes to evaluate against");
  }
  return { map: mean(perClass), perClass, cocoMap: mean(cocoPerClass), cocoPerClass };
}
