/** Online hard example mining as a loss: binary cross-entropy over the hardest anchors of each image after NMS on the anchors, scored by their loss (Lin et al. 2017, §5.1). */

import {
  bceWithLogits,
  cast,
  div,
  expandDims,
  gather,
  gatherNd,
  nms,
  noGrad,
  notEqual,
  sum,
  type Tensor,
  tensor,
  where,
} from "@focalgrad/core";
import {
  checkBoxValues,
  checkFloatArg,
  checkLossOptions,
  checkRank,
  describeTensor,
} from "./common.js";
import { checkAnchorTargets } from "./targetLayout.js";

/** Options of `ohem`: the size of each image's minibatch, the NMS threshold and the 1:3 variant. */
export interface OhemOptions {
  /** Anchors kept per image: the hardest after NMS (the paper's OHEM batch size). Integer >= 1, default 128. */
  examplesPerImage?: number;
  /** IoU above which NMS over the anchor boxes (scored by loss) drops the easier anchor. In [0, 1], default 0.5. */
  iouThreshold?: number;
  /**
   * Negatives per positive in each image's minibatch: 3 is the SSD-style 1:3 variant. `null`
   * (the default) takes the hardest anchors whatever their kind.
   */
  negativesPerPositive?: number | null;
}

/** The per-image selection rule, checked once when the loss is made. */
interface Selection {
  examplesPerImage: number;
  iouThreshold: number;
  negativesPerPositive: number | null;
}

function checkOhemOptions(options: OhemOptions): Selection {
  checkLossOptions("ohem", options, ["examplesPerImage", "iouThreshold", "negativesPerPositive"]);
  const examplesPerImage = options.examplesPerImage ?? 128;
  if (!Number.isInteger(examplesPerImage) || examplesPerImage < 1) {
    throw new Error(
      `ohem: examplesPerImage must be an integer >= 1, got ${String(examplesPerImage)}`,
    );
  }
  const iouThreshold = options.iouThreshold ?? 0.5;
  if (typeof iouThreshold !== "number" || !(iouThreshold >= 0 && iouThreshold <= 1)) {
    throw new Error(`ohem: iouThreshold must be a number in [0, 1], got ${String(iouThreshold)}`);
  }
  const ratio = options.negativesPerPositive ?? null;
  if (ratio !== null) {
    if (typeof ratio !== "number" || !Number.isFinite(ratio) || !(ratio > 0)) {
      throw new Error(
        `ohem: negativesPerPositive must be a finite number > 0 or null, got ${String(ratio)}`,
      );
    }
    if (examplesPerImage < 1 + ratio) {
      throw new Error(
        `ohem: examplesPerImage (${examplesPerImage}) must be at least 1 + negativesPerPositive ` +
          `(${1 + ratio}), so that a minibatch holds a positive and its negatives`,
      );
    }
  }
  return { examplesPerImage, iouThreshold, negativesPerPositive: ratio };
}

/**
 * The anchors of one image that enter the loss: its anchors that are not ignored (`valid`, with
 * their states and losses), suppressed by NMS over their boxes with the loss as score, then the
 * hardest `examplesPerImage`; with a ratio r, the hardest min(P, ⌊E / (1 + r)⌋) positives and
 * the hardest ⌊r · that⌋ negatives. Returns anchor indices.
 */
function selectHardest(
  anchors: Tensor,
  valid: Int32Array,
  states: Float64Array,
  scores: Float64Array,
  rule: Selection,
  dtype: Tensor["dtype"],
): number[] {
  if (valid.length === 0) return [];
  const validIndices = tensor(valid, { dtype: "int32" });
  const kept = nms(
    gather(anchors, validIndices),
    tensor(scores, { dtype }),
    rule.iouThreshold,
  ).read();
  const { examplesPerImage: budget, negativesPerPositive: ratio } = rule;
  if (ratio === null) return Array.from(kept.subarray(0, budget), (k) => valid[k]);
  const positives: number[] = [];
  const negatives: number[] = [];
  for (const k of kept) (states[k] === 1 ? positives : negatives).push(valid[k]);
  const positiveCount = Math.min(positives.length, Math.floor(budget / (1 + ratio)));
  const negativeCount = Math.min(negatives.length, Math.floor(ratio * positiveCount));
  return [...positives.slice(0, positiveCount), ...negatives.slice(0, negativeCount)];
}

