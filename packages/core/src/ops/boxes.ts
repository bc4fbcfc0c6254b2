/**
 * Box ops with torchvision's semantics, boxes as rows of x1, y1, x2, y2 in pixels: areas, pairwise
 * IoU and generalised IoU (differentiable, composed of core ops), clipping, and non-maximum
 * suppression (plain kernels, no gradient).
 */

import { suppress } from "../kernels/boxes.js";
import { stableOrder } from "../kernels/sort.js";
import { formatShape } from "../shape.js";
import { Tensor } from "../tensor.js";
import { add, div, maximum, minimum, mul, sub } from "./arithmetic.js";
import { greater } from "./compare.js";
import { clip } from "./math.js";
import { where } from "./selection.js";
import { concat, reshape, slice } from "./shape.js";
import { checkFloat, checkInt32, describe } from "./util.js";

/**
 * Checks that `boxes` is a float tensor of shape [N, 4] (or [..., 4] with `leading`) whose boxes
 * have finite coordinates with x1 <= x2 and y1 <= y2. Reads the values.
 */
function checkBoxes(op: string, name: string, boxes: Tensor, leading = false): void {
  checkFloat(op, name, boxes);
  const ok = leading ? boxes.rank >= 1 : boxes.rank === 2;
  if (!ok || boxes.shape[boxes.rank - 1] !== 4) {
    throw new Error(
      `${op}: ${name} must have shape ${leading ? "[..., 4]" : "[N, 4]"} (x1, y1, x2, y2 per box), got ${describe(boxes)}`,
    );
  }
  const d = boxes.read();
  for (let i = 0; i < d.length; i += 4) {
    const finite =
      Number.isFinite(d[i]) &&
      Number.isFinite(d[i + 1]) &&
      Number.isFinite(d[i + 2]) &&
      Number.isFinite(d[i + 3]);
    if (finite && d[i] <= d[i + 2] && d[i + 1] <= d[i + 3]) continue;
    const problem = !finite
      ? "has a non-finite coordinate"
      : d[i + 2] < d[i]
        ? "has x2 < x1"
        : "has y2 < y1";
    throw new Error(
      `${op}: box ${i / 4} of ${name} (${formatShape(boxes.shape)}), [${d.subarray(i, i + 4).join(", ")}], ${problem}; ` +
        "expected finite pixel coordinates x1, y1, x2, y2 with x1 <= x2 and y1 <= y2",
    );
  }
}

/** The four coordinate columns of boxes [N, 4], each [N, 1]. */
function corners(boxes: Tensor): [Tensor, Tensor, Tensor, Tensor] {
  const n = boxes.shape[0];
  const column = (k: number) => slice(boxes, [0, k], [n, 1]);
  return [column(0), column(1), column(2), column(3)];
}

/** `num / den`, and 0 where `den` is 0 (where num is 0 too); the gradient there is 0, not NaN. */
function ratio(num: Tensor, den: Tensor): Tensor {
  const positive = greater(den, 0);
  return where(positive, div(num, where(positive, den, 1)), 0);
}

function areaOf(x1: Tensor, y1: Tensor, x2: Tensor, y2: Tensor): Tensor {
  return mul(sub(x2, x1), sub(y2, y1));
}

/**
 * The area (x2 − x1) · (y2 − y1) of each box of `boxes` [N, 4], as [N] (torchvision's `box_area`).
 * Differentiable.
 *
 * @example
 * boxArea(tensor([[0, 0, 2, 3], [1, 1, 1, 5]])); // [6, 0]
 */
export function boxArea(boxes: Tensor): Tensor {
  checkBoxes("boxArea", "boxes", boxes);
  return reshape(areaOf(...corners(boxes)), [boxes.shape[0]]);
}

