/** Shared test helpers: float64 tensors, anchor-layout arbitraries and an independent scalar reference. */

import { type DType, type Tensor, tensor } from "@focalgrad/core";
import fc from "fast-check";

export const f64 = (values: number[] | number[][] | number[][][], shape?: number[]) =>
  tensor(values, { dtype: "float64", ...(shape ? { shape } : {}) });

export const GAMMAS = [0, 0.5, 1, 2, 5] as const;

/** The anchor-state mixes the issue asks for, plus an unrestricted one. */
export const STATE_MIXES = [
  "mixed",
  "noObjects",
  "allIgnored",
  "backgroundOnly",
  "objectsOnly",
] as const;
export type StateMix = (typeof STATE_MIXES)[number];

function stateArbitrary(mix: StateMix): fc.Arbitrary<number> {
  switch (mix) {
    case "mixed":
      return fc.constantFrom(-1, 0, 1);
    case "noObjects":
      return fc.constantFrom(-1, 0);
    case "allIgnored":
      return fc.constant(-1);
    case "backgroundOnly":
      return fc.constant(0);
    case "objectsOnly":
      return fc.constant(1);
  }
}

export interface DetectionCase {
  batch: number;
  anchors: number;
  classes: number;
  /** [B, N, C + 1] as plain numbers. */
  yTrue: number[];
  /** [B, N, C]. */
  yPred: number[];
  mix: StateMix;
}

export interface DetectionConstraints {
  minBatch?: number;
  maxBatch?: number;
  maxAnchors?: number;
  maxClasses?: number;
  /** Values of yPred are drawn from [predMin, predMax]. */
  predMin?: number;
  predMax?: number;
  /** Soft labels in [0, 1] besides 0 and 1. */
  softLabels?: boolean;
}

/** Random detection targets and predictions in the keras-retinanet layout. */
export function detectionCase(c: DetectionConstraints = {}): fc.Arbitrary<DetectionCase> {
  const {
    minBatch = 0,
    maxBatch = 2,
    maxAnchors = 4,
    maxClasses = 3,
    predMin = 0.02,
    predMax = 0.98,
    softLabels = false,
  } = c;
  const label = softLabels
    ? fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true }))
    : fc.constantFrom(0, 1);
  return fc
    .record({
      batch: fc.integer({ min: minBatch, max: maxBatch }),
      anchors: fc.integer({ min: 0, max: maxAnchors }),
      classes: fc.integer({ min: 1, max: maxClasses }),
      mix: fc.constantFrom(...STATE_MIXES),
    })
    .chain(({ batch, anchors, classes, mix }) => {
      const n = batch * anchors;
      return fc
        .tuple(
          fc.array(stateArbitrary(mix), { minLength: n, maxLength: n }),
          fc.array(label, { minLength: n * classes, maxLength: n * classes }),
          fc.array(
            fc.double({ min: predMin, max: predMax, noNaN: true, noDefaultInfinity: true }),
            {
              minLength: n * classes,
              maxLength: n * classes,
            },
          ),
        )
        .map(([states, labels, yPred]) => {
          const yTrue: number[] = [];
          for (let a = 0; a < n; a++) {
            for (let k = 0; k < classes; k++) yTrue.push(labels[a * classes + k]);
            yTrue.push(states[a]);
          }
          return { batch, anchors, classes, yTrue, yPred, mix };
        });
    });
}

export function caseTensors(c: DetectionCase, dtype: DType = "float64"): [Tensor, Tensor] {
  const { batch: b, anchors: n, classes: k } = c;
  return [
    tensor(c.yTrue, { shape: [b, n, k + 1], dtype }),
    tensor(c.yPred, { shape: [b, n, k], dtype }),
  ];
}

/**
 * The seed's loss and its gradient in yPred, written out element by element in plain float64
 * JavaScript from docs/focal-loss.md, with the derivative taken by hand:
 * d/dp [w(p) · BCE(y, p)] = w'(p) · BCE + w · BCE', BCE' = (pc - y) / (pc (1 - pc)) inside the
 * clip [eps, 1 - eps] (bounds included) and 0 strictly outside.
 */
export function referenceFocal(
  c: DetectionCase,
  alpha: number,
  gamma: number,
): { loss: number; grad: number[] } {
  const { classes: k } = c;
  const eps = 1e-7;
  const anchorsTotal = c.batch * c.anchors;
  let objects = 0;
  for (let a = 0; a < anchorsTotal; a++) if (c.yTrue[a * (k + 1) + k] === 1) objects++;
  const normalizer = Math.max(1, objects);
  let total = 0;
  const grad = new Array<number>(c.yPred.length).fill(0);
  for (let a = 0; a < anchorsTotal; a++) {
    const state = c.yTrue[a * (k + 1) + k];
    if (state === -1) continue;
    for (let j = 0; j < k; j++) {
      const y = c.yTrue[a * (k + 1) + j];
      const p = c.yPred[a * k + j];
      const positive = state === 1 && y === 1;
      const alphaT = state === 1 ? (positive ? alpha : 1 - alpha) : 1 - alpha;
      const base = positive ? 1 - p : p;
      const dBase = positive ? -1 : 1;
      const pc = Math.min(Math.max(p, eps), 1 - eps);
      const bce = -(y * Math.log(pc) + (1 - y) * Math.log(1 - pc));
      const dBce = p < eps || p > 1 - eps ? 0 : (pc - y) / (pc * (1 - pc));
      const weight = alphaT * base ** gamma;
      const dWeight = gamma === 0 ? 0 : alphaT * gamma * base ** (gamma - 1) * dBase;
      total += weight * bce;
      grad[a * k + j] = (dWeight * bce + weight * dBce) / normalizer;
    }
  }
  return { loss: total / normalizer, grad };
}

/** Every element finite. */
export function allFinite(t: Tensor): boolean {
  for (let i = 0; i < t.size; i++) if (!Number.isFinite(t.data[i])) return false;
  return true;
}

/** Relative-or-absolute closeness, for comparing against references. */
export function close(actual: number, expected: number, rtol = 1e-9, atol = 1e-12): boolean {
  return Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
}
