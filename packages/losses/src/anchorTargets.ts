/** Training targets in keras-retinanet's layout: each anchor matched to a ground-truth box by IoU. */

import {
  boxIou,
  cast,
  concat,
  gather,
  isFloat,
  noGrad,
  type Tensor,
  tensor,
  tile,
} from "@focalgrad/core";
import { type BoxCoder, cornerBoxCoder } from "./boxCoder.js";
import { checkBoxValues, checkLossOptions, checkTensorArg, describeTensor } from "./common.js";

/** The ground truth of one image: `boxes [K, 4]` (x1, y1, x2, y2, pixels) and int32 `labels [K]`. */
export interface Annotation {
  /** The boxes, `[K, 4]` corners (x1, y1, x2, y2) in pixels. */
  boxes: Tensor;
  /** int32 class indices `[K]`, one per box. */
  labels: Tensor;
}

/** `[height, width]` of an image. */
export type ImageShape = readonly [number, number];

/** Options of the anchor matching: classes, IoU thresholds and the box coder. */
export interface AnchorTargetOptions {
  /** Number of classes C; labels lie in [0, C). */
  numClasses: number;
  /** An anchor whose best IoU is >= this is an object (state 1). Default 0.5. */
  positiveOverlap?: number;
  /** An anchor whose best IoU is > this (and below positiveOverlap) is ignored (state -1). Default 0.4. */
  negativeOverlap?: number;
  /**
   * `[height, width]` of the images, or one per image: anchors whose centre lies at or beyond the
   * right or bottom edge are ignored, as keras-retinanet does. `null` ignores no anchor for its
   * position (torchvision has no such rule).
   */
  imageShape: ImageShape | readonly ImageShape[] | null;
  /** Also make each box's best anchors (all tied at its highest IoU) objects, as torchvision's matcher does. Default false. */
  lowQualityMatches?: boolean;
  /** Encodes the regression targets. Default `cornerBoxCoder()` (keras-retinanet's). */
  boxCoder?: BoxCoder;
  /** dtype of the targets. Default "float32" (Keras' floatx). */
  dtype?: "float32" | "float64";
}

/** Targets for `focal` (and its family) and for `smoothL1`, each with the anchor state last. */
export interface AnchorTargets {
  /** `[B, N, C + 1]`: one-hot class of the matched box for object anchors, then the state. */
  labels: Tensor;
  /** `[B, N, 4 + 1]`: the coder's targets for the anchor's best box, then the state. */
  regression: Tensor;
}

const op = "anchorTargets";

function checkOverlap(name: string, value: unknown): number {
  if (typeof value !== "number" || !(value >= 0 && value <= 1)) {
    throw new Error(`${op}: ${name} must be a number in [0, 1], got ${String(value)}`);
  }
  return value;
}

function checkImageShape(value: unknown, where: string): ImageShape {
  const ok =
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((v) => typeof v === "number" && Number.isFinite(v) && v > 0);
  if (!ok) {
    throw new Error(
      `${op}: ${where} must be [height, width], two finite numbers > 0, got ${JSON.stringify(value)}`,
    );
  }
  return value as unknown as ImageShape;
}

/** One `[height, width]` per image, or null for no centre rule. */
function imageShapes(value: unknown, batch: number): (ImageShape | null)[] {
  if (value === null) return new Array<null>(batch).fill(null);
  if (Array.isArray(value) && value.length > 0 && Array.isArray(value[0])) {
    if (value.length !== batch) {
      throw new Error(
        `${op}: imageShape must be one [height, width] or one per image (${batch}), got ${value.length} shapes`,
      );
    }
    return value.map((s, i) => checkImageShape(s, `imageShape[${i}]`));
  }
  if (value === undefined) {
    throw new Error(
      `${op}: options.imageShape is required: [height, width] of the images, one per image, or null ` +
        "(no anchor ignored for lying outside the image)",
    );
  }
  const shape = checkImageShape(value, "imageShape");
  return new Array<ImageShape>(batch).fill(shape);
}

/** Checks one image's annotation; returns its box count. */
function checkAnnotation(annotation: unknown, image: number, numClasses: number): number {
  const where = `annotations[${image}]`;
  if (annotation === null || typeof annotation !== "object") {
    throw new Error(
      `${op}: ${where} must be an object { boxes, labels }, got ${annotation === null ? "null" : typeof annotation}`,
    );
  }
  const { boxes, labels } = annotation as Annotation;
  checkTensorArg(op, `${where}.boxes`, boxes);
  checkTensorArg(op, `${where}.labels`, labels);
  if (!isFloat(boxes.dtype) || boxes.rank !== 2 || boxes.shape[1] !== 4) {
    throw new Error(
      `${op}: ${where}.boxes must be a float32 or float64 tensor of shape [K, 4] (x1, y1, x2, y2), ` +
        `got ${describeTensor(boxes)}`,
    );
  }
  if (labels.dtype !== "int32" || labels.rank !== 1) {
    throw new Error(
      `${op}: ${where}.labels must be an int32 tensor of shape [K], got ${describeTensor(labels)}`,
    );
  }
  const count = boxes.shape[0];
  if (labels.shape[0] !== count) {
    throw new Error(`${op}: ${where} has ${count} boxes but ${labels.shape[0]} labels`);
  }
  checkBoxValues(op, `${where}.boxes`, boxes, true);
  const labelData = labels.read();
  for (let k = 0; k < count; k++) {
    const label = labelData[k];
    if (!(label >= 0 && label < numClasses)) {
      throw new Error(
        `${op}: ${where}.labels[${k}] must lie in [0, ${numClasses}) (numClasses ${numClasses}), got ${label}`,
      );
    }
  }
  return count;
}

