/** Poly-1 focal loss (PolyLoss, Leng et al. 2022): the focal loss plus one tuned polynomial term. */

import { add, mul, type Tensor } from "@focalgrad/core";
import {
  checkAlpha,
  checkExponent,
  checkFinite,
  checkLossOptions,
  checkReduction,
  focusingFactor,
  type Reduction,
  reduceLoss,
} from "./common.js";
import { logitsAndTargets, oneMinusPt, sigmoidFocalTerms } from "./sigmoidFocalLoss.js";

export interface Poly1FocalOptions {
  /** As `sigmoidFocalLoss`: weight of positives, negative to turn it off. Default 0.25. */
  alpha?: number;
  /** Focusing exponent, >= 0. Default 2. */
  gamma?: number;
  /** Coefficient of the extra term (the paper uses -1 for detection). Default 1. */
  epsilon?: number;
  /** `'none'` (default), `'mean'` over all elements, or `'sum'`. */
  reduction?: Reduction;
}

/**
 * Poly-1 focal loss (Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification
 * Loss Functions", ICLR 2022, sigmoid form): the focal loss's leading polynomial term
 * `(1 - p_t)^(gamma + 1)` gets an extra coefficient `epsilon`:
 *
 * ```
 * loss = FL(x, t) + epsilon · (1 - p_t)^(gamma + 1)
 * ```
 *
 * `FL` is exactly `sigmoidFocalLoss` with reduction 'none' (alpha-weighted, negative alpha off);
 * the polynomial term is not alpha-weighted, as in the paper's reference code. Logits of any
 * shape, targets of the same shape in [0, 1]; finite for logits of any magnitude.
 *
 * @example
 * poly1FocalLoss(tensor([1.5, -2.0]), tensor([1, 0]), { epsilon: -1, reduction: "mean" });
 */
export function poly1FocalLoss(
  logits: Tensor,
  targets: Tensor,
  options: Poly1FocalOptions = {},
): Tensor {
  const op = "poly1FocalLoss";
  checkLossOptions(op, options, ["alpha", "gamma", "epsilon", "reduction"]);
  const alpha = checkAlpha(op, options.alpha ?? 0.25, true);
  const gamma = checkExponent(op, "gamma", options.gamma ?? 2);
  const epsilon = checkFinite(op, "epsilon", options.epsilon ?? 1);
  const reduction = checkReduction(op, options.reduction ?? "none");
  const [x, t] = logitsAndTargets(op, logits, targets);
  const base = oneMinusPt(x, t);
  const focal = sigmoidFocalTerms(x, t, alpha, gamma, base);
  return reduceLoss(add(focal, mul(focusingFactor(base, gamma + 1), epsilon)), reduction);
}
