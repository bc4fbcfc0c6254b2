/** Binary arithmetic with NumPy broadcasting; either operand may be a plain number. */

import { type DType, isFloat, promoteTypes } from "../dtype.js";
import { int32PowerInto } from "../kernels/integer.js";
import { constant, type Expr, ir } from "../kernels/ir.js";
import { elementwise, type Template } from "../lazy/index.js";
import { broadcastShapes } from "../shape.js";
import { record } from "../tape.js";
import { Tensor } from "../tensor.js";
import { equal, greater, less, logicalAnd } from "./compare.js";
import { zerosLike } from "./creation.js";
import { log } from "./math.js";
import { where } from "./selection.js";
import { checkNumeric, operandPair, type TensorLike } from "./util.js";

/** @internal Checks, broadcasts and runs `expr` over two numeric operands. */
export function binary(
  op: string,
  expr: Template,
  a: TensorLike,
  b: TensorLike,
  resultDtype: (promoted: DType) => DType = (d) => d,
): [Tensor, Tensor, Tensor] {
  const [x, y] = operandPair(op, a, b);
  checkNumeric(op, "a", x);
  checkNumeric(op, "b", y);
  const shape = broadcastShapes(op, x.shape, y.shape);
  const dtype = resultDtype(promoteTypes(x.dtype, y.dtype));
  return [elementwise(expr, [x, y], shape, dtype), x, y];
}

/**
 * @internal `g · d` in a gradient rule, where `g` is the upstream gradient and `d` the local
 * derivative: exactly 0 wherever `g` is exactly 0, even where `d` is infinite, overflowed or NaN
 * (a term that contributes nothing to the value contributes nothing to the gradient, so a weight
 * of exactly 0 or the unselected side of a `where` never makes 0 · ∞ = NaN). NaN or ∞ in `g`
 * still propagates. Its own rules have the same form, so the policy holds at every order.
 *
 * @example
 * gradMul(tensor([0, 2]), tensor([Infinity, 3])); // [0, 6]
 */
export function gradMul(g: TensorLike, d: TensorLike): Tensor {
  const [out, x, y] = binary("gradMul", (x, y) => ir.select(ir.eq(x, 0), 0, ir.mul(x, y)), g, d);
  // ∂/∂g is d, ∂/∂d is g (0 where g = 0, as the value is constant there).
  return record("gradMul", out, [x, y], [(u) => gradMul(u, y), (u) => gradMul(u, x)], [[y], [x]]);
}

/**
 * @internal `g / d` in a gradient rule, exactly 0 wherever `g` is exactly 0 (see `gradMul`), so
 * that a derivative such as 1 / x at x = 0 gives no NaN where nothing flows.
 *
 * @example
 * gradDiv(tensor([0, 2]), tensor([0, 4])); // [0, 0.5]
 */
export function gradDiv(g: TensorLike, d: TensorLike): Tensor {
  const [out, x, y] = binary("gradDiv", (x, y) => ir.select(ir.eq(x, 0), 0, ir.div(x, y)), g, d);
  // ∂/∂g is 1 / d; ∂/∂d is −g / d² = −out / d.
  return record(
    "gradDiv",
    out,
    [x, y],
    [(u) => gradDiv(u, y), (u) => neg(gradDiv(gradMul(u, out), y))],
    [[y], [out, y]],
  );
}

/**
 * `a + b`, broadcasting.
 *
 * @example
 * add(tensor([1, 2]), 10); // [11, 12]
 */
export function add(a: TensorLike, b: TensorLike): Tensor {
  const [out, x, y] = binary("add", ir.add, a, b);
  return record("add", out, [x, y], [(g) => g, (g) => g], [[], []]);
}

/** `a - b`, broadcasting. @example sub(1, p) */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [out, x, y] = binary("sub", ir.sub, a, b);
  return record("sub", out, [x, y], [(g) => g, (g) => neg(g)], [[], []]);
}

/** A product; of two int32 values wrapped to 32 bits (two's complement), as PyTorch's int32 does. */
const product = (a: Expr, b: Expr) =>
  a.dtype === "int32" && b.dtype === "int32" ? ir.imul(a, b) : ir.mul(a, b);

/** An integer operand of an op with a float result, as a float (exactly: int32 fits in float64). */
const asFloat = (x: Expr) => (isFloat(x.dtype) ? x : ir.convert(x, "float64"));

/**
 * `a * b`, broadcasting. int32 products wrap modulo 2^32 (two's complement), exactly.
 *
 * @example
 * mul(x, tensor([[2], [3]]));
 */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [out, x, y] = binary("mul", product, a, b);
  return record("mul", out, [x, y], [(g) => gradMul(g, y), (g) => gradMul(g, x)], [[y], [x]]);
}

/** `a / b`, broadcasting; integer operands divide exactly into float32. @example div(x, 2) */
export function div(a: TensorLike, b: TensorLike): Tensor {
  const [out, x, y] = binary(
    "div",
    (x, y) => ir.div(asFloat(x), asFloat(y)),
    a,
    b,
    (d) => (d === "int32" ? "float32" : d),
  );
  return record(
    "div",
    out,
    [x, y],
    [(g) => gradDiv(g, y), (g) => neg(gradDiv(gradMul(g, out), y))],
    [[y], [out, y]],
  );
}

/** `-x`. @example neg(tensor([1, -2])) // [-1, 2] */
export function neg(x: Tensor): Tensor {
  checkNumeric("neg", "x", x);
  const out = elementwise(ir.neg, [x], x.shape, x.dtype);
  return record("neg", out, [x], [(g) => neg(g)], [[]]);
}

