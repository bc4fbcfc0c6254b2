/** Generalized Focal Loss (Li et al., NeurIPS 2020): quality focal loss and distribution focal loss. */

import {
  abs,
  add,
  arange,
  bceWithLogits,
  cast,
  gatherNd,
  logSoftmax,
  minimum,
  mul,
  neg,
  sigmoid,
  stack,
  sub,
  type Tensor,
} from "@focalgrad/core";
import {
  checkExponent,
  checkFloatArg,
  checkLossOptions,
  checkNumericArg,
  checkReduction,
  focusingFactor,
  type Reduction,
  reduceLoss,
} from "./common.js";
import { logitsAndTargets } from "./sigmoidFocalLoss.js";

export interface QualityFocalOptions {
  /** Focusing exponent on `|y - sigma|`, >= 0. Default 2 (the paper's). */
  beta?: number;
  /** `'mean'` over all elements (default), `'sum'`, or `'none'`. */
  reduction?: Reduction;
}

/**
 * Quality focal loss (GFL, Li et al. 2020, eq. 5; mmdetection's `quality_focal_loss`): a focal
 * loss whose target is a soft quality score `y ∈ [0, 1]` (the IoU on the positive's class, 0
 * elsewhere):
 *
 * ```
 * sigma = sigmoid(x),   loss = |y - sigma|^beta · BCEWithLogits(x, y)
 * ```
 *
 * Dense form: `targets` has the logits' shape ([N, C]); mmdetection's `(label, score)` pair is
 * `targets[n, label[n]] = score[n]`, 0 elsewhere. The target is data: it is detached, so no
 * gradient reaches it (mmdetection's heads detach the IoU score too); the scale factor
 * `|y - sigma|^beta` is differentiated through `sigma`, as in mmdetection. Where `sigma` equals `y`
 * exactly the factor's gradient is 0. `'mean'` averages over every element (mmdetection's default
 * averages the per-row class sums, i.e. this `'sum'` divided by N).
 *
 * @example
 * const logits = tensor([[1.2, -2.0], [-0.3, -3.1]], { requiresGrad: true });
 * const quality = tensor([[0.8, 0], [0, 0]]); // row 0 is a positive of class 0 with IoU 0.8
 * qualityFocalLoss(logits, quality).backward();
 */
export function qualityFocalLoss(
  logits: Tensor,
  targets: Tensor,
  options: QualityFocalOptions = {},
): Tensor {
  const op = "qualityFocalLoss";
  checkLossOptions(op, options, ["beta", "reduction"]);
  const beta = checkExponent(op, "beta", options.beta ?? 2);
  const reduction = checkReduction(op, options.reduction ?? "mean");
  const [x, t] = logitsAndTargets(op, logits, targets);
  const quality = t.detach();
  const scale = focusingFactor(abs(sub(quality, sigmoid(x))), beta);
  return reduceLoss(mul(scale, bceWithLogits(x, quality)), reduction);
}

export interface DistributionFocalOptions {
  /** `'mean'` over the N rows (default), `'sum'`, or `'none'` (shape [N]). */
  reduction?: Reduction;
}

/**
 * Distribution focal loss (GFL, Li et al. 2020, eq. 6; mmdetection's `distribution_focal_loss`):
 * `logits [N, K]` over the bins 0 … K-1 of a box side's distance, `targets [N]` the continuous
 * distance `y ∈ [0, K - 1]`. With `l = floor(y)` (`K - 2` when `y = K - 1`, so both bins exist) and
 * `r = l + 1`:
 *
 * ```
 * loss_n = -((r - y) · log S_l + (y - l) · log S_r),   S = softmax(logits[n])
 * ```
 *
 * i.e. cross-entropy towards the two bins around y, weighted by closeness. mmdetection needs
 * `y < K - 1` (it clamps targets just below); at `y = K - 1` this loss is the cross-entropy of bin
 * K - 1, its continuous extension. The target is data (detached). Needs K >= 2.
 *
 * @example
 * const logits = tensor([[0.1, 2.0, 0.3, -1.0]], { requiresGrad: true }); // K = 4 bins
 * distributionFocalLoss(logits, tensor([1.4])).backward(); // 0.6 · CE(bin 1) + 0.4 · CE(bin 2)
 */
export function distributionFocalLoss(
  logits: Tensor,
  targets: Tensor,
  options: DistributionFocalOptions = {},
): Tensor {
  const op = "distributionFocalLoss";
  checkLossOptions(op, options, ["reduction"]);
  const reduction = checkReduction(op, options.reduction ?? "mean");
  const x = checkFloatArg(op, "logits", logits, "logits");
  let y = checkNumericArg(op, "targets", targets);
  if (x.rank !== 2 || x.shape[1] < 2) {
    throw new Error(
      `${op}: logits must have shape [N, K] with K >= 2 bins, got [${x.shape.join(", ")}]`,
    );
  }
  const [rows, bins] = x.shape;
  if (y.rank !== 1 || y.shape[0] !== rows) {
    throw new Error(
      `${op}: targets must have shape [${rows}] (one distance per row of logits), got [${y.shape.join(", ")}]`,
    );
  }
  const data = y.read();
  for (let n = 0; n < rows; n++) {
    if (!(data[n] >= 0 && data[n] <= bins - 1)) {
      throw new Error(`${op}: targets must lie in [0, ${bins - 1}], got ${data[n]} at row ${n}`);
    }
  }
  if (y.dtype !== x.dtype) y = cast(y, x.dtype);
  y = y.detach();
  // Truncation is floor for y >= 0; the last bin's left neighbour stands in at y = K - 1.
  const left = minimum(cast(y, "int32"), bins - 2);
  const right = add(left, 1);
  const row = arange(0, rows, 1, { dtype: "int32" });
  const logProb = logSoftmax(x, -1);
  const logLeft = gatherNd(logProb, stack([row, left], 1));
  const logRight = gatherNd(logProb, stack([row, right], 1));
  const weightLeft = sub(cast(right, x.dtype), y);
  const weightRight = sub(y, cast(left, x.dtype));
  return reduceLoss(neg(add(mul(weightLeft, logLeft), mul(weightRight, logRight))), reduction);
}
