/**
 * The optimisers' update in WebAssembly SIMD: Adam's (and AdamW's) step over a range of a
 * parameter, two elements per f64x2 vector, in float64 with the same operations in the same order
 * as the JavaScript loop (`adamInto`), so the parameter and the moments come out bit for bit the same.
 */

import { FunctionBuilder, I32, Simd, V128 } from "./assembler.js";

// SIMD opcodes only this function uses.
const V128_LOAD64_ZERO = 0x5d;
const V128_STORE64_LANE = 0x5b;
const F32X4_DEMOTE_F64X2_ZERO = 0x5e;
const F64X2_PROMOTE_LOW_F32X4 = 0x5f;
const F64X2_SQRT = 0xef;
const F64X2_SUB = 0xf1;
const F64X2_DIV = 0xf3;

/**
 * The float64 settings of one Adam step, in the order the kernel reads them from memory (8 bytes
 * each, at `settingsAt`).
 */
export const ADAM_SETTINGS = [
  "beta1",
  "oneMinusBeta1",
  "beta2",
  "oneMinusBeta2",
  "stepSize",
  "scale",
  "eps",
  "decay",
  "l2",
] as const;

/**
 * `name(settingsAt, paramAt, gradAt, mAt, vAt, lo, hi)`: for i in [lo, hi), two at a time,
 *
 *     x = param[i]; g = grad[i] + l2 · x
 *     m[i] = β₁ · m[i] + (1 − β₁) · g;  v[i] = β₂ · v[i] + (1 − β₂) · g · g
 *     param[i] = x · decay − (stepSize · m[i]) / (√v[i] · scale + ε)
 *
 * with param and grad of `bytes` (4: float32, widened to float64 and the result rounded back; 8:
 * float64) and the moments float64. lo is even; an odd hi also updates element hi (the caller
 * leaves room for it).
 */
export function adamFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, [I32, I32, I32, I32, I32, I32, I32]);
  const [settingsAt, paramAt, gradAt, mAt, vAt, lo, hi] = [0, 1, 2, 3, 4, 5, 6];
  const i = f.local(I32);
  const settings = ADAM_SETTINGS.map(() => f.local(V128));
  const [beta1, oneMinusBeta1, beta2, oneMinusBeta2, stepSize, scale, eps, decay, l2] = settings;
  const x = f.local(V128);
  const g = f.local(V128);
  const m = f.local(V128);
  const v = f.local(V128);
  settings.forEach((local, k) => {
    f.get(settingsAt)
      .simd(Simd.load64Splat, { align: 3, offset: 8 * k })
      .set(local);
  });
  const vector = { align: bytes === 4 ? 3 : 4, offset: 0 };
  const loadParameter = (base: number) => {
    f.address(base, [i], bytes);
    if (bytes === 4) f.simd(V128_LOAD64_ZERO, vector).simd(F64X2_PROMOTE_LOW_F32X4);
    else f.simd(Simd.load, vector);
  };
  const moment = { align: 4, offset: 0 };
  f.forLoop(
    i,
    () => f.get(lo),
    () => f.get(hi),
    () => {
      loadParameter(paramAt);
      f.set(x);
      loadParameter(gradAt);
      f.get(l2).get(x).simd(Simd.f64x2Mul).simd(Simd.f64x2Add).set(g);
      // m[i] = β₁ · m[i] + (1 − β₁) · g
      f.address(mAt, [i], 8);
      f.get(beta1).address(mAt, [i], 8).simd(Simd.load, moment).simd(Simd.f64x2Mul);
      f.get(oneMinusBeta1).get(g).simd(Simd.f64x2Mul).simd(Simd.f64x2Add).tee(m);
      f.simd(Simd.store, moment);
      // v[i] = β₂ · v[i] + ((1 − β₂) · g) · g
      f.address(vAt, [i], 8);
      f.get(beta2).address(vAt, [i], 8).simd(Simd.load, moment).simd(Simd.f64x2Mul);
      f.get(oneMinusBeta2).get(g).simd(Simd.f64x2Mul).get(g).simd(Simd.f64x2Mul);
      f.simd(Simd.f64x2Add).tee(v);
      f.simd(Simd.store, moment);
      // param[i] = x · decay − (stepSize · m) / (√v · scale + ε)
      f.address(paramAt, [i], bytes);
      f.get(x).get(decay).simd(Simd.f64x2Mul);
      f.get(stepSize).get(m).simd(Simd.f64x2Mul);
      f.get(v).simd(F64X2_SQRT).get(scale).simd(Simd.f64x2Mul).get(eps).simd(Simd.f64x2Add);
      f.simd(F64X2_DIV).simd(F64X2_SUB);
      if (bytes === 4) f.simd(F32X4_DEMOTE_F64X2_ZERO).simd(V128_STORE64_LANE, vector).op(0);
      else f.simd(Simd.store, vector);
    },
    2,
  );
  return f;
}
