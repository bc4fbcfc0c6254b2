/** keras-retinanet's smooth L1 box-regression loss over object anchors. */

import {
  abs,
  argwhere,
  cast,
  div,
  equal,
  gatherNd,
  less,
  mul,
  pow,
  sub,
  sum,
  type Tensor,
  tensor,
  where,
} from "@focalgrad/core";
import { checkLossOptions } from "./common.js";
import { checkAnchorTargets } from "./targetLayout.js";

/** Options of `smoothL1`: the sharpness sigma. */
export interface SmoothL1Options {
  /** The loss turns from quadratic to linear at `|d| = 1 / sigma^2`. > 0, default 3. */
  sigma?: number;
}

/**
 * keras-retinanet's `smooth_l1(sigma)` (Fast R-CNN's smooth L1 with a sharpness `sigma`):
 * `yPred [B, N, R]` holds the regression outputs (R = 4 box deltas), `yTrue [B, N, R + 1]` the
 * targets and, last, the anchor state. Only object anchors (state 1) count:
 *
 * ```
 * d = |pred - target|
 * l = d < 1/sigma^2 ? 0.5 · sigma^2 · d^2 : d - 0.5/sigma^2
 * loss = Σ_object l / max(1, #object anchors in the batch)
 * ```
 *
 * Both branches have slope 1 at `d = 1/sigma^2` (the linear one is taken there), so the gradient is
 * continuous; at `d = 0` it is 0. Ignored and background anchors are never read. Regression
 * targets are not range-checked; a NaN in an object anchor propagates.
 *
 * @example
 * const loss = smoothL1({ sigma: 3 });
 * const yTrue = tensor([[[0.1, 0.2, 0.0, 0.5, 1], [9, 9, 9, 9, 0]]]); // B = 1, N = 2
 * const yPred = tensor([[[0.0, 0.2, 0.3, 0.5], [0, 0, 0, 0]]]);
 * loss(yTrue, yPred); // (0.045 + 0 + 0.2444… + 0) / 1
 */
export function smoothL1(options: SmoothL1Options = {}): (yTrue: Tensor, yPred: Tensor) => Tensor {
  checkLossOptions("smoothL1", options, ["sigma"]);
  const sigma = options.sigma ?? 3;
  if (typeof sigma !== "number" || !Number.isFinite(sigma) || !(sigma > 0)) {
    throw new Error(`smoothL1: sigma must be a finite number > 0, got ${String(sigma)}`);
  }
  const sigmaSquared = sigma * sigma;
  return (yTrue, yPred) => {
    const { values: targets, anchorState } = checkAnchorTargets("smoothL1", yTrue, yPred, {
      predWhat: "regression outputs",
      labelsInUnitInterval: false,
    });
    const dtype = yPred.dtype;

    const indices = argwhere(equal(anchorState, 1));
    const regression = gatherNd(yPred, indices);
    const gathered = gatherNd(targets, indices);
    const regressionTarget = gathered.dtype === dtype ? gathered : cast(gathered, dtype);
    const diff = abs(sub(regression, regressionTarget));
    const loss = where(
      less(diff, 1 / sigmaSquared),
      mul(0.5 * sigmaSquared, pow(diff, 2)),
      sub(diff, 0.5 / sigmaSquared),
    );
    const normalizer = tensor(Math.max(1, indices.shape[0]), { dtype });
    return div(sum(loss), normalizer);
  };
}
