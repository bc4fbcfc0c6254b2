/** FL*, the focal loss variant of Lin et al.'s appendix A. */

import { add, cast, div, logSigmoid, mul, neg, sub, type Tensor } from "@focalgrad/core";
import {
  checkExponent,
  checkFinite,
  checkFloatArg,
  checkLossOptions,
  checkNumericArg,
  checkReduction,
  checkSameShape,
  type Reduction,
  reduceLoss,
} from "./common.js";

export interface FocalStarOptions {
  /** Sharpness, > 0 (the loss divides by it). Default 2. */
  gamma?: number;
  /** Shift. Default 1. */
  beta?: number;
  /** `'none'` (default), `'mean'` over all elements, or `'sum'`. */
  reduction?: Reduction;
}

/**
 * FL* (Lin et al., "Focal Loss for Dense Object Detection", appendix A): with `y = ±1` (target 1
 * or 0) and `x_t = y · x`,
 *
 * ```
 * p*_t = sigmoid(gamma · x_t + beta),   loss = -log(p*_t) / gamma = -logSigmoid(gamma · x_t + beta) / gamma
 * ```
 *
 * Like the focal loss it down-weights well-classified examples, through the logit instead of a
 * modulating factor. `logSigmoid` keeps it finite for any logit. Targets must be exactly 0 or 1
 * (same shape as the logits); `gamma` must be > 0. The appendix's defaults: gamma 2, beta 1.
 *
 * @example
 * focalStar(tensor([3.0, -0.5]), tensor([1, 0]), { gamma: 2, beta: 1 }); // elementwise
 */
export function focalStar(logits: Tensor, targets: Tensor, options: FocalStarOptions = {}): Tensor {
  const op = "focalStar";
  checkLossOptions(op, options, ["gamma", "beta", "reduction"]);
  const gamma = checkExponent(op, "gamma", options.gamma ?? 2, true);
  const beta = checkFinite(op, "beta", options.beta ?? 1);
  const reduction = checkReduction(op, options.reduction ?? "none");
  const x = checkFloatArg(op, "logits", logits, "logits");
  let t = checkNumericArg(op, "targets", targets);
  checkSameShape(op, ["logits", x], ["targets", t]);
  const data = t.read();
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0 && data[i] !== 1) {
      throw new Error(`${op}: targets must be 0 or 1, got ${data[i]} at flat index ${i}`);
    }
  }
  if (t.dtype !== x.dtype) t = cast(t, x.dtype);
  const xt = mul(x, sub(mul(t, 2), 1));
  return reduceLoss(div(neg(logSigmoid(add(mul(xt, gamma), beta))), gamma), reduction);
}
