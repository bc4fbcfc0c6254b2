/** Seeded synthetic anchor batches in the focal loss's layout, for the benchmark, the demo and tests. */

import { Generator, type Tensor, tensor } from "@focalgrad/core";

/** Options of `syntheticAnchorBatch`. */
export interface AnchorBatchOptions {
  /** Images in the batch (B). */
  batch: number;
  /** Anchors per image (N), e.g. 49 104 for RetinaNet at 512 px. */
  anchors: number;
  /** Object classes (C), without background. */
  classes: number;
  /** Share of anchors, over the whole batch, assigned to an object (state 1). Default 0.01. */
  objectFraction?: number;
  /** Share of anchors, over the whole batch, ignored (state −1). Default 0.02. */
  ignoredFraction?: number;
  /** Seed of the generator: the same seed gives the same batch, bit for bit. Default 0. */
  seed?: number;
  /** Default `float32`. */
  dtype?: "float32" | "float64";
}

/** A batch of targets and predictions, and how its anchors are split. */
export interface AnchorBatch {
  /** `[B, N, C + 1]`: one-hot class labels, then the anchor state (−1 ignore, 0 background, 1 object). */
  yTrue: Tensor;
  /** `[B, N, C]`: sigmoid probabilities, away from the clip edges (in [sigmoid(−12), sigmoid(12)]). */
  yPred: Tensor;
  /** Anchors with state 1, over the whole batch (the focal loss's normaliser, when ≥ 1). */
  objectAnchors: number;
  /** Anchors with state 0. */
  backgroundAnchors: number;
  /** Anchors with state −1. */
  ignoredAnchors: number;
}

/** The prior of the last layer's bias in RetinaNet: sigmoid(logit) ≈ 0.01 before training. */
const priorLogit = -Math.log((1 - 0.01) / 0.01);
const maxLogit = 12;

/**
 * A reproducible batch shaped like a RetinaNet classification head early in training. Exactly
 * `round(objectFraction · B · N)` anchors are objects and `round(ignoredFraction · B · N)` are
 * ignored, chosen uniformly over the batch. Each object anchor has one random class labelled 1;
 * background and ignored anchors have all labels 0 (as keras-retinanet assigns them).
 * Predictions are sigmoids of normal logits around the prior −4.6 (std 1.5); an object's own
 * class is drawn around +0.5 instead, so both easy and hard examples are present.
 *
 * @example
 * const { yTrue, yPred, objectAnchors } = syntheticAnchorBatch({
 *   batch: 8, anchors: 49_104, classes: 20, seed: 1,
 * });
 * yTrue.shape; // [8, 49104, 21]
 * yPred.shape; // [8, 49104, 20]
 * objectAnchors; // 3928 (1 % of 392 832)
 */
export function syntheticAnchorBatch(options: AnchorBatchOptions): AnchorBatch {
  const { batch, anchors, classes } = options;
  const objectFraction = options.objectFraction ?? 0.01;
  const ignoredFraction = options.ignoredFraction ?? 0.02;
  const dtype = options.dtype ?? "float32";
  for (const [name, value] of [
    ["batch", batch],
    ["anchors", anchors],
    ["classes", classes],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`syntheticAnchorBatch: ${name} must be a positive integer, got ${value}`);
    }
  }
  if (!(objectFraction >= 0 && ignoredFraction >= 0 && objectFraction + ignoredFraction <= 1)) {
    throw new Error(
      `syntheticAnchorBatch: objectFraction (${objectFraction}) and ignoredFraction (${ignoredFraction}) must be >= 0 and sum to at most 1`,
    );
  }
  const gen = new Generator(options.seed ?? 0);
  const total = batch * anchors;
  const objectAnchors = Math.round(objectFraction * total);
  const ignoredAnchors = Math.min(total - objectAnchors, Math.round(ignoredFraction * total));

  // A partial Fisher–Yates shuffle picks which anchors are objects, then which are ignored.
  const state = new Int8Array(total);
  const order = new Int32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  for (let i = 0; i < objectAnchors + ignoredAnchors; i++) {
    const j = i + gen.integer(total - i);
    const picked = order[j];
    order[j] = order[i];
    order[i] = picked;
    state[picked] = i < objectAnchors ? 1 : -1;
  }

  const width = classes + 1;
  const yTrue =
    dtype === "float32" ? new Float32Array(total * width) : new Float64Array(total * width);
  const yPred =
    dtype === "float32" ? new Float32Array(total * classes) : new Float64Array(total * classes);
  for (let a = 0; a < total; a++) {
    const s = state[a];
    yTrue[a * width + classes] = s;
    const objectClass = s === 1 ? gen.integer(classes) : -1;
    if (objectClass >= 0) yTrue[a * width + objectClass] = 1;
    for (let c = 0; c < classes; c++) {
      const mean = c === objectClass ? 0.5 : priorLogit;
      const logit = Math.max(-maxLogit, Math.min(maxLogit, gen.normal(mean, 1.5)));
      yPred[a * classes + c] = 1 / (1 + Math.exp(-logit));
    }
  }
  return {
    yTrue: tensor(yTrue, { shape: [batch, anchors, width], dtype }),
    yPred: tensor(yPred, { shape: [batch, anchors, classes], dtype }),
    objectAnchors,
    backgroundAnchors: total - objectAnchors - ignoredAnchors,
    ignoredAnchors,
  };
}
