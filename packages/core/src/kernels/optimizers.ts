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

/** An optimiser's state buffer: float32 for a float32 parameter (as PyTorch keeps it), else float64. */
export type StateArray = Float32Array | Float64Array;

/**
 * Adam's update of `param` in place from `grad`, with its moments `m` and `v`:
 * g = grad + l2 · p, m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², p ← p · decay − stepSize · m /
 * (√v · scale + ε). In the moments' precision: float64 moments make every step float64 (the
 * parameter rounded once when stored), float32 moments make every operation, and the constants,
 * float32 (PyTorch's arithmetic for a float32 parameter).
 *
 * @example
 * adamInto(p, g, m, v, { beta1: 0.9, beta2: 0.999, stepSize: 1e-2, scale: 1 / Math.sqrt(1e-3), eps: 1e-8, decay: 1, l2: 0 });
 */
export function adamInto(
  param: DataArray,
  grad: DataArray,
  m: StateArray,
  v: StateArray,
  s: AdamStep,
): void {
  if (m instanceof Float32Array && v instanceof Float32Array) {
    adamSingle(param, grad, m, v, s);
    return;
  }
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

/** `adamInto` in float32: each operation rounded (`fround` of a double operation is the float32 one). */
function adamSingle(
  param: DataArray,
  grad: DataArray,
  m: Float32Array,
  v: Float32Array,
  s: AdamStep,
): void {
  const f = Math.fround;
  const [beta1, beta2, stepSize, scale, eps, decay, l2] = [
    s.beta1,
    s.beta2,
    s.stepSize,
    s.scale,
    s.eps,
    s.decay,
    s.l2,
  ].map(f);
  const oneMinusBeta1 = f(1 - s.beta1);
  const oneMinusBeta2 = f(1 - s.beta2);
  for (let i = 0; i < param.length; i++) {
    const x = f(param[i]);
    const g = f(grad[i] + f(l2 * x));
    const mi = f(f(beta1 * m[i]) + f(oneMinusBeta1 * g));
    const vi = f(f(beta2 * v[i]) + f(f(oneMinusBeta2 * g) * g));
    m[i] = mi;
    v[i] = vi;
    const denominator = f(f(f(Math.sqrt(vi)) * scale) + eps);
    param[i] = f(f(x * decay) - f(f(stepSize * mi) / denominator));
  }
}
