/** Elementwise functions of one tensor, each with its gradient rule beside it. */

import { isFloat } from "../dtype.js";
import { record } from "../engine.js";
import { elementwise } from "../kernels/elementwise.js";
import type { Tensor } from "../tensor.js";
import { gradDiv, gradMul, mul, neg, sub } from "./arithmetic.js";
import { greater, greaterEqual, lessEqual, logicalAnd } from "./compare.js";
import { zerosLike } from "./creation.js";
import { where } from "./selection.js";
import { checkFloat, checkNumeric, scalarTensor } from "./util.js";

/** @internal A float-only unary op computed by `expr` in terms of `a`. */
function floatUnary(op: string, expr: string, x: Tensor): Tensor {
  checkFloat(op, "x", x);
  return elementwise(expr, [x], x.shape, x.dtype);
}

/** `e ** x`. @example exp(tensor([0, 1])) // [1, 2.718…] */
export function exp(x: Tensor): Tensor {
  const out = floatUnary("exp", "Math.exp(a)", x);
  return record("exp", out, [x], [(g) => gradMul(g, out)], [[out]]);
}

/** Natural logarithm (−∞ at 0, NaN below). @example log(tensor([1, Math.E])) // [0, 1] */
export function log(x: Tensor): Tensor {
  const out = floatUnary("log", "Math.log(a)", x);
  return record("log", out, [x], [(g) => gradDiv(g, x)], [[x]]);
}

/** `log(1 + x)`, accurate for small x. @example log1p(tensor([1e-10])) */
export function log1p(x: Tensor): Tensor {
  const out = floatUnary("log1p", "Math.log1p(a)", x);
  return record("log1p", out, [x], [(g) => gradDiv(g, add1(x))], [[x]]);
}

function add1(x: Tensor): Tensor {
  return sub(x, -1);
}

/** Square root. @example sqrt(tensor([4, 9])) // [2, 3] */
export function sqrt(x: Tensor): Tensor {
  const out = floatUnary("sqrt", "Math.sqrt(a)", x);
  return record("sqrt", out, [x], [(g) => gradDiv(g, mul(out, 2))], [[out]]);
}

/** `-1`, `0` or `1` by the sign of x (0 at 0, NaN at NaN); no gradient. @example sign(tensor([-2, 0, 3])) */
export function sign(x: Tensor): Tensor {
  checkNumeric("sign", "x", x);
  return elementwise("a > 0 ? 1 : a < 0 ? -1 : a", [x], x.shape, x.dtype);
}

/** `|x|`; the subgradient at 0 is 0 (PyTorch and TensorFlow agree). @example abs(tensor([-1, 2])) */
export function abs(x: Tensor): Tensor {
  checkNumeric("abs", "x", x);
  const out = elementwise("Math.abs(a)", [x], x.shape, x.dtype);
  return record("abs", out, [x], [(g) => gradMul(g, sign(x))], [[x]]);
}

/** `1 / (1 + e^-x)`, computed without overflow for any x. @example sigmoid(tensor([0])) // [0.5] */
export function sigmoid(x: Tensor): Tensor {
  const out = floatUnary(
    "sigmoid",
    "a >= 0 ? 1 / (1 + Math.exp(-a)) : Math.exp(a) / (1 + Math.exp(a))",
    x,
  );
  return record("sigmoid", out, [x], [(g) => mul(g, mul(out, sub(1, out)))], [[out]]);
}

/** `log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|)`, finite for any x. @example logSigmoid(tensor([-1000])) // [-1000] */
export function logSigmoid(x: Tensor): Tensor {
  const out = floatUnary("logSigmoid", "Math.min(a, 0) - Math.log1p(Math.exp(-Math.abs(a)))", x);
  return record("logSigmoid", out, [x], [(g) => mul(g, sigmoid(neg(x)))], [[x]]);
}