/** What IoU and generalised IoU share: the pairwise corners, intersection and union, [N, M]. */
function overlaps(op: string, a: Tensor, b: Tensor) {
  checkBoxes(op, "a", a);
  checkBoxes(op, "b", b);
  const m = b.shape[0];
  const [ax1, ay1, ax2, ay2] = corners(a);
  const [bx1, by1, bx2, by2] = corners(b).map((c) => reshape(c, [1, m]));
  // clamp(min = 0) as torchvision: boxes apart have no intersection. The gradient passes at 0.
  const w = clip(sub(minimum(ax2, bx2), maximum(ax1, bx1)), 0, Infinity);
  const h = clip(sub(minimum(ay2, by2), maximum(ay1, by1)), 0, Infinity);
  const inter = mul(w, h);
  const union = sub(add(areaOf(ax1, ay1, ax2, ay2), areaOf(bx1, by1, bx2, by2)), inter);
  return { a: [ax1, ay1, ax2, ay2], b: [bx1, by1, bx2, by2], inter, union };
}

/**
 * The intersection over union of every box of `a` [N, 4] with every box of `b` [M, 4], as [N, M]
 * (torchvision's `box_iou`): area(a ∩ b) / (area(a) + area(b) − area(a ∩ b)). Differentiable,
 * composed of core ops; where two boxes only touch, the gradient is that of `clamp(min = 0)`
 * (it passes at 0), and tied edges share the gradient of `maximum`/`minimum` evenly. Two empty
 * boxes (union 0) have IoU 0, where torchvision gives 0/0 = NaN.
 *
 * @example
 * // Overlap [1, 0, 2, 2] of area 2; union 4 + 4 − 2 = 6.
 * boxIou(tensor([[0, 0, 2, 2]]), tensor([[1, 0, 3, 2]])); // [[0.3333]]
 */
export function boxIou(a: Tensor, b: Tensor): Tensor {
  const { inter, union } = overlaps("boxIou", a, b);
  return ratio(inter, union);
}

/**
 * Generalised IoU (Rezatofighi et al., 2019) of every box of `a` [N, 4] with every box of `b`
 * [M, 4], as [N, M] (torchvision's `generalized_box_iou`): IoU − (area(C) − union) / area(C), C the
 * smallest box enclosing both; in [−1, 1], and informative (non-zero gradient) also for boxes that
 * do not overlap, which makes 1 − GIoU a box regression loss. Differentiable. Where area(C) is 0
 * (two empty boxes on one line) both terms are taken as 0, where torchvision gives NaN.
 *
 * @example
 * // Apart: IoU 0, union 2, enclosing box [0, 0, 3, 1] of area 3, so 0 − (3 − 2) / 3.
 * generalizedBoxIou(tensor([[0, 0, 1, 1]]), tensor([[2, 0, 3, 1]])); // [[-0.3333]]
 */
export function generalizedBoxIou(a: Tensor, b: Tensor): Tensor {
  const { a: ca, b: cb, inter, union } = overlaps("generalizedBoxIou", a, b);
  const [ax1, ay1, ax2, ay2] = ca;
  const [bx1, by1, bx2, by2] = cb;
  // Valid boxes make the enclosing box's sides >= 0 already: no clamp is needed (torchvision's is
  // a no-op there too).
  const hull = areaOf(minimum(ax1, bx1), minimum(ay1, by1), maximum(ax2, bx2), maximum(ay2, by2));
  return sub(ratio(inter, union), ratio(sub(hull, union), hull));
}

/**
 * `boxes` [..., 4] clipped to an image of `[height, width]`: x1 and x2 into [0, width], y1 and y2
 * into [0, height] (torchvision's `clip_boxes_to_image`). Differentiable: the gradient passes
 * inside the image and at its border, and is 0 for a coordinate clipped away (as `clamp`).
 *
 * @example
 * clipBoxes(tensor([[-5, 10, 30, 70]]), [64, 20]); // [[0, 10, 20, 64]]
 */
export function clipBoxes(boxes: Tensor, imageShape: readonly [number, number]): Tensor {
  checkBoxes("clipBoxes", "boxes", boxes, true);
  if (
    !Array.isArray(imageShape) ||
    imageShape.length !== 2 ||
    !imageShape.every((d) => typeof d === "number" && Number.isFinite(d) && d >= 0)
  ) {
    throw new Error(
      `clipBoxes: imageShape must be [height, width] with finite sizes >= 0, got ${JSON.stringify(imageShape)}`,
    );
  }
  const [height, width] = imageShape;
  const begin = boxes.shape.map(() => 0);
  const size = boxes.shape.map((d, i) => (i === boxes.rank - 1 ? 1 : d));
  const columns = [width, height, width, height].map((limit, k) => {
    begin[boxes.rank - 1] = k;
    return clip(slice(boxes, begin, size), 0, limit);
  });
  return concat(columns, boxes.rank - 1);
}

