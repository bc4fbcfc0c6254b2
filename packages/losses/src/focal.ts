/** The seed's loss: the Keras RetinaNet focal loss on probabilities, in the seed's own order. */

import {
  add,
  argwhere,
  binaryCrossEntropy,
  cast,
  div,
  equal,
  gatherNd,
  mul,
  pow,
  sub,
  sum,
  type Tensor,
  tensor,
  where,
} from "@focalgrad/core";
import { checkAlpha, checkExponent, checkLossOptions } from "./common.js";
import { checkAnchorTargets } from "./targetLayout.js";

/** Options of `focal` and `focalFromLogits`: the class weight and the focusing exponent. */
export interface FocalOptions {
  /** Weight of the positive labels; negatives get `1 - alpha`. In [0, 1], default 0.25. */
  alpha?: number;
  /** Focusing exponent, >= 0, default 2. `gamma = 0` is alpha-balanced cross-entropy. */
  gamma?: number;
}

/** Keras' `binary_crossentropy` clip. */
const epsilon = 1e-7;

/**
 * The seed's focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, as written
 * in the Keras RetinaNet the project started from; reference semantics in `docs/focal-loss.md`).
 *
 * `yPred [B, N, C]` holds probabilities; `yTrue [B, N, C + 1]` holds the labels (0/1) and, last,
 * the anchor state: -1 ignore, 0 background, 1 object. With `BCE` Keras' clipped binary
 * cross-entropy (`pc = clip(p, 1e-7, 1 - 1e-7)`, gradient passing at both bounds):
 *
 * ```
 * object anchors:      a = (y == 1 ? alpha : 1 - alpha),  w = a · (y == 1 ? 1 - p : p)^gamma
 * background anchors:  w = (1 - alpha) · p^gamma            (whatever the stored label is)
 * loss = (Σ_object w · BCE(y, p) + Σ_background w · BCE(y, p)) / max(1, #object anchors in the batch)
 * ```
 *
 * Ignored anchors are never read: their predictions (even NaN) change neither the loss nor the
 * gradient, which is an exact 0 there. A NaN prediction in an anchor that is not ignored
 * propagates to the loss (as in Keras and PyTorch): it is not an error. For 0 < gamma < 1 the
 * derivative of `p^gamma` is infinite at p = 0 (and of `(1 - p)^gamma` at p = 1), and so is the
 * gradient there, as in Keras; take `focalFromLogits` to train through a sigmoid.
 *
 * Throws when `yTrue`'s last dimension is not `C + 1`, batch or anchor counts differ, a state is
 * outside {-1, 0, 1}, a label of an anchor that is not ignored is outside [0, 1], `alpha` is outside
 * [0, 1], `gamma < 0`, or `yPred` is not float. float32 and float64; labels are cast to `yPred`'s
 * dtype (as Keras does).
 *
 * @example
 * const loss = focal({ alpha: 0.25, gamma: 2 });
 * const yTrue = tensor([[[1, 0, 1], [0, 0, 0], [0, 1, -1]]]); // B = 1, N = 3, C = 2
 * const yPred = tensor([[[0.9, 0.2], [0.1, 0.3], [0.5, 0.5]]], { requiresGrad: true });
 * const value = loss(yTrue, yPred); // scalar
 * value.backward();                 // yPred.grad: [1, 3, 2], zeros on the ignored anchor
 */
export function focal(options: FocalOptions = {}): (yTrue: Tensor, yPred: Tensor) => Tensor {
  checkLossOptions("focal", options, ["alpha", "gamma"]);
  const alpha = checkAlpha("focal", options.alpha ?? 0.25);
  const gamma = checkExponent("focal", "gamma", options.gamma ?? 2);
  return (yTrue, yPred) => {
    const { values: labels, anchorState } = checkAnchorTargets("focal", yTrue, yPred, {
      predWhat: "probabilities",
      labelsInUnitInterval: true,
    });
    const dtype = yPred.dtype;
    const asPredDtype = (t: Tensor) => (t.dtype === dtype ? t : cast(t, dtype));

    // Object anchors: positives weighted by alpha and (1 - p)^gamma, negatives by 1 - alpha and p^gamma.
    const objectIndices = argwhere(equal(anchorState, 1));
    const objectLabels = asPredDtype(gatherNd(labels, objectIndices));
    const objectPred = gatherNd(yPred, objectIndices);
    const isPositive = equal(objectLabels, 1);
    const alphaFactor = tensor(alpha, { dtype });
    const objectAlpha = where(isPositive, alphaFactor, sub(1, alphaFactor));
    const objectBase = where(isPositive, sub(1, objectPred), objectPred);
    const objectWeight = mul(objectAlpha, pow(objectBase, gamma));
    const objectLoss = mul(objectWeight, binaryCrossEntropy(objectLabels, objectPred, { epsilon }));

    // Background anchors: (1 - alpha) p^gamma whatever the label; the cross-entropy uses the label.
    const backgroundIndices = argwhere(equal(anchorState, 0));
    const backgroundLabels = asPredDtype(gatherNd(labels, backgroundIndices));
    const backgroundPred = gatherNd(yPred, backgroundIndices);
    const backgroundWeight = mul(tensor(1 - alpha, { dtype }), pow(backgroundPred, gamma));
    const backgroundLoss = sum(
      mul(backgroundWeight, binaryCrossEntropy(backgroundLabels, backgroundPred, { epsilon })),
    );

    const normalizer = tensor(Math.max(1, objectIndices.shape[0]), { dtype });
    return div(add(sum(objectLoss), backgroundLoss), normalizer);
  };
}
