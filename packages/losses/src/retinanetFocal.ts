/** keras-retinanet's focal loss: one pass over every anchor that is not ignored, soft labels by a cutoff. */

import {
  argwhere,
  binaryCrossEntropy,
  cast,
  div,
  equal,
  gatherNd,
  greater,
  mul,
  notEqual,
  pow,
  sub,
  sum,
  type Tensor,
  tensor,
  where,
} from "@focalgrad/core";
import { checkAlpha, checkExponent, checkLossOptions } from "./common.js";
import { checkAnchorTargets } from "./targetLayout.js";

/** Options of `retinanetFocal`: class weight, focusing exponent and the positive-label cutoff. */
export interface RetinanetFocalOptions {
  /** Weight of the positive labels; negatives get `1 - alpha`. In [0, 1], default 0.25. */
  alpha?: number;
  /** Focusing exponent, >= 0, default 2. */
  gamma?: number;
  /** A label strictly above `cutoff` counts as positive. In [0, 1], default 0.5. */
  cutoff?: number;
}

/**
 * The focal loss of keras-retinanet (`keras_retinanet.losses.focal`), which generalises the seed to
 * soft labels: every anchor whose state is not -1 is treated alike, and a label `y > cutoff` counts
 * as positive.
 *
 * ```
 * a = (y > cutoff ? alpha : 1 - alpha),   w = a · (y > cutoff ? 1 - p : p)^gamma
 * loss = Σ_{state ≠ -1} w · BCE(y, p) / max(1, #anchors with state 1)
 * ```
 *
 * `BCE` is Keras' clipped binary cross-entropy (epsilon 1e-7, see `focal`). It differs from the
 * seed only on background anchors whose stored label is above the cutoff (the seed weighs every
 * background anchor by `(1 - alpha) p^gamma`). Layout, checks and NaN policy as `focal`.
 *
 * @example
 * const loss = retinanetFocal({ cutoff: 0.5 });
 * const yTrue = tensor([[[0.8, 0, 1], [0.3, 0, 0]]]); // soft label 0.8 counts as positive
 * const yPred = tensor([[[0.7, 0.1], [0.2, 0.1]]]);
 * loss(yTrue, yPred);
 */
export function retinanetFocal(
  options: RetinanetFocalOptions = {},
): (yTrue: Tensor, yPred: Tensor) => Tensor {
  checkLossOptions("retinanetFocal", options, ["alpha", "gamma", "cutoff"]);
  const alpha = checkAlpha("retinanetFocal", options.alpha ?? 0.25);
  const gamma = checkExponent("retinanetFocal", "gamma", options.gamma ?? 2);
  const cutoff = options.cutoff ?? 0.5;
  if (typeof cutoff !== "number" || !(cutoff >= 0 && cutoff <= 1)) {
    throw new Error(`retinanetFocal: cutoff must be in [0, 1], got ${String(cutoff)}`);
  }
  return (yTrue, yPred) => {
    const { values: labels, anchorState } = checkAnchorTargets("retinanetFocal", yTrue, yPred, {
      predWhat: "probabilities",
      labelsInUnitInterval: true,
    });
    const dtype = yPred.dtype;

    const indices = argwhere(notEqual(anchorState, -1));
    const gathered = gatherNd(labels, indices);
    const kept = gathered.dtype === dtype ? gathered : cast(gathered, dtype);
    const pred = gatherNd(yPred, indices);
    const isPositive = greater(kept, cutoff);
    const alphaFactor = tensor(alpha, { dtype });
    const weight = mul(
      where(isPositive, alphaFactor, sub(1, alphaFactor)),
      pow(where(isPositive, sub(1, pred), pred), gamma),
    );
    const loss = sum(mul(weight, binaryCrossEntropy(kept, pred, { epsilon: 1e-7 })));

    const objects = argwhere(equal(anchorState, 1)).shape[0];
    return div(loss, tensor(Math.max(1, objects), { dtype }));
  };
}
