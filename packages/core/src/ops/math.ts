/** Elementwise functions of one tensor, each with its gradient rule beside it. */

import { isFloat } from "../dtype.js";
import { constant, type Expr, ir } from "../kernels/ir.js";
import { elementwise, type Template } from "../lazy/index.js";
import { record } from "../tape.js";
import type { Tensor } from "../tensor.js";
import { add, gradDiv, gradMul, mul, neg, square, sub } from "./arithmetic.js";
import { greater, greaterEqual, lessEqual, logicalAnd } from "./compare.js";
import { zerosLike } from "./creation.js";
import { where } from "./selection.js";
import { checkFloat, checkNumeric, checkOptions, scalarTensor } from "./util.js";

/** @internal The logistic function of `x`, `1 / (1 + e^-x)`, with no overflow for any x. */
export function sigmoidOf(x: Expr): Expr {
  return ir.select(
    ir.ge(x, 0),
    ir.div(1, ir.add(1, ir.exp(ir.neg(x)))),
    ir.div(ir.exp(x), ir.add(1, ir.exp(x))),
  );
}

/** @internal `x` limited to [lo, hi] (NaN stays NaN). */
export function clipOf(x: Expr, lo: Expr, hi: Expr): Expr {
  return ir.select(ir.lt(x, lo), lo, ir.select(ir.gt(x, hi), hi, x));
}

/** @internal `log(1 + e^-|x|)`, the term of softplus and of the logit cross-entropy that is never large. */
export function log1pExpNegAbs(x: Expr): Expr {
  return ir.log1p(ir.exp(ir.neg(ir.abs(x))));
}

/** @internal A float-only unary op computed by `expr`. */
function floatUnary(op: string, expr: Template, x: Tensor): Tensor {
  checkFloat(op, "x", x);
  return elementwise(expr, [x], x.shape, x.dtype);
}

/** `e ** x`. @example exp(tensor([0, 1])) // [1, 2.718…] */
export function exp(x: Tensor): Tensor {
  const out = floatUnary("exp", ir.exp, x);
  return record("exp", out, [x], [(g) => gradMul(g, out)], [[out]]);
}

/** Natural logarithm (−∞ at 0, NaN below). @example log(tensor([1, Math.E])) // [0, 1] */
export function log(x: Tensor): Tensor {
  const out = floatUnary("log", ir.log, x);
  return record("log", out, [x], [(g) => gradDiv(g, x)], [[x]]);
}

/** `log(1 + x)`, accurate for small x. @example log1p(tensor([1e-10])) */
export function log1p(x: Tensor): Tensor {
  const out = floatUnary("log1p", ir.log1p, x);
  return record("log1p", out, [x], [(g) => gradDiv(g, add1(x))], [[x]]);
}

function add1(x: Tensor): Tensor {
  return sub(x, -1);
}

/** Square root. @example sqrt(tensor([4, 9])) // [2, 3] */
export function sqrt(x: Tensor): Tensor {
  const out = floatUnary("sqrt", ir.sqrt, x);
  return record("sqrt", out, [x], [(g) => gradDiv(g, mul(out, 2))], [[out]]);
}

/** `-1`, `0` or `1` by the sign of x (0 at 0, NaN at NaN); no gradient. @example sign(tensor([-2, 0, 3])) */
export function sign(x: Tensor): Tensor {
  checkNumeric("sign", "x", x);
  return elementwise(
    (a) => ir.select(ir.gt(a, 0), 1, ir.select(ir.lt(a, 0), -1, a)),
    [x],
    x.shape,
    x.dtype,
  );
}

/** `|x|`; the subgradient at 0 is 0 (PyTorch and TensorFlow agree). @example abs(tensor([-1, 2])) */
export function abs(x: Tensor): Tensor {
  checkNumeric("abs", "x", x);
  const out = elementwise(ir.abs, [x], x.shape, x.dtype);
  return record("abs", out, [x], [(g) => gradMul(g, sign(x))], [[x]]);
}

/** `1 / (1 + e^-x)`, computed without overflow for any x. @example sigmoid(tensor([0])) // [0.5] */
export function sigmoid(x: Tensor): Tensor {
  const out = floatUnary("sigmoid", sigmoidOf, x);
  return record("sigmoid", out, [x], [(g) => mul(g, mul(out, sub(1, out)))], [[out]]);
}

/** `log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|)`, finite for any x. @example logSigmoid(tensor([-1000])) // [-1000] */
export function logSigmoid(x: Tensor): Tensor {
  const out = floatUnary("logSigmoid", (a) => ir.sub(ir.min(a, 0), log1pExpNegAbs(a)), x);
  return record("logSigmoid", out, [x], [(g) => mul(g, sigmoid(neg(x)))], [[x]]);
}