/**
 * keras-retinanet's `anchor_targets_bbox` (with `compute_gt_annotations`): for a batch of images
 * sharing the anchors `[N, 4]`, one annotation per image, the targets `labels [B, N, C + 1]` of
 * the classification losses (`focal`, `focalFromLogits`, `retinanetFocal`) and `regression
 * [B, N, 5]` of `smoothL1`. The last column of both is the anchor state:
 *
 * - each anchor is matched to the box of highest IoU (the first such box on ties);
 * - **1 (object)** if that IoU >= `positiveOverlap`: its label row is the one-hot class of the box;
 * - **-1 (ignored)** if `negativeOverlap` < IoU < `positiveOverlap`; an IoU of exactly
 *   `negativeOverlap` is background, as in keras-retinanet (torchvision's matcher ignores it);
 * - **0 (background)** otherwise, and for every anchor of an image without boxes;
 * - with `lowQualityMatches`, every anchor tied at a box's highest IoU becomes an object too,
 *   labelled (as in torchvision) with its own best box; a box that overlaps no anchor at all
 *   makes no anchor an object (torchvision's matcher would make every anchor one);
 * - last, anchors whose centre has x >= width or y >= height of the image become -1.
 *
 * The regression targets are `boxCoder.encode(anchors, best box)` for every anchor (zero in an
 * image without boxes), computed in float64 and rounded once to `dtype`. IoUs are computed in
 * float64 by core's `boxIou`. The losses read only what they need: labels and regression of
 * ignored anchors are left as they are (an object anchor outside the image keeps its one-hot row).
 * These are data, not differentiated: they are built with plain loops.
 *
 * @example
 * const anchors = anchorsFor([64, 64], { levels: [3, 4, 5] });
 * const { labels, regression } = anchorTargets(
 *   anchors,
 *   [{ boxes: tensor([[8, 8, 40, 40]]), labels: tensor([1], { dtype: "int32" }) }],
 *   { numClasses: 3, imageShape: [64, 64] },
 * );
 * labels.shape;     // [1, 756, 4]
 * regression.shape; // [1, 756, 5]
 * // with a head's classification [1, 756, 3] (sigmoid outputs) and box deltas [1, 756, 4]:
 * const loss = add(focal()(labels, classification), smoothL1()(regression, boxDeltas));
 */
export function anchorTargets(
  anchors: Tensor,
  annotations: readonly Annotation[],
  options: AnchorTargetOptions,
): AnchorTargets {
  // Targets are data: boxes that happen to require a gradient must not grow a graph here.
  return noGrad(() => buildTargets(anchors, annotations, options));
}

