/** The optimisers' per-element updates as kernels, so a backend can run them where it keeps their state: Adam's step in plain JavaScript, the reference of every other backend's. */

import type { DataArray } from "../dtype.js";

/**
 * One Adam (or AdamW) step's constants for a parameter, in float64. With bias corrections
 * c₁ = 1 − β₁ᵗ and c₂ = 1 − β₂ᵗ: `stepSize` = lr / c₁ and `scale` = 1 / √c₂, so that
 * stepSize · m / (√v · scale + ε) = lr · m̂ / (√v̂ + ε) (one division per element instead of
 * three). `decay` multiplies the parameter (1 − lr · λ for AdamW, else 1); `l2` (λ for Adam,
 * else 0) adds l2 · p to the gradient.
 */
export interface AdamStep {
  beta1: number;
  beta2: number;
  stepSize: number;
  scale: number;
  eps: number;
  decay: number;
  l2: number;
}

/**
 * Adam's update of `param` in place from `grad`, with its float64 moments `m` and `v`:
 * g = grad + l2 · p, m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², p ← p · decay − stepSize · m /
 * (√v · scale + ε). Each element in float64, rounded once when stored into a float32 parameter.
 *
 * @example
 * adamInto(p, g, m, v, { beta1: 0.9, beta2: 0.999, stepSize: 1e-2, scale: 1 / Math.sqrt(1e-3), eps: 1e-8, decay: 1, l2: 0 });
 */
export function adamInto(
  param: DataArray,
  grad: DataArray,
  m: Float64Array,
  v: Float64Array,
  s: AdamStep,
): void {
  const { beta1, beta2, stepSize, scale, eps, decay, l2 } = s;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  for (let i = 0; i < param.length; i++) {
    const x = param[i];
    const g = grad[i] + l2 * x;
    const mi = beta1 * m[i] + oneMinusBeta1 * g;
    const vi = beta2 * v[i] + oneMinusBeta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = x * decay - (stepSize * mi) / (Math.sqrt(vi) * scale + eps);
  }
}