/**
 * `x ** exponent`, for a number or a tensor exponent (broadcasting). The derivative of `x ** 0`
 * is 0 everywhere, including at x = 0, so `gamma = 0` in a focal loss is plain cross-entropy.
 * Small integer exponents are computed by multiplication, which is both faster and exact.
 *
 * @example
 * pow(tensor([1, 2, 3]), 2);            // [1, 4, 9]
 * pow(tensor([4, 9]), tensor([0.5]));   // [2, 3]
 */
export function pow(x: TensorLike, exponent: TensorLike): Tensor {
  if (typeof exponent === "number" && typeof x !== "number") return powScalar(x, exponent);
  const [out, base, e] = binary(
    "pow",
    (b, e) => ir.pow(asFloat(b), asFloat(e)),
    x,
    exponent,
    (d) => (d === "int32" ? "float32" : d),
  );
  return record(
    "pow",
    out,
    [base, e],
    [
      // e · x^(e−1) is 0 wherever e = 0, but 0 · ∞ at x = e = 0: only that point is guarded, so
      // that elsewhere the rule keeps its own derivative in e (x^(e−1), e.g. 1/x at e = 0).
      (g) => {
        const bothZero = logicalAnd(equal(e, 0), equal(base, 0));
        return where(bothZero, 0, gradMul(g, mul(e, pow(base, sub(where(bothZero, 1, e), 1)))));
      },
      // d/de x^e = x^e log x; at x = 0 PyTorch's convention is 0 (for e >= 0), again kept NaN-free.
      (g) => {
        const isZero = equal(base, 0);
        return where(isZero, 0, gradMul(g, mul(out, log(where(isZero, 1, base)))));
      },
    ],
  );
}

function powExpression(k: number, dtype: DType): Template {
  // int32 powers by repeated wrapping products (k <= 4 here; larger ones run in integerPower).
  switch (k) {
    case 0:
      return () => constant(1, dtype);
    case 1:
      return (a) => a;
    case 2:
      return (a) => product(a, a);
    case 3:
      return (a) => product(product(a, a), a);
    case 4:
      return (a) => product(product(a, a), product(a, a));
    case -1:
      return (a) => ir.div(1, asFloat(a));
    case 0.5:
      return (a) => ir.sqrt(asFloat(a));
    // 1 / √x (the gradient of √x, and of a focal weight with γ = 0.5), with −0 as +0 first:
    // pow(−0, −0.5) is +∞ as pow(+0, −0.5) is, where 1 / √−0 would be −∞.
    case -0.5:
      return (a) => ir.div(1, ir.add(ir.sqrt(asFloat(a)), 0));
    default:
      return (a) => ir.pow(asFloat(a), k);
  }
}

function powScalar(x: Tensor, k: number): Tensor {
  checkNumeric("pow", "x", x);
  if (!Number.isFinite(k)) throw new Error(`pow: exponent must be a finite number, got ${k}`);
  const dtype = x.dtype === "int32" && !(Number.isInteger(k) && k >= 0) ? "float32" : x.dtype;
  // int32 results wrap modulo 2^32 like products; no gradient flows into an int32 tensor.
  if (dtype === "int32" && k > 4) return integerPower(x, k);
  const out = elementwise(powExpression(k, dtype), [x], x.shape, dtype);
  return record(
    "pow",
    out,
    [x],
    [(g) => (k === 0 ? zerosLike(g) : gradMul(g, mul(pow(x, k - 1), k)))],
  );
}

/** `x ** k` for an int32 `x` and an integer k > 4, wrapped modulo 2^32 (by squaring, exactly). */
function integerPower(x: Tensor, k: number): Tensor {
  const out = new Int32Array(x.size);
  int32PowerInto(x.read() as Int32Array, k, out);
  return new Tensor(out, x.shape, "int32");
}

/** `x * x`; int32 squares wrap modulo 2^32. @example square(tensor([3])) // [9] */
export function square(x: Tensor): Tensor {
  checkNumeric("square", "x", x);
  const out = elementwise((a) => product(a, a), [x], x.shape, x.dtype);
  return record("square", out, [x], [(g) => gradMul(g, mul(x, 2))], [[x]]);
}

/**
 * Elementwise maximum, broadcasting. Where `a == b` the gradient is split evenly between the two
 * (PyTorch's rule), so that `maximum(x, x)` has gradient 1 in x.
 *
 * @example
 * maximum(tensor([1, 5]), 3); // [3, 5]
 */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  const [out, x, y] = binary(
    "maximum",
    (p, q) => ir.select(ir.or(ir.ge(p, q), ir.ne(p, p)), p, q),
    a,
    b,
  );
  return record(
    "maximum",
    out,
    [x, y],
    [(g) => extremumGrad(g, x, y, true), (g) => extremumGrad(g, y, x, true)],
  );
}

/** Elementwise minimum, broadcasting; ties split the gradient evenly. @example minimum(p, 1) */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  const [out, x, y] = binary(
    "minimum",
    (p, q) => ir.select(ir.or(ir.le(p, q), ir.ne(p, p)), p, q),
    a,
    b,
  );
  return record(
    "minimum",
    out,
    [x, y],
    [(g) => extremumGrad(g, x, y, false), (g) => extremumGrad(g, y, x, false)],
  );
}

/** The share of `g` that reaches `self` in max(self, other) (or min): 1 where it wins, 1/2 on ties. */
function extremumGrad(g: Tensor, self: Tensor, other: Tensor, isMax: boolean): Tensor {
  const wins = isMax ? greater(self, other) : less(self, other);
  return where(wins, g, where(equal(self, other), mul(g, 0.5), 0));
}
