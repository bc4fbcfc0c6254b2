/** Converting between dtypes. */

import { type DType, isDType, isFloat } from "../dtype.js";
import { elementwise } from "../kernels/elementwise.js";
import { record } from "../tape.js";
import type { Tensor } from "../tensor.js";
import { checkTensor } from "./util.js";

/**
 * `x` as `dtype`. Floats become int32 by truncation toward zero (NaN becomes 0); anything becomes
 * bool by `!= 0`. Between float32 and float64 the gradient flows (cast back); into int32 or bool
 * there is none.
 *
 * @example
 * cast(equal(labels, 1), "float32"); // 1.0 where the label is 1, else 0.0
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensor("cast", "x", x);
  if (!isDType(dtype)) {
    throw new Error(
      `cast: unknown dtype ${JSON.stringify(dtype)} (expected float32, float64, int32 or bool)`,
    );
  }
  if (x.dtype === dtype) return x;
  const expr = dtype === "bool" ? "a !== 0 ? 1 : 0" : dtype === "int32" ? "Math.trunc(a) | 0" : "a";
  const out = elementwise(expr, [x], x.shape, dtype);
  if (!isFloat(dtype) || !isFloat(x.dtype)) return out;
  const from = x.dtype;
  return record("cast", out, [x], [(g) => cast(g, from)], [[]]);
}
