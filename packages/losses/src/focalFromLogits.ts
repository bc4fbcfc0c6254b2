/** The seed's focal loss taking logits instead of probabilities, stable for any logit. */

import {
  add,
  argwhere,
  bceWithLogits,
  cast,
  div,
  equal,
  exp,
  gatherNd,
  logSigmoid,
  mul,
  neg,
  sub,
  sum,
  type Tensor,
  tensor,
  where,
} from "@focalgrad/core";
import { checkAlpha, checkExponent, checkLossOptions } from "./common.js";
import type { FocalOptions } from "./focal.js";
import { checkAnchorTargets } from "./targetLayout.js";

/** `sigmoid(x) ** gamma` as `exp(gamma · logSigmoid(x))`: finite, with a finite gradient, for any x. */
function sigmoidPower(x: Tensor, gamma: number): Tensor {
  return exp(mul(logSigmoid(x), gamma));
}

/**
 * The seed's focal loss (see `focal`) on logits: `yPred [B, N, C]` holds `x` with `p = sigmoid(x)`.
 * The same anchor handling, alpha factor and normaliser `max(1, #object anchors in the batch)`;
 * the pieces are computed in the logit domain so that no logit, however large, gives an infinite
 * or NaN loss or gradient:
 *
 * ```
 * (1 - p)^gamma = exp(gamma · logSigmoid(-x)),   p^gamma = exp(gamma · logSigmoid(x))
 * BCE(y, p)     = max(x, 0) - x·y + log1p(exp(-|x|))          (bceWithLogits, no clip)
 * ```
 *
 * It equals `focal` on `sigmoid(x)` wherever `sigmoid(x)` lies inside Keras' clip
 * `[1e-7, 1 - 1e-7]`; outside it, this loss keeps growing and keeps its gradient instead of the
 * clip's constant. Ignored anchors are never read; a NaN logit elsewhere propagates.
 *
 * @example
 * const loss = focalFromLogits({ alpha: 0.25, gamma: 2 });
 * const yTrue = tensor([[[1, 0, 1], [0, 0, 0]]]);           // B = 1, N = 2, C = 2
 * const logits = tensor([[[2.2, -1.4], [-4.6, 30]]], { requiresGrad: true });
 * loss(yTrue, logits).backward();                            // finite even for the logit 30
 */
export function focalFromLogits(
  options: FocalOptions = {},
): (yTrue: Tensor, logits: Tensor) => Tensor {
  checkLossOptions("focalFromLogits", options, ["alpha", "gamma"]);
  const alpha = checkAlpha("focalFromLogits", options.alpha ?? 0.25);
  const gamma = checkExponent("focalFromLogits", "gamma", options.gamma ?? 2);
  return (yTrue, logits) => {
    const { values: labels, anchorState } = checkAnchorTargets("focalFromLogits", yTrue, logits, {
      predName: "logits",
      predWhat: "logits",
      labelsInUnitInterval: true,
    });
    const dtype = logits.dtype;
    const asLogitDtype = (t: Tensor) => (t.dtype === dtype ? t : cast(t, dtype));

    const objectIndices = argwhere(equal(anchorState, 1));
    const objectLabels = asLogitDtype(gatherNd(labels, objectIndices));
    const objectLogits = gatherNd(logits, objectIndices);
    const isPositive = equal(objectLabels, 1);
    const alphaFactor = tensor(alpha, { dtype });
    const objectAlpha = where(isPositive, alphaFactor, sub(1, alphaFactor));
    // 1 - sigmoid(x) = sigmoid(-x): the focal base of a positive, without cancellation.
    const objectFocus = sigmoidPower(where(isPositive, neg(objectLogits), objectLogits), gamma);
    const objectLoss = mul(
      mul(objectAlpha, objectFocus),
      bceWithLogits(objectLogits, objectLabels),
    );

    const backgroundIndices = argwhere(equal(anchorState, 0));
    const backgroundLabels = asLogitDtype(gatherNd(labels, backgroundIndices));
    const backgroundLogits = gatherNd(logits, backgroundIndices);
    const backgroundLoss = mul(
      sum(
        mul(
          sigmoidPower(backgroundLogits, gamma),
          bceWithLogits(backgroundLogits, backgroundLabels),
        ),
      ),
      tensor(1 - alpha, { dtype }),
    );

    const normalizer = tensor(Math.max(1, objectIndices.shape[0]), { dtype });
    return div(add(sum(objectLoss), backgroundLoss), normalizer);
  };
}
