/**
 * The optimisers' update in WebAssembly SIMD: Adam's (and AdamW's) step over a range of a
 * parameter, in f32x4 for float32 (parameter and moments) and f64x2 for float64, with the same
 * operations in the same order as the JavaScript loop (`adamInto`), so the parameter and the
 * moments come out bit for bit the same.
 */

import { FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";

// Opcodes only this function uses (SIMD ones after the 0xfd prefix).
const F32X4_SQRT = 0xe3;
const F32X4_SUB = 0xe5;
const F32X4_DIV = 0xe7;
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
 * `name(settingsAt, paramAt, gradAt, mAt, vAt, lo, hi)`: for i in [lo, hi), a vector at a time,
 *
 *     x = param[i]; g = grad[i] + l2 · x
 *     m[i] = β₁ · m[i] + (1 − β₁) · g;  v[i] = β₂ · v[i] + ((1 − β₂) · g) · g
 *     param[i] = x · decay − (stepSize · m[i]) / (√v[i] · scale + ε)
 *
 * with every array of `bytes` (4: float32 in f32x4, the settings rounded to float32 once; 8:
 * float64 in f64x2). lo is a multiple of the lanes; a hi that is not also updates the elements
 * up to the next multiple (the caller leaves room for them).
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
  const ops =
    bytes === 4
      ? { add: Simd.f32x4Add, sub: F32X4_SUB, mul: Simd.f32x4Mul, div: F32X4_DIV, sqrt: F32X4_SQRT }
      : {
          add: Simd.f64x2Add,
          sub: F64X2_SUB,
          mul: Simd.f64x2Mul,
          div: F64X2_DIV,
          sqrt: F64X2_SQRT,
        };
  settings.forEach((local, k) => {
    if (bytes === 8) {
      f.get(settingsAt)
        .simd(Simd.load64Splat, { align: 3, offset: 8 * k })
        .set(local);
    } else {
      f.get(settingsAt)
        .memory(Op.f64Load, 3, 8 * k)
        .op(Op.f32DemoteF64)
        .simd(Simd.f32x4Splat);
      f.set(local);
    }
  });
  const vector = { align: 4, offset: 0 };
  const load = (base: number) => f.address(base, [i], bytes).simd(Simd.load, vector);
  f.forLoop(
    i,
    () => f.get(lo),
    () => f.get(hi),
    () => {
      load(paramAt).set(x);
      load(gradAt);
      f.get(l2).get(x).simd(ops.mul).simd(ops.add).set(g);
      // m[i] = β₁ · m[i] + (1 − β₁) · g
      f.address(mAt, [i], bytes);
      f.get(beta1);
      load(mAt).simd(ops.mul);
      f.get(oneMinusBeta1).get(g).simd(ops.mul).simd(ops.add).tee(m);
      f.simd(Simd.store, vector);
      // v[i] = β₂ · v[i] + ((1 − β₂) · g) · g
      f.address(vAt, [i], bytes);
      f.get(beta2);
      load(vAt).simd(ops.mul);
      f.get(oneMinusBeta2).get(g).simd(ops.mul).get(g).simd(ops.mul);
      f.simd(ops.add).tee(v);
      f.simd(Simd.store, vector);
      // param[i] = x · decay − (stepSize · m) / (√v · scale + ε)
      f.address(paramAt, [i], bytes);
      f.get(x).get(decay).simd(ops.mul);
      f.get(stepSize).get(m).simd(ops.mul);
      f.get(v).simd(ops.sqrt).get(scale).simd(ops.mul).get(eps).simd(ops.add);
      f.simd(ops.div).simd(ops.sub);
      f.simd(Simd.store, vector);
    },
    16 / bytes,
  );
  return f;
}
