/** The multi-class focal loss on softmax probabilities, with integer class targets. */

import { exp, gatherNd, logSoftmax, mul, neg, sub, type Tensor, tensor } from "@focalgrad/core";
import {
  checkAlpha,
  checkExponent,
  checkFloatArg,
  checkLossOptions,
  checkReduction,
  checkTensorArg,
  describeTensor,
  focusingFactor,
  type Reduction,
  reduceLoss,
} from "./common.js";

export interface SoftmaxFocalOptions {
  /** Overall weight in [0, 1]. Default 0.25. */
  alpha?: number;
  /** Focusing exponent, >= 0. Default 2. */
  gamma?: number;
  /** `'mean'` over the N rows (default), `'sum'`, or `'none'` (shape [N]). */
  reduction?: Reduction;
}

/**
 * The softmax form of the focal loss (Lin et al. 2017, §3; the multi-class loss of `spec/FOCAL.md`):
 * `logits [N, K]`, `targets` int32 `[N]` with class indices in [0, K):
 *
 * ```
 * log p = logSoftmax(logits)   (max-shifted),   p_t = p[n, targets[n]]
 * loss_n = -alpha · (1 - p_t)^gamma · log p_t
 * ```
 *
 * reduced by `reduction` (default the mean over N, so N = 0 gives NaN as in PyTorch). A scalar
 * alpha, as in the spec. Finite for logits of any magnitude; where `p_t` rounds to exactly 1 the
 * focusing factor's gradient is taken as its limit, 0.
 *
 * @example
 * const logits = tensor([[2, 0, -1], [0.1, 0.2, 3]], { requiresGrad: true });
 * const targets = tensor([0, 2], { dtype: "int32" });
 * softmaxFocalLoss(logits, targets).backward();
 */
export function softmaxFocalLoss(
  logits: Tensor,
  targets: Tensor,
  options: SoftmaxFocalOptions = {},
): Tensor {
  const op = "softmaxFocalLoss";
  checkLossOptions(op, options, ["alpha", "gamma", "reduction"]);
  const alpha = checkAlpha(op, options.alpha ?? 0.25);
  const gamma = checkExponent(op, "gamma", options.gamma ?? 2);
  const reduction = checkReduction(op, options.reduction ?? "mean");
  const x = checkFloatArg(op, "logits", logits, "logits");
  checkTensorArg(op, "targets", targets);
  if (x.rank !== 2 || x.shape[1] < 1) {
    throw new Error(
      `${op}: logits must have shape [N, K] with K >= 1 classes, got [${x.shape.join(", ")}]`,
    );
  }
  const [rows, classes] = x.shape;
  if (targets.dtype !== "int32" || targets.rank !== 1 || targets.shape[0] !== rows) {
    throw new Error(
      `${op}: targets must be an int32 tensor of shape [${rows}] (one class index per row of logits), ` +
        `got ${describeTensor(targets)}`,
    );
  }
  const classIndex = targets.read();
  const pairs = new Int32Array(2 * rows);
  for (let n = 0; n < rows; n++) {
    const k = classIndex[n];
    if (!(k >= 0 && k < classes)) {
      throw new Error(
        `${op}: targets must be class indices in [0, ${classes - 1}], got ${k} at row ${n}`,
      );
    }
    pairs[2 * n] = n;
    pairs[2 * n + 1] = k;
  }
  const logPt = gatherNd(logSoftmax(x, -1), tensor(pairs, { shape: [rows, 2], dtype: "int32" }));
  const focus = focusingFactor(sub(1, exp(logPt)), gamma);
  return reduceLoss(mul(neg(mul(focus, logPt)), alpha), reduction);
}
