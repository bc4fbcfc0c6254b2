/** Varifocal loss (VarifocalNet, Zhang et al., CVPR 2021), as mmdetection's `varifocal_loss`. */

import {
  abs,
  bceWithLogits,
  greater,
  mul,
  sigmoid,
  sub,
  type Tensor,
  where,
} from "@focalgrad/core";
import {
  checkAlpha,
  checkExponent,
  checkLossOptions,
  checkReduction,
  focusingFactor,
  type Reduction,
  reduceLoss,
} from "./common.js";
import { logitsAndTargets } from "./sigmoidFocalLoss.js";

export interface VarifocalOptions {
  /** Weight of the negatives' focal term, in [0, 1]. Default 0.75 (the paper's). */
  alpha?: number;
  /** Focusing exponent for negatives, >= 0. Default 2. */
  gamma?: number;
  /** Weight positives by their target IoU `q` (default true) or by 1. */
  iouWeighted?: boolean;
  /** `'mean'` over all elements (default), `'sum'`, or `'none'`. */
  reduction?: Reduction;
}

/**
 * Varifocal loss (Zhang et al., "VarifocalNet: An IoU-aware Dense Object Detector", CVPR 2021,
 * eq. 2; mmdetection's `varifocal_loss`): logits of any shape, IoU-aware targets `q ∈ [0, 1]` of
 * the same shape (the IoU on the positive's class, 0 elsewhere). Positives are weighted by `q`
 * itself, only negatives are focused:
 *
 * ```
 * p = sigmoid(x)
 * w = q > 0 ? q (or 1 without iouWeighted) : alpha · |p - q|^gamma
 * loss = w · BCEWithLogits(x, q)          (= -q (q log p + (1 - q) log(1 - p)) for q > 0)
 * ```
 *
 * As in mmdetection the weight of a negative is differentiated through `p` (not detached), and the
 * target `q` is data: it is detached. Finite for logits of any magnitude.
 *
 * @example
 * const logits = tensor([[0.8, -2.5], [-1.0, -4.0]], { requiresGrad: true });
 * const iou = tensor([[0.7, 0], [0, 0]]);
 * varifocalLoss(logits, iou).backward();
 */
export function varifocalLoss(
  logits: Tensor,
  targets: Tensor,
  options: VarifocalOptions = {},
): Tensor {
  const op = "varifocalLoss";
  checkLossOptions(op, options, ["alpha", "gamma", "iouWeighted", "reduction"]);
  const alpha = checkAlpha(op, options.alpha ?? 0.75);
  const gamma = checkExponent(op, "gamma", options.gamma ?? 2);
  const iouWeighted = options.iouWeighted ?? true;
  const reduction = checkReduction(op, options.reduction ?? "mean");
  const [x, t] = logitsAndTargets(op, logits, targets);
  const q = t.detach();
  const negativeWeight = mul(focusingFactor(abs(sub(sigmoid(x), q)), gamma), alpha);
  const weight = where(greater(q, 0), iouWeighted ? q : 1, negativeWeight);
  return reduceLoss(mul(weight, bceWithLogits(x, q)), reduction);
}
