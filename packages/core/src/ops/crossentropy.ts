/** Binary cross-entropy on probabilities (the Keras semantics) and on logits (the stable form). */

import { promoteTypes } from "../dtype.js";
import { type Expr, ir } from "../kernels/ir.js";
import { elementwise } from "../lazy/index.js";
import { broadcastShapes } from "../shape.js";
import { record } from "../tape.js";
import type { Tensor } from "../tensor.js";
import { add, div, gradMul, mul, neg, sub } from "./arithmetic.js";
import { greaterEqual, lessEqual, logicalAnd } from "./compare.js";
import { clip, clipOf, log, log1pExpNegAbs, sigmoid, sigmoidOf } from "./math.js";
import { where } from "./selection.js";
import { checkFloat, checkOptions, scalarTensor } from "./util.js";

/**
 * The cross-entropy of target `y` and probability `p` clipped into [lo, hi]; where `y` is exactly
 * 0 or 1 only the one logarithm it needs is computed.
 */
function crossEntropyOf(y: Expr, p: Expr, lo: Expr, hi: Expr): Expr {
  const rounded = (x: Expr) => ir.convert(x, x.dtype);
  const pc = clipOf(p, lo, hi);
  const logP = ir.log(pc);
  const logQ = ir.log(ir.sub(1, pc));
  return ir.select(
    ir.eq(y, 1),
    ir.neg(logP),
    ir.select(
      ir.eq(y, 0),
      ir.neg(logQ),
      // Each term rounded: they share a sign for targets in [0, 1], so their sum cannot cancel,
      // and a renderer that rounds every step (WebAssembly's) may take the kernel.
      ir.neg(ir.add(rounded(ir.mul(y, logP)), rounded(ir.mul(ir.sub(1, y), logQ)))),
    ),
  );
}

/**
 * Keras' `binary_crossentropy` on probabilities, elementwise, no reduction:
 * `pc = clip(pred, ε, 1 − ε)`, then `−(target · log pc + (1 − target) · log(1 − pc))`.
 * The clip passes the gradient at exactly ε and 1 − ε and blocks it strictly outside. Where a
 * target is exactly 0 or 1 only the one logarithm it needs is computed. Broadcasts.
 *
 * @example
 * binaryCrossEntropy(tensor([1, 0]), tensor([0.9, 0.2])); // [0.105…, 0.223…]
 */
export function binaryCrossEntropy(
  target: Tensor,
  pred: Tensor,
  options?: { epsilon?: number },
): Tensor {
  options = checkOptions("binaryCrossEntropy", options, { epsilon: "number" });
  checkFloat("binaryCrossEntropy", "target", target);
  checkFloat("binaryCrossEntropy", "pred", pred);
  const epsilon = options.epsilon ?? 1e-7;
  if (!(epsilon >= 0 && epsilon < 0.5)) {
    throw new Error(`binaryCrossEntropy: epsilon must be in [0, 0.5), got ${epsilon}`);
  }
  const dtype = promoteTypes(target.dtype, pred.dtype);
  const shape = broadcastShapes("binaryCrossEntropy", target.shape, pred.shape);
  // Bounds rounded to the working dtype, as Keras does (1 − ε computed in that dtype too).
  const lo = scalarTensor(epsilon, dtype);
  const hi = scalarTensor(1 - lo.read()[0], dtype);
  const out = elementwise(crossEntropyOf, [target, pred, lo, hi], shape, dtype);
  return record(
    "binaryCrossEntropy",
    out,
    [target, pred],
    [
      (g) => {
        const pc = clip(pred, lo.read()[0], hi.read()[0]);
        // d/dy = log(1 − pc) − log(pc); the clipped pc keeps both logs finite.
        return mul(g, sub(log(sub(1, pc)), log(pc)));
      },
      (g) => bceBackward(g, target, pred, lo, hi),
    ],
  );
}

/**
 * @internal `g · ∂BCE/∂pred` in one pass: `g · (pc − y) / (pc (1 − pc))` inside [lo, hi], 0 outside.
 * Linear in `g`, so its own gradient in `g` is itself; the others are written with ops.
 */
function bceBackward(g: Tensor, y: Tensor, p: Tensor, lo: Tensor, hi: Tensor): Tensor {
  const shape = broadcastShapes("binaryCrossEntropy", g.shape, y.shape, p.shape);
  const out = elementwise(
    (gv, yv, pv, lov, hiv) =>
      ir.select(
        ir.or(ir.lt(pv, lov), ir.gt(pv, hiv)),
        0,
        ir.div(ir.mul(gv, ir.sub(pv, yv)), ir.mul(pv, ir.sub(1, pv))),
      ),
    [g, y, p, lo, hi],
    shape,
    g.dtype,
  );
  const inside = () => logicalAnd(greaterEqual(p, lo.read()[0]), lessEqual(p, hi.read()[0]));
  const pc = () => clip(p, lo.read()[0], hi.read()[0]);
  return record(
    "bceBackward",
    out,
    [g, y, p],
    [
      (h) => bceBackward(h, y, p, lo, hi),
      // ∂/∂y of (pc − y) / (pc (1 − pc)) is −1 / (pc (1 − pc)).
      (h) => where(inside(), neg(div(mul(h, g), mul(pc(), sub(1, pc())))), 0),
      // ∂/∂p of −y/p + (1 − y)/(1 − p) is y/p² + (1 − y)/(1 − p)².
      (h) => {
        const q = pc();
        const curvature = add(div(y, mul(q, q)), div(sub(1, y), mul(sub(1, q), sub(1, q))));
        return where(inside(), mul(mul(h, g), curvature), 0);
      },
    ],
  );
}

/**
 * Binary cross-entropy on logits, `max(x, 0) − x · t + log1p(e^−|x|)`: finite for any logit.
 * Elementwise, no reduction; broadcasts. Its gradient in the logits is `sigmoid(x) − t`.
 *
 * @example
 * bceWithLogits(tensor([0, 100]), tensor([1, 1])); // [0.693…, 0]
 */
export function bceWithLogits(logits: Tensor, targets: Tensor): Tensor {
  checkFloat("bceWithLogits", "logits", logits);
  checkFloat("bceWithLogits", "targets", targets);
  const shape = broadcastShapes("bceWithLogits", logits.shape, targets.shape);
  const dtype = promoteTypes(logits.dtype, targets.dtype);
  const out = elementwise(
    (x, t) => ir.add(ir.sub(ir.max(x, 0), ir.mul(x, t)), log1pExpNegAbs(x)),
    [logits, targets],
    shape,
    dtype,
  );
  return record(
    "bceWithLogits",
    out,
    [logits, targets],
    [(g) => bceLogitsBackward(g, logits, targets), (g) => gradMul(g, neg(logits))],
  );
}

/** @internal `g · (sigmoid(x) − t)` in one pass; linear in `g`. */
function bceLogitsBackward(g: Tensor, x: Tensor, t: Tensor): Tensor {
  const shape = broadcastShapes("bceWithLogits", g.shape, x.shape, t.shape);
  const out = elementwise(
    (gv, xv, tv) => ir.mul(gv, ir.sub(sigmoidOf(xv), tv)),
    [g, x, t],
    shape,
    g.dtype,
  );
  return record(
    "bceLogitsBackward",
    out,
    [g, x, t],
    [
      (h) => bceLogitsBackward(h, x, t),
      (h) => {
        const s = sigmoid(x);
        return mul(mul(h, g), mul(s, sub(1, s)));
      },
      (h) => neg(mul(h, g)),
    ],
  );
}
