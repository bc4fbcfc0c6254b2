/** torchvision's `sigmoid_focal_loss` on logits, with the NaN-free focusing factor. */

import { add, bceWithLogits, cast, mul, neg, sigmoid, sub, type Tensor } from "@focalgrad/core";
import {
  checkAlpha,
  checkExponent,
  checkFloatArg,
  checkLossOptions,
  checkNumericArg,
  checkReduction,
  checkSameShape,
  checkUnitInterval,
  focusingFactor,
  type Reduction,
  reduceLoss,
} from "./common.js";

export interface SigmoidFocalOptions {
  /** Weight of positives (`1 - alpha` for negatives); a negative value turns weighting off. Default 0.25. */
  alpha?: number;
  /** Focusing exponent, >= 0. Default 2. */
  gamma?: number;
  /** `'none'` (default, elementwise), `'mean'` over all elements, or `'sum'`. */
  reduction?: Reduction;
}

/** @internal Checked logits and targets (cast to the logits' dtype) of a sigmoid loss. */
export function logitsAndTargets(op: string, logits: unknown, targets: unknown): [Tensor, Tensor] {
  const x = checkFloatArg(op, "logits", logits, "logits");
  let t = checkNumericArg(op, "targets", targets);
  checkSameShape(op, ["logits", x], ["targets", t]);
  checkUnitInterval(op, "targets", t);
  if (t.dtype !== x.dtype) t = cast(t, x.dtype);
  return [x, t];
}

/**
 * @internal `1 - p_t = t · sigmoid(-x) + (1 - t) · sigmoid(x)`: torchvision's `1 - (p t + (1 - p)(1 - t))`
 * rearranged so that no `1 - p` cancels; exact for hard targets.
 */
export function oneMinusPt(x: Tensor, t: Tensor): Tensor {
  return add(mul(t, sigmoid(neg(x))), mul(sub(1, t), sigmoid(x)));
}

/** @internal `alpha_t · (1 - p_t)^gamma · BCE(x, t)` elementwise, alpha_t skipped when alpha < 0. */
export function sigmoidFocalTerms(
  x: Tensor,
  t: Tensor,
  alpha: number,
  gamma: number,
  base: Tensor,
): Tensor {
  const loss = mul(bceWithLogits(x, t), focusingFactor(base, gamma));
  if (alpha < 0) return loss;
  return mul(add(mul(t, alpha), mul(sub(1, t), 1 - alpha)), loss);
}

/**
 * torchvision's `sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction)` (RetinaNet, Lin et
 * al. 2017), elementwise on logits of any shape, targets of the same shape in [0, 1] (soft targets
 * allowed):
 *
 * ```
 * p = sigmoid(x),  1 - p_t = t · (1 - p) + (1 - t) · p
 * loss = alpha_t · (1 - p_t)^gamma · BCEWithLogits(x, t),   alpha_t = t · alpha + (1 - t)(1 - alpha)
 * ```
 *
 * `alpha < 0` turns the alpha weighting off (torchvision's convention). `1 - p_t` is computed as
 * `t · sigmoid(-x) + (1 - t) · sigmoid(x)` and the cross-entropy in the stable logit form, so the loss
 * and its gradient are finite for logits of any magnitude; where a saturated logit makes `1 - p_t`
 * exactly 0 the focusing factor's gradient is taken as its limit, 0 (torchvision gives NaN there
 * for 0 < gamma < 1). A NaN logit propagates. `'mean'` of an empty tensor is NaN, as in PyTorch.
 *
 * @example
 * const logits = tensor([[2.0, -1.0], [0.5, -3.0]], { requiresGrad: true });
 * const targets = tensor([[1, 0], [0, 0]]);
 * sigmoidFocalLoss(logits, targets, { reduction: "sum" }).backward();
 */
export function sigmoidFocalLoss(
  logits: Tensor,
  targets: Tensor,
  options: SigmoidFocalOptions = {},
): Tensor {
  const op = "sigmoidFocalLoss";
  checkLossOptions(op, options, ["alpha", "gamma", "reduction"]);
  const alpha = checkAlpha(op, options.alpha ?? 0.25, true);
  const gamma = checkExponent(op, "gamma", options.gamma ?? 2);
  const reduction = checkReduction(op, options.reduction ?? "none");
  const [x, t] = logitsAndTargets(op, logits, targets);
  return reduceLoss(sigmoidFocalTerms(x, t, alpha, gamma, oneMinusPt(x, t)), reduction);
}
