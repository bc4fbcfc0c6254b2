/** Comparisons and logic: bool results, broadcasting, no gradient. */

import { ir } from "../kernels/ir.js";
import { elementwise, type Template } from "../lazy/index.js";
import { broadcastShapes } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { checkBool, checkNumeric, operandPair, type TensorLike } from "./util.js";

function compare(op: string, expr: Template, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = operandPair(op, a, b);
  if (x.dtype === "bool" && y.dtype === "bool" && (op === "equal" || op === "notEqual")) {
    return elementwise(expr, [x, y], broadcastShapes(op, x.shape, y.shape), "bool");
  }
  checkNumeric(op, "a", x);
  checkNumeric(op, "b", y);
  return elementwise(expr, [x, y], broadcastShapes(op, x.shape, y.shape), "bool");
}

/** `a == b` elementwise. @example equal(state, 1) // bool mask of object anchors */
export function equal(a: TensorLike, b: TensorLike): Tensor {
  return compare("equal", ir.eq, a, b);
}

/** `a != b` elementwise (true where either is NaN). @example notEqual(state, -1) */
export function notEqual(a: TensorLike, b: TensorLike): Tensor {
  return compare("notEqual", ir.ne, a, b);
}

/** `a > b` elementwise. @example greater(x, 0) */
export function greater(a: TensorLike, b: TensorLike): Tensor {
  return compare("greater", ir.gt, a, b);
}

/** `a >= b` elementwise. @example greaterEqual(iou, 0.5) */
export function greaterEqual(a: TensorLike, b: TensorLike): Tensor {
  return compare("greaterEqual", ir.ge, a, b);
}

/** `a < b` elementwise. @example less(iou, 0.4) */
export function less(a: TensorLike, b: TensorLike): Tensor {
  return compare("less", ir.lt, a, b);
}

/** `a <= b` elementwise. @example lessEqual(x, 1) */
export function lessEqual(a: TensorLike, b: TensorLike): Tensor {
  return compare("lessEqual", ir.le, a, b);
}

function logical(op: string, expr: Template, a: Tensor, b: Tensor): Tensor {
  checkBool(op, "a", a);
  checkBool(op, "b", b);
  return elementwise(expr, [a, b], broadcastShapes(op, a.shape, b.shape), "bool");
}

/** Elementwise AND of two bool tensors. @example logicalAnd(greaterEqual(x, 0), lessEqual(x, 1)) */
export function logicalAnd(a: Tensor, b: Tensor): Tensor {
  return logical("logicalAnd", ir.and, a, b);
}

/** Elementwise OR of two bool tensors. @example logicalOr(equal(s, 0), equal(s, 1)) */
export function logicalOr(a: Tensor, b: Tensor): Tensor {
  return logical("logicalOr", ir.or, a, b);
}

/** Elementwise NOT of a bool tensor. @example logicalNot(equal(state, -1)) */
export function logicalNot(x: Tensor): Tensor {
  checkBool("logicalNot", "x", x);
  return elementwise(ir.not, [x], x.shape, "bool");
}