/** `log(1 + e^x) = max(x, 0) + log1p(e^-|x|)`, finite for any x. @example softplus(tensor([0])) // [0.693…] */
export function softplus(x: Tensor): Tensor {
  const out = floatUnary("softplus", "Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a)))", x);
  return record("softplus", out, [x], [(g) => mul(g, sigmoid(x))], [[x]]);
}

/** Hyperbolic tangent. @example tanh(tensor([0])) // [0] */
export function tanh(x: Tensor): Tensor {
  const out = floatUnary("tanh", "Math.tanh(a)", x);
  return record("tanh", out, [x], [(g) => mul(g, sub(1, mul(out, out)))], [[out]]);
}

/** `max(x, 0)`; the subgradient at 0 is 0 (PyTorch and TensorFlow agree). @example relu(tensor([-1, 2])) // [0, 2] */
export function relu(x: Tensor): Tensor {
  checkNumeric("relu", "x", x);
  const out = elementwise("a > 0 ? a : (a === a ? 0 : a)", [x], x.shape, x.dtype);
  return record("relu", out, [x], [(g) => where(greater(x, 0), g, 0)], [[x]]);
}

/**
 * `x` limited to [lo, hi]. The gradient passes where lo <= x <= hi, bounds included, and is 0
 * strictly outside (as `torch.clamp` and `tf.clip_by_value`). NaN stays NaN.
 *
 * @example
 * clip(tensor([-1, 0.5, 2]), 0, 1); // [0, 0.5, 1]
 */
export function clip(x: Tensor, lo: number, hi: number): Tensor {
  checkNumeric("clip", "x", x);
  if (
    typeof lo !== "number" ||
    typeof hi !== "number" ||
    Number.isNaN(lo) ||
    Number.isNaN(hi) ||
    lo > hi
  ) {
    throw new Error(`clip: expected numbers lo <= hi, got lo = ${lo} and hi = ${hi}`);
  }
  // Bounds as operands (rounded to x's dtype, as TensorFlow does), not spliced into the source.
  const bounds = [scalarTensor(lo, x.dtype, "clip"), scalarTensor(hi, x.dtype, "clip")];
  const out = elementwise("a < b ? b : a > c ? c : a", [x, ...bounds], x.shape, x.dtype);
  return record(
    "clip",
    out,
    [x],
    [(g) => where(logicalAnd(greaterEqual(x, lo), lessEqual(x, hi)), g, 0)],
    [[x]],
    { lo: bounds[0].item(), hi: bounds[1].item() },
  );
}

/**
 * A rounding of floats to integers (integers are returned as they are). Its gradient is 0
 * everywhere, as PyTorch defines it (the true derivative is 0 almost everywhere), so that a loss
 * through it still backpropagates, into zeros.
 */
function rounding(op: string, expr: string, x: Tensor): Tensor {
  checkNumeric(op, "x", x);
  if (!isFloat(x.dtype)) return x;
  const out = elementwise(expr, [x], x.shape, x.dtype);
  return record(op, out, [x], [(g) => zerosLike(g)], [[]]);
}

/** The largest integer <= x, elementwise; gradient 0. @example floor(tensor([-1.5, 1.5])) // [-2, 1] */
export function floor(x: Tensor): Tensor {
  return rounding("floor", "Math.floor(a)", x);
}

/** The smallest integer >= x, elementwise; gradient 0. @example ceil(tensor([-1.5, 1.2])) // [-1, 2] */
export function ceil(x: Tensor): Tensor {
  return rounding("ceil", "Math.ceil(a)", x);
}

/**
 * The nearest integer, halves to the even neighbour (as `torch.round` and NumPy; not
 * `Math.round`, which rounds halves up); gradient 0.
 *
 * @example
 * round(tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4])); // [0, 2, 2, -0, -2, 2]
 */
export function round(x: Tensor): Tensor {
  // A half is exactly a - floor(a) === 0.5 (the subtraction is exact); its even neighbour is
  // twice the rounded half of a.
  return rounding("round", "a - Math.floor(a) === 0.5 ? 2 * Math.round(a / 2) : Math.round(a)", x);
}
