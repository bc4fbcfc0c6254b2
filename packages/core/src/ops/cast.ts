/** Converting between dtypes. */

import { type DType, isDType, isFloat } from "../dtype.js";
import { type Expr, ir } from "../kernels/ir.js";
import { elementwise } from "../lazy/index.js";
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
  // Into int32 by truncation toward zero, NaN to 0 (ToInt32, as a store into an Int32Array).
  const expr =
    dtype === "bool"
      ? (a: Expr) => ir.ne(a, 0)
      : dtype === "int32"
        ? (a: Expr) => ir.convert(a, "int32")
        : (a: Expr) => a;
  const out = elementwise(expr, [x], x.shape, dtype);
  if (!isFloat(dtype) || !isFloat(x.dtype)) return out;
  const from = x.dtype;
  return record("cast", out, [x], [(g) => cast(g, from)], [[]]);
}