function buildTargets(
  anchors: Tensor,
  annotations: readonly Annotation[],
  options: AnchorTargetOptions,
): AnchorTargets {
  checkTensorArg(op, "anchors", anchors);
  if (!isFloat(anchors.dtype) || anchors.rank !== 2 || anchors.shape[1] !== 4) {
    throw new Error(
      `${op}: anchors must be a float32 or float64 tensor of shape [N, 4] (x1, y1, x2, y2), got ${describeTensor(anchors)}`,
    );
  }
  if (!Array.isArray(annotations)) {
    throw new Error(
      `${op}: annotations must be an array with one { boxes, labels } per image, got ${typeof annotations}`,
    );
  }
  if (options === null || typeof options !== "object") {
    throw new Error(
      `${op}: options must be an object with numClasses and imageShape, got ${String(options)}`,
    );
  }
  checkLossOptions(op, options, [
    "numClasses",
    "positiveOverlap",
    "negativeOverlap",
    "imageShape",
    "lowQualityMatches",
    "boxCoder",
    "dtype",
  ]);
  const numClasses = options.numClasses;
  if (typeof numClasses !== "number" || !Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`${op}: numClasses must be an integer >= 1, got ${String(numClasses)}`);
  }
  const positiveOverlap = checkOverlap("positiveOverlap", options.positiveOverlap ?? 0.5);
  const negativeOverlap = checkOverlap("negativeOverlap", options.negativeOverlap ?? 0.4);
  if (negativeOverlap > positiveOverlap) {
    throw new Error(
      `${op}: negativeOverlap (${negativeOverlap}) must not exceed positiveOverlap (${positiveOverlap})`,
    );
  }
  const lowQualityMatches = options.lowQualityMatches ?? false;
  if (typeof lowQualityMatches !== "boolean") {
    throw new Error(`${op}: lowQualityMatches must be a boolean, got ${String(lowQualityMatches)}`);
  }
  const coder = options.boxCoder ?? cornerBoxCoder();
  if (coder === null || typeof coder !== "object" || typeof coder.encode !== "function") {
    throw new Error(
      `${op}: boxCoder must be a BoxCoder (an object with encode and decode), got ${String(coder)}`,
    );
  }
  const dtype = options.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") {
    throw new Error(`${op}: dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);
  }
  const batch = annotations.length;
  const shapes = imageShapes(options.imageShape, batch);
  const counts = annotations.map((a, i) => checkAnnotation(a, i, numClasses));

  const n = anchors.shape[0];
  checkBoxValues(op, "anchors", anchors, true);
  const anchorData = anchors.read();
  const anchors64 = anchors.dtype === "float64" ? anchors : cast(anchors, "float64");
  const labelColumns = numClasses + 1;
  const allocate = (size: number) =>
    dtype === "float32" ? new Float32Array(size) : new Float64Array(size);
  const labels = allocate(batch * n * labelColumns);
  const regression = allocate(batch * n * 5);

  // One IoU matrix against every image's boxes side by side, and one encode of every image's
  // matches: a handful of core ops per batch, not per image.
  const offsets = counts.map((_, i) => counts.slice(0, i).reduce((a, c) => a + c, 0));
  const total = counts.reduce((a, c) => a + c, 0);
  const withBoxes = annotations.flatMap((a, i) => (counts[i] > 0 ? [a] : []));
  const allBoxes64 =
    total === 0
      ? null
      : concat(
          withBoxes.map((a) => cast(a.boxes, "float64")),
          0,
        );
  const iou = allBoxes64 === null ? new Float64Array(0) : boxIou(anchors64, allBoxes64).read(); // [N, total]
  const best = new Int32Array(batch * n); // index into allBoxes64
  const states = new Int8Array(batch * n);
  for (let image = 0; image < batch; image++) {
    const count = counts[image];
    if (count === 0) continue;
    const first = offsets[image];
    const base = image * n;
    for (let a = 0; a < n; a++) {
      const row = a * total + first;
      let k = 0;
      for (let j = 1; j < count; j++) if (iou[row + j] > iou[row + k]) k = j;
      best[base + a] = first + k;
      const overlap = iou[row + k];
      states[base + a] = overlap >= positiveOverlap ? 1 : overlap > negativeOverlap ? -1 : 0;
    }
    if (lowQualityMatches) {
      for (let j = first; j < first + count; j++) {
        let highest = 0;
        for (let a = 0; a < n; a++) highest = Math.max(highest, iou[a * total + j]);
        if (highest === 0) continue;
        for (let a = 0; a < n; a++) if (iou[a * total + j] === highest) states[base + a] = 1;
      }
    }
  }
  if (allBoxes64 !== null) {
    const classOf = concat(
      withBoxes.map((a) => a.labels),
      0,
    ).read();
    const matched = gather(allBoxes64, tensor(best, { dtype: "int32" }), 0);
    const encoded = coder.encode(tile(anchors64, [batch, 1]), matched);
    if (encoded.rank !== 2 || encoded.shape[0] !== batch * n || encoded.shape[1] !== 4) {
      throw new Error(
        `${op}: boxCoder.encode must return [N, 4] = [${batch * n}, 4] for anchors [${batch * n}, 4], got ${describeTensor(encoded)}`,
      );
    }
    const targets = encoded.read();
    for (let image = 0; image < batch; image++) {
      if (counts[image] === 0) continue;
      for (let a = 0; a < n; a++) {
        const i = image * n + a;
        const row = i * 5;
        for (let c = 0; c < 4; c++) regression[row + c] = targets[i * 4 + c];
        regression[row + 4] = states[i];
        const labelRow = i * labelColumns;
        labels[labelRow + numClasses] = states[i];
        if (states[i] === 1) labels[labelRow + classOf[best[i]]] = 1;
      }
    }
  }
  for (let image = 0; image < batch; image++) {
    const shape = shapes[image];
    if (shape === null) continue;
    const [height, width] = shape;
    const labelBase = image * n * labelColumns;
    const regressionBase = image * n * 5;
    for (let a = 0; a < n; a++) {
      const cx = (anchorData[4 * a] + anchorData[4 * a + 2]) / 2;
      const cy = (anchorData[4 * a + 1] + anchorData[4 * a + 3]) / 2;
      if (cx >= width || cy >= height) {
        labels[labelBase + a * labelColumns + numClasses] = -1;
        regression[regressionBase + a * 5 + 4] = -1;
      }
    }
  }
  return {
    labels: tensor(labels, { shape: [batch, n, labelColumns], dtype }),
    regression: tensor(regression, { shape: [batch, n, 5], dtype }),
  };
}