/**
 * Online hard example mining (OHEM) as a classification loss for one-stage detectors, as Lin et
 * al. ("Focal Loss for Dense Object Detection", ICCV 2017, §5.1 and Table 1d) compare it against
 * the focal loss: each anchor that is not ignored is scored by its loss, the binary cross-entropy
 * of its logits summed over the C classes; NMS over the anchor boxes (IoU `iouThreshold`, 0.5)
 * with that score drops anchors that overlap a harder one; and the hardest `examplesPerImage`
 * (128) that remain form the image's minibatch. With `negativesPerPositive: 3`, the SSD-style
 * variant, each image's minibatch instead holds its hardest min(P, ⌊128 / 4⌋) positives (P: object
 * anchors kept by NMS) and three times as many negatives (fewer if fewer remain): an image without
 * object anchors then contributes nothing, as in SSD.
 *
 * ```
 * ℓ(a)  = Σ_c BCEWithLogits(x[a, c], y[a, c])
 * loss  = Σ_{a ∈ S} ℓ(a) / max(1, |S|)     S: the selected anchors of every image in the batch
 * ```
 *
 * The normaliser is the number of selected examples, so the loss is the mean over the minibatch,
 * as OHEM averages over its hard minibatch (not the focal loss's count of object anchors).
 * `yTrue [B, N, C + 1]` is keras-retinanet's layout (labels in [0, 1], then the anchor state: -1
 * ignore, 0 background, 1 object), `logits [B, N, C]`, `anchors [N, 4]` (x1, y1, x2, y2, the
 * same for every image). Ignored anchors are never read, never selected and get an exact 0
 * gradient (their logits may even be NaN); a NaN logit elsewhere is an error (it has no rank).
 *
 * The selection is piecewise constant in the logits, so its derivative is 0 almost everywhere:
 * the gradient is that of the loss over the selected set held fixed, `(sigmoid(x) − y) / |S|` on
 * the selected anchors and exactly 0 on the others. Where two anchors tie in loss, NMS visits the
 * lower index first (`nms`'s order), and the gradient is that of the set so chosen (a one-sided
 * subgradient).
 *
 * @example
 * const anchors = tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]);
 * const yTrue = tensor([[[0, 0], [0, 0], [1, 1]]]);     // B = 1, N = 3, C = 1
 * const logits = tensor([[[1], [2], [0]]], { requiresGrad: true });
 * // anchor 1 is the hardest and suppresses anchor 0 (IoU 81 / 119); anchors 1 and 2 are kept
 * const loss = ohem({ examplesPerImage: 2 })(yTrue, logits, anchors);
 * loss.backward(); // logits.grad is 0 for anchor 0
 */
export function ohem(
  options: OhemOptions = {},
): (yTrue: Tensor, logits: Tensor, anchors: Tensor) => Tensor {
  const rule = checkOhemOptions(options);
  return (yTrue, logits, anchors) => {
    const { values, anchorState } = checkAnchorTargets("ohem", yTrue, logits, {
      predName: "logits",
      predWhat: "logits",
      labelsInUnitInterval: true,
    });
    const [batch, count] = logits.shape;
    checkFloatArg("ohem", "anchors", anchors, "anchor boxes");
    checkRank("ohem", "anchors", anchors, 2, "[anchors, 4] as x1, y1, x2, y2");
    if (anchors.shape[0] !== count || anchors.shape[1] !== 4) {
      throw new Error(
        `ohem: anchors must have shape [${count}, 4] (one box per anchor of logits), got ${describeTensor(anchors)}`,
      );
    }
    checkBoxValues("ohem", "anchors", anchors, true);
    const dtype = logits.dtype;
    const labels = values.dtype === dtype ? values : cast(values, dtype);

    // Scores, outside the graph: the selection takes no gradient. Ignored anchors' labels may
    // hold anything, so they are replaced before the loss reads them (their scores are unused).
    const keep = notEqual(anchorState, -1);
    const scores = noGrad(() =>
      sum(bceWithLogits(logits, where(expandDims(keep, -1), labels, 0)), { axis: -1 }),
    ).read();
    const state = anchorState.read();
    const selected: number[] = [];
    for (let b = 0; b < batch; b++) {
      const valid: number[] = [];
      for (let n = 0; n < count; n++) {
        const at = b * count + n;
        if (state[at] === -1) continue;
        if (Number.isNaN(scores[at])) {
          throw new Error(
            `ohem: the loss of anchor [${b}, ${n}] is NaN (its logits hold NaN), so it cannot be ranked`,
          );
        }
        valid.push(n);
      }
      const validStates = Float64Array.from(valid, (n) => state[b * count + n]);
      const validScores = Float64Array.from(valid, (n) => scores[b * count + n]);
      const chosen = selectHardest(
        anchors,
        Int32Array.from(valid),
        validStates,
        validScores,
        rule,
        dtype,
      );
      for (const n of chosen) selected.push(b, n);
    }

    const size = selected.length / 2;
    const indices = tensor(Int32Array.from(selected), { shape: [size, 2], dtype: "int32" });
    const perExample = bceWithLogits(gatherNd(logits, indices), gatherNd(labels, indices));
    return div(sum(perExample), tensor(Math.max(1, size), { dtype }));
  };
}