/** `log(1 + e^x) = max(x, 0) + log1p(e^-|x|)`, finite for any x. @example softplus(tensor([0])) // [0.693…] */
export function softplus(x: Tensor): Tensor {
  const out = floatUnary("softplus", (a) => ir.add(ir.max(a, 0), log1pExpNegAbs(a)), x);
  return record("softplus", out, [x], [(g) => mul(g, sigmoid(x))], [[x]]);
}

/** Hyperbolic tangent. @example tanh(tensor([0])) // [0] */
export function tanh(x: Tensor): Tensor {
  const out = floatUnary("tanh", ir.tanh, x);
  return record("tanh", out, [x], [(g) => mul(g, sub(1, mul(out, out)))], [[out]]);
}

/** `p[0] + p[1]·v + p[2]·v² + …` by Horner's rule. */
function polynomial(p: readonly number[], v: Expr): Expr {
  let sum = constant(p[p.length - 1], v.dtype);
  for (let k = p.length - 2; k >= 0; k--) sum = ir.add(ir.mul(sum, v), p[k]);
  return sum;
}

/** `polynomial(p, v) / polynomial(q, v)`. */
function rational(p: readonly number[], q: readonly number[], v: Expr): Expr {
  return ir.div(polynomial(p, v), polynomial(q, v));
}

// W. J. Cody's rational Chebyshev approximations of the error function (Math. Comp. 23, 1969; the
// coefficients of his SPECFUN routine CALERF), lowest degree first, his 18 digits rounded to the
// nearest float64. The approximations' own errors are below 1e-18, so what is left is rounding.
/**
 * erf(x) = x · P(x²) / Q(x²) for |x| ≤ 0.46875, evaluated as x + x · (P − Q)(x²) / Q(x²): P/Q is
 * about 1.13, so its rounding error reaches erf only through the small second term. `pMinusQ` is
 * Cody's P minus his Q, subtracted exactly in decimal before rounding.
 */
const erfNear0 = {
  pMinusQ: [
    365.14075569929884, -905.1312883920702, -130.16048378339403, -20.440167208473554,
    -0.8142222938153968,
  ],
  q: [2844.236833439171, 1282.6165260773723, 244.02463793444417, 23.601290952344122, 1],
};
/** erfc(y) = e^(−y²) · P(y) / Q(y) for 0.46875 < y ≤ 4. */
const erfcMiddle = {
  p: [
    1230.3393547979972, 2051.0783778260716, 1712.0476126340707, 881.952221241769, 298.6351381974001,
    66.11919063714163, 8.883149794388377, 0.5641884969886701, 2.1531153547440383e-8,
  ],
  q: [
    1230.3393548037495, 3439.3676741437216, 4362.619090143247, 3290.7992357334597,
    1621.3895745666903, 537.1811018620099, 117.6939508913125, 15.744926110709835, 1,
  ],
};
/** erfc(y) = e^(−y²) / y · (1/√π − z · P(z) / Q(z)) with z = 1/y², for y > 4. */
const erfcTail = {
  p: [
    0.0006587491615298378, 0.016083785148742275, 0.12578172611122926, 0.36034489994980445,
    0.30532663496123236, 0.016315387137302097,
  ],
  q: [
    0.0023352049762686918, 0.06051834131244132, 0.5279051029514285, 1.8729528499234604,
    2.568520192289822, 1,
  ],
};

/**
 * erf(a) as an IR expression. Past 0.46875 it is 1 − erfc(|x|), with the sign of x;
 * `e^(−x²)` is taken directly, without Cody's split of x² into an exact part: that split keeps
 * erfc's *relative* error small where erfc is tiny, but an error there is far below erf's last bit.
 * At ±∞ the tail gives erfc = 0; NaN falls through every comparison and stays NaN.
 */
function erfOf(a: Expr): Expr {
  const y = ir.abs(a);
  const z = ir.div(1, ir.mul(y, y));
  const squared = ir.mul(a, a);
  const near0 = ir.add(a, ir.mul(a, rational(erfNear0.pMinusQ, erfNear0.q, squared)));
  const gauss = ir.exp(ir.neg(squared));
  const middle = ir.mul(gauss, rational(erfcMiddle.p, erfcMiddle.q, y));
  const tail = ir.mul(
    ir.div(gauss, y),
    ir.sub(1 / Math.sqrt(Math.PI), ir.mul(z, rational(erfcTail.p, erfcTail.q, z))),
  );
  const erfc = ir.select(ir.le(y, 4), middle, tail);
  return ir.select(
    ir.le(y, 0.46875),
    near0,
    ir.mul(ir.select(ir.lt(a, 0), -1, 1), ir.sub(1, erfc)),
  );
}

