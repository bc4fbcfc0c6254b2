/** The seed's focal loss and its gradient in one hand-fused loop: the unit of every ratio in `pnpm bench`. */

import { type DataArray, type Tensor, tensor } from "@focalgrad/core";

/** Options of the focal loss, as `focal()` in `@focalgrad/losses` takes them. */
export interface FusedFocalOptions {
  /** Weight of positive labels (1 − alpha for negatives). Default 0.25. */
  alpha?: number;
  /** Focusing exponent. Default 2. */
  gamma?: number;
  /** Clip of the probabilities inside the cross-entropy. Default 1e-7 (Keras). */
  epsilon?: number;
}

/** The loss and its gradient with respect to `yPred`. */
export interface FusedFocalResult {
  loss: number;
  /** Same shape and dtype as `yPred`. */
  grad: Tensor;
}

/**
 * The Keras RetinaNet focal loss of `docs/focal-loss.md` and its gradient with respect to `yPred`,
 * computed without a graph: a pass over the anchor states counts the objects (the normaliser),
 * then one pass over the predictions accumulates the loss and writes each gradient element once.
 * Ignored anchors are skipped and keep a gradient of exactly 0. The loss accumulates in double
 * precision; the gradient has `yPred`'s dtype.
 *
 * @example
 * const { yTrue, yPred } = syntheticAnchorBatch({ batch: 2, anchors: 100, classes: 3 });
 * const { loss, grad } = fusedFocal(yTrue, yPred, { alpha: 0.25, gamma: 2 });
 * grad.shape; // [2, 100, 3]
 */
export function fusedFocal(
  yTrue: Tensor,
  yPred: Tensor,
  options: FusedFocalOptions = {},
): FusedFocalResult {
  if (yPred.dtype !== "float32" && yPred.dtype !== "float64") {
    throw new Error(`fusedFocal: yPred must be float32 or float64, got ${yPred.dtype}`);
  }
  if (yTrue.dtype !== "float32" && yTrue.dtype !== "float64") {
    throw new Error(`fusedFocal: yTrue must be float32 or float64, got ${yTrue.dtype}`);
  }
  const [batch, anchors, classes] = yPred.shape;
  const matches =
    yPred.rank === 3 &&
    yTrue.rank === 3 &&
    yTrue.shape[0] === batch &&
    yTrue.shape[1] === anchors &&
    yTrue.shape[2] === classes + 1;
  if (!matches) {
    throw new Error(
      `fusedFocal: expected yTrue [B, N, C + 1] and yPred [B, N, C], got [${yTrue.shape.join(", ")}] and [${yPred.shape.join(", ")}]`,
    );
  }
  const grad =
    yPred.dtype === "float32" ? new Float32Array(yPred.size) : new Float64Array(yPred.size);
  const loss = fusedFocalInto(
    yTrue.read(),
    yPred.read(),
    grad,
    batch * anchors,
    classes,
    options,
    yPred.dtype,
  );
  return { loss, grad: tensor(grad, { shape: [batch, anchors, classes], dtype: yPred.dtype }) };
}

/**
 * The loop behind `fusedFocal`, on flat arrays: `yTrue` is `[anchors, classes + 1]`, `yPred` and
 * `grad` are `[anchors, classes]` (batch and anchor axes flattened together). `grad` must be zero
 * on entry where anchors are ignored; every other element is overwritten. Returns the loss.
 * `dtype` rounds the clip bounds as the autodiff version does (1 − ε computed in that dtype).
 * `objects`, for arrays that are a part of the batch, is the batch's count of object anchors (the
 * normaliser); by default they are counted in the arrays. The function uses nothing from outside
 * its body, so that worker threads can run its source (`fusedFocalThreads`).
 *
 * @example
 * const grad = new Float32Array(yPred.size);
 * const loss = fusedFocalInto(yTrue.read(), yPred.data, grad, 8 * 49_104, 20, {}, "float32");
 */
export function fusedFocalInto(
  yTrue: DataArray,
  yPred: DataArray,
  grad: DataArray,
  anchors: number,
  classes: number,
  options: FusedFocalOptions = {},
  dtype: "float32" | "float64" = "float32",
  objects?: number,
): number {
  const alpha = options.alpha ?? 0.25;
  const gamma = options.gamma ?? 2;
  const epsilon = options.epsilon ?? 1e-7;
  const round = dtype === "float32" ? Math.fround : (x: number) => x;
  const lo = round(epsilon);
  const hi = round(1 - lo);
  const width = classes + 1;

  let counted = 0;
  if (objects === undefined) {
    for (let a = 0; a < anchors; a++) if (yTrue[a * width + classes] === 1) counted++;
  }
  const scale = 1 / Math.max(1, objects ?? counted);
  const squared = gamma === 2;

  let lossObject = 0;
  let lossBackground = 0;
  for (let a = 0; a < anchors; a++) {
    const t = a * width;
    const state = yTrue[t + classes];
    const isObject = state === 1;
    if (!isObject && state !== 0) continue;
    const o = a * classes;
    let anchorLoss = 0;
    for (let c = 0; c < classes; c++) {
      const y = yTrue[t + c];
      const p = yPred[o + c];
      // Objects weigh positives by alpha on (1 − p); background weighs every label by 1 − alpha on p.
      const positive = isObject && y === 1;
      const alphaFactor = positive ? alpha : 1 - alpha;
      const base = positive ? 1 - p : p;
      const basePow = squared ? base * base : gamma === 0 ? 1 : base ** gamma;
      const dBasePow = squared ? 2 * base : gamma === 0 ? 0 : gamma * base ** (gamma - 1);
      const weight = alphaFactor * basePow;
      const dWeight = positive ? -alphaFactor * dBasePow : alphaFactor * dBasePow;
      const pc = Math.min(Math.max(p, lo), hi);
      const inside = p >= lo && p <= hi;
      let bce: number;
      let dBce: number;
      if (y === 1) {
        bce = -Math.log(pc);
        dBce = inside ? -1 / pc : 0;
      } else if (y === 0) {
        bce = -Math.log(1 - pc);
        dBce = inside ? 1 / (1 - pc) : 0;
      } else {
        bce = -(y * Math.log(pc) + (1 - y) * Math.log(1 - pc));
        dBce = inside ? (pc - y) / (pc * (1 - pc)) : 0;
      }
      anchorLoss += weight * bce;
      grad[o + c] = (dWeight * bce + weight * dBce) * scale;
    }
    if (isObject) lossObject += anchorLoss;
    else lossBackground += anchorLoss;
  }
  return (lossObject + lossBackground) * scale;
}