function checkIouThreshold(op: string, iouThreshold: number): void {
  if (typeof iouThreshold !== "number" || !(iouThreshold >= 0 && iouThreshold <= 1)) {
    throw new Error(`${op}: iouThreshold must be a number in [0, 1], got ${iouThreshold}`);
  }
}

/** Checks scores [N] for boxes [N, 4] and returns the box order by decreasing score, ties by index. */
function orderByScore(op: string, boxes: Tensor, scores: Tensor): Int32Array {
  checkFloat(op, "scores", scores);
  const n = boxes.shape[0];
  if (scores.rank !== 1 || scores.shape[0] !== n) {
    throw new Error(
      `${op}: scores must have shape [${n}] (one per box of boxes ${formatShape(boxes.shape)}), got ${describe(scores)}`,
    );
  }
  const s = scores.read();
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(s[i])) {
      throw new Error(`${op}: scores[${i}] is NaN; every box needs a score to be ranked by`);
    }
  }
  const order = new Int32Array(n);
  stableOrder(s, 0, 1, n, true, order, new Float64Array(n));
  return order;
}

/**
 * Non-maximum suppression (torchvision's `nms`): visits the boxes by decreasing score and drops
 * every box whose IoU with an already kept box is greater than `iouThreshold` (a box exactly at
 * the threshold is kept). Returns the int32 indices of the kept boxes, by decreasing score.
 *
 * Equal scores are visited in index order, the lower index first, as current torchvision does
 * (it sorts the scores stably; releases before that used an unstable sort, whose order among ties
 * was unspecified). The IoU is computed in the boxes' own precision, as torchvision does, so
 * float32 boxes exactly at the threshold are decided the same.
 * NaN scores and malformed boxes are errors. No gradient.
 *
 * @example
 * const boxes = tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]);
 * nms(boxes, tensor([0.9, 0.8, 0.7]), 0.5); // [0, 2]: box 1 overlaps box 0 with IoU 81 / 119
 */
export function nms(boxes: Tensor, scores: Tensor, iouThreshold: number): Tensor {
  checkBoxes("nms", "boxes", boxes);
  const order = orderByScore("nms", boxes, scores);
  checkIouThreshold("nms", iouThreshold);
  const kept = suppress(boxes.read(), order, null, iouThreshold, boxes.dtype === "float32");
  return new Tensor(kept, [kept.length], "int32");
}

/**
 * Non-maximum suppression within each class (torchvision's `batched_nms`): boxes of different
 * `classes` (int32 [N]) never suppress each other. Returns the int32 indices of the kept boxes, by
 * decreasing score (ties by index), as `nms`. The same result as torchvision's offset trick
 * (shifting each class's boxes apart) without its loss of precision on large coordinates.
 *
 * @example
 * const boxes = tensor([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11]]);
 * const classes = tensor([0, 0, 1], { dtype: "int32" });
 * batchedNms(boxes, tensor([0.9, 0.8, 0.7]), classes, 0.5); // [0, 2]
 */
export function batchedNms(
  boxes: Tensor,
  scores: Tensor,
  classes: Tensor,
  iouThreshold: number,
): Tensor {
  checkBoxes("batchedNms", "boxes", boxes);
  const order = orderByScore("batchedNms", boxes, scores);
  checkInt32("batchedNms", "classes", classes);
  if (classes.rank !== 1 || classes.shape[0] !== boxes.shape[0]) {
    throw new Error(
      `batchedNms: classes must have shape [${boxes.shape[0]}] (one per box of boxes ${formatShape(boxes.shape)}), got ${describe(classes)}`,
    );
  }
  checkIouThreshold("batchedNms", iouThreshold);
  const kept = suppress(
    boxes.read(),
    order,
    classes.read() as Int32Array,
    iouThreshold,
    boxes.dtype === "float32",
  );
  return new Tensor(kept, [kept.length], "int32");
}