/**
 * The error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt`, odd, from −1 to 1 (as `torch.erf`), from
 * W. J. Cody's rational approximations: in float64 within 2 ulps of the exact value (within 1 for
 * |x| ≤ 0.46875); float32 inputs are computed so and rounded once. Its gradient is
 * `2/√π · e^(−x²)`.
 *
 * @example
 * erf(tensor([0, 0.5, -1, Infinity])); // [0, 0.5205, -0.8427, 1]
 */
export function erf(x: Tensor): Tensor {
  const out = floatUnary("erf", erfOf, x);
  return record(
    "erf",
    out,
    [x],
    [(g) => gradMul(g, mul(exp(neg(square(x))), 2 / Math.sqrt(Math.PI)))],
    [[x]],
  );
}

/** Options of `gelu` and `nn.GELU`. */
export interface GeluOptions {
  /**
   * `"none"` (the default): the exact `x · Φ(x)`, with Φ the standard normal distribution function;
   * `"tanh"`: the approximation `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`, as PyTorch names it.
   */
  approximate?: "none" | "tanh";
}

/**
 * The Gaussian error linear unit (PyTorch's `nn.functional.gelu`): `x · Φ(x) = x/2 · (1 + erf(x/√2))`,
 * or its tanh approximation with `{ approximate: "tanh" }`. Gradients of every order come from the
 * ops it is made of.
 *
 * @example
 * gelu(tensor([-1, 0, 1]));                          // [-0.1587, 0, 0.8413]
 * gelu(tensor([-1, 0, 1]), { approximate: "tanh" }); // [-0.1588, 0, 0.8412]
 */
export function gelu(x: Tensor, options?: GeluOptions): Tensor {
  checkFloat("gelu", "x", x);
  const half = mul(x, 0.5);
  if (geluApproximation("gelu", options) === "none") {
    return mul(half, add(erf(mul(x, Math.SQRT1_2)), 1));
  }
  const inner = mul(add(x, mul(mul(square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(half, add(tanh(inner), 1));
}

/**
 * @internal The approximation that GELU `options` ask for, checked for `op` (`gelu` or `GELU`).
 *
 * @example
 * geluApproximation("GELU", { approximate: "tanh" }); // "tanh"
 */
export function geluApproximation(op: string, options: GeluOptions | undefined): "none" | "tanh" {
  const { approximate = "none" } = checkOptions(op, options, { approximate: "string" });
  if (approximate !== "none" && approximate !== "tanh") {
    throw new Error(
      `${op}: approximate must be "none" or "tanh", got ${JSON.stringify(approximate)}`,
    );
  }
  return approximate;
}

/** `max(x, 0)`; the subgradient at 0 is 0 (PyTorch and TensorFlow agree). @example relu(tensor([-1, 2])) // [0, 2] */
export function relu(x: Tensor): Tensor {
  checkNumeric("relu", "x", x);
  const out = elementwise(
    (a) => ir.select(ir.gt(a, 0), a, ir.select(ir.eq(a, a), 0, a)),
    [x],
    x.shape,
    x.dtype,
  );
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
  const out = elementwise(clipOf, [x, ...bounds], x.shape, x.dtype);
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
function rounding(op: string, expr: Template, x: Tensor): Tensor {
  checkNumeric(op, "x", x);
  if (!isFloat(x.dtype)) return x;
  const out = elementwise(expr, [x], x.shape, x.dtype);
  return record(op, out, [x], [(g) => zerosLike(g)], [[]]);
}

/** The largest integer <= x, elementwise; gradient 0. @example floor(tensor([-1.5, 1.5])) // [-2, 1] */
export function floor(x: Tensor): Tensor {
  return rounding("floor", ir.floor, x);
}

/** The smallest integer >= x, elementwise; gradient 0. @example ceil(tensor([-1.5, 1.2])) // [-1, 2] */
export function ceil(x: Tensor): Tensor {
  return rounding("ceil", ir.ceil, x);
}

/**
 * The nearest integer, halves to the even neighbour (as `torch.round` and NumPy; not
 * `Math.round`, which rounds halves up); gradient 0.
 *
 * @example
 * round(tensor([0.5, 1.5, 2.5, -0.5, -1.5, 2.4])); // [0, 2, 2, -0, -2, 2]
 */
export function round(x: Tensor): Tensor {
  return rounding("round", ir.round, x);
}
