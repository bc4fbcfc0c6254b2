/** Box coders: regression targets of boxes relative to anchors, and the boxes back from predicted deltas. */

import {
  add,
  cast,
  clip,
  concat,
  div,
  exp,
  isFloat,
  log,
  mul,
  promoteTypes,
  type Shape,
  slice,
  sub,
  type Tensor,
  tensor,
} from "@focalgrad/core";
import {
  checkBoxValues,
  checkLossOptions,
  checkTensorArg,
  describeTensor,
  isPositiveFinite,
} from "./common.js";

/**
 * Encodes boxes as regression targets relative to anchors and decodes predicted deltas back into
 * boxes. Boxes and anchors are `[..., 4]` as (x1, y1, x2, y2) in pixels; leading axes broadcast
 * (anchors `[N, 4]` against deltas `[B, N, 4]` gives `[B, N, 4]`).
 */
export interface BoxCoder {
  /**
   * The regression targets `[..., 4]` of `boxes` relative to `anchors`, in the promoted dtype of
   * the two. Both are data: they must be finite and every anchor must have x2 > x1 and y2 > y1.
   */
  encode(anchors: Tensor, boxes: Tensor): Tensor;
  /**
   * The boxes `[..., 4]` that `deltas` describe relative to `anchors`, in the dtype of `deltas`
   * (anchors are cast to it, as torchvision does). Composed of core ops, so it is differentiable
   * in both arguments.
   */
  decode(anchors: Tensor, deltas: Tensor): Tensor;
}

type Quadruple = readonly [number, number, number, number];

function checkQuadruple(
  op: string,
  name: string,
  value: unknown,
  test: (v: number) => boolean,
  what: string,
): Quadruple {
  if (
    !Array.isArray(value) ||
    value.length !== 4 ||
    !value.every((v) => typeof v === "number" && test(v))
  ) {
    throw new Error(`${op}: ${name} must be 4 ${what}, got ${JSON.stringify(value)}`);
  }
  return value as unknown as Quadruple;
}

/** A float tensor `[..., 4]`. */
function checkBoxesArg(op: string, name: string, value: unknown): Tensor {
  checkTensorArg(op, name, value);
  if (!isFloat(value.dtype) || value.rank < 1 || value.shape[value.rank - 1] !== 4) {
    throw new Error(
      `${op}: ${name} must be a float32 or float64 tensor of shape [..., 4] (x1, y1, x2, y2), ` +
        `got ${describeTensor(value)}`,
    );
  }
  return value;
}

/** NumPy broadcasting of the leading axes, checked here so that the error names this op. */
function checkBroadcast(
  op: string,
  [nameA, a]: [string, Tensor],
  [nameB, b]: [string, Tensor],
): void {
  const lead = (s: Shape) => s.slice(0, -1);
  const x = lead(a.shape);
  const y = lead(b.shape);
  for (let i = 1; i <= Math.min(x.length, y.length); i++) {
    const p = x[x.length - i];
    const q = y[y.length - i];
    if (p !== q && p !== 1 && q !== 1) {
      throw new Error(
        `${op}: the leading axes of ${nameA} [${a.shape.join(", ")}] and ${nameB} ` +
          `[${b.shape.join(", ")}] cannot be broadcast together`,
      );
    }
  }
}

/** The four columns of `[..., 4]`, each `[..., 1]`. */
function columns(t: Tensor): [Tensor, Tensor, Tensor, Tensor] {
  const size = [...t.shape.slice(0, -1).map(() => -1), 1];
  const column = (k: number) => slice(t, [...t.shape.slice(0, -1).map(() => 0), k], size);
  return [column(0), column(1), column(2), column(3)];
}

function checkEncodeArgs(
  op: string,
  anchors: unknown,
  boxes: unknown,
  positiveBoxSize: boolean,
): [Tensor, Tensor] {
  const a = checkBoxesArg(op, "anchors", anchors);
  const b = checkBoxesArg(op, "boxes", boxes);
  checkBroadcast(op, ["anchors", a], ["boxes", b]);
  checkBoxValues(op, "anchors", a, true);
  checkBoxValues(op, "boxes", b, positiveBoxSize);
  const dtype = promoteTypes(a.dtype, b.dtype);
  return [a.dtype === dtype ? a : cast(a, dtype), b.dtype === dtype ? b : cast(b, dtype)];
}

function checkDecodeArgs(op: string, anchors: unknown, deltas: unknown): [Tensor, Tensor] {
  const a = checkBoxesArg(op, "anchors", anchors);
  const d = checkBoxesArg(op, "deltas", deltas);
  checkBroadcast(op, ["anchors", a], ["deltas", d]);
  return [a.dtype === d.dtype ? a : cast(a, d.dtype), d];
}

export interface CornerBoxCoderOptions {
  /** Subtracted from the raw offsets before dividing by `std`. Default [0, 0, 0, 0]. */
  mean?: readonly number[];
  /** Divides the offsets; all > 0. Default [0.2, 0.2, 0.2, 0.2]. */
  std?: readonly number[];
}

/**
 * keras-retinanet's box coder (`bbox_transform` / `bbox_transform_inv`): each corner's offset from
 * the anchor's corner, as a fraction of the anchor's width (x) or height (y), normalised by a mean
 * and standard deviation:
 *
 * ```
 * w = ax2 - ax1, h = ay2 - ay1
 * encode: t = ([bx1 - ax1, by1 - ay1, bx2 - ax2, by2 - ay2] / [w, h, w, h] - mean) / std
 * decode: b = a + (d · std + mean) · [w, h, w, h]
 * ```
 *
 * The defaults (mean 0, std 0.2) are keras-retinanet's. Nothing is clamped: a corner moves
 * linearly with its delta.
 *
 * @example
 * const coder = cornerBoxCoder();
 * const anchors = tensor([[0, 0, 10, 20]]);
 * coder.encode(anchors, tensor([[1, 2, 13, 18]])); // [[0.5, 0.5, 1.5, -0.5]]
 * coder.decode(anchors, tensor([[0.5, 0.5, 1.5, -0.5]])); // [[1, 2, 13, 18]]
 */
export function cornerBoxCoder(options: CornerBoxCoderOptions = {}): BoxCoder {
  const op = "cornerBoxCoder";
  checkLossOptions(op, options, ["mean", "std"]);
  const mean = checkQuadruple(
    op,
    "mean",
    options.mean ?? [0, 0, 0, 0],
    Number.isFinite,
    "finite numbers",
  );
  const std = checkQuadruple(
    op,
    "std",
    options.std ?? [0.2, 0.2, 0.2, 0.2],
    isPositiveFinite,
    "finite numbers > 0",
  );
  const sizes = (anchors: Tensor) => {
    const [x1, y1, x2, y2] = columns(anchors);
    const width = sub(x2, x1);
    const height = sub(y2, y1);
    return concat([width, height, width, height], -1);
  };
  return {
    encode(anchors, boxes) {
      const [a, b] = checkEncodeArgs(`${op}.encode`, anchors, boxes, false);
      const offsets = div(sub(b, a), sizes(a));
      return div(
        sub(offsets, tensor([...mean], { dtype: a.dtype })),
        tensor([...std], { dtype: a.dtype }),
      );
    },
    decode(anchors, deltas) {
      const [a, d] = checkDecodeArgs(`${op}.decode`, anchors, deltas);
      const offsets = add(
        mul(d, tensor([...std], { dtype: d.dtype })),
        tensor([...mean], { dtype: d.dtype }),
      );
      return add(a, mul(offsets, sizes(a)));
    },
  };
}

export interface CenterBoxCoderOptions {
  /** (wx, wy, ww, wh), multiplying (dx, dy, dw, dh); all > 0. Default [1, 1, 1, 1]. */
  weights?: readonly number[];
  /** Upper bound of dw and dh (after dividing by the weights) in `decode`. Default log(1000 / 16). */
  clip?: number;
}

/**
 * torchvision's `BoxCoder`: the centre offset as a fraction of the anchor's size and the log of
 * the size ratio, each multiplied by a weight:
 *
 * ```
 * encode: dx = wx · (bcx - acx) / aw, dy = wy · (bcy - acy) / ah,
 *         dw = ww · log(bw / aw),     dh = wh · log(bh / ah)
 * decode: cx = dx / wx · aw + acx, w = exp(min(dw / ww, clip)) · aw (y and h alike),
 *         box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
 * ```
 *
 * Weights (1, 1, 1, 1) are the default and torchvision's RetinaNet's; (10, 10, 5, 5) are its
 * Faster R-CNN box head's. `decode` clamps dw and dh from above at `clip` (default log(1000 / 16),
 * torchvision's `bbox_xform_clip`) so that `exp` cannot overflow; the gradient passes at exactly
 * `clip` and is 0 above it, as with `torch.clamp`. `encode` needs boxes with x2 > x1 and y2 > y1
 * (it takes their log-size).
 *
 * @example
 * const coder = centerBoxCoder();
 * const anchors = tensor([[0, 0, 10, 20]], { dtype: "float64" });
 * coder.encode(anchors, tensor([[1, 2, 13, 18]], { dtype: "float64" })); // [[0.2, 0, log 1.2, log 0.8]]
 * coder.decode(anchors, tensor([[0, 0, 10, 0]], { dtype: "float64" })); // [[-307.5, 0, 317.5, 20]] (dw clamped)
 */
export function centerBoxCoder(options: CenterBoxCoderOptions = {}): BoxCoder {
  const op = "centerBoxCoder";
  checkLossOptions(op, options, ["weights", "clip"]);
  const weights = checkQuadruple(
    op,
    "weights",
    options.weights ?? [1, 1, 1, 1],
    isPositiveFinite,
    "finite numbers > 0",
  );
  const bound = options.clip ?? Math.log(1000 / 16);
  if (typeof bound !== "number" || Number.isNaN(bound)) {
    throw new Error(
      `${op}: clip must be a number (Infinity turns the clamp off), got ${String(bound)}`,
    );
  }
  const [wx, wy, ww, wh] = weights;
  const geometry = (boxes: Tensor) => {
    const [x1, y1, x2, y2] = columns(boxes);
    const width = sub(x2, x1);
    const height = sub(y2, y1);
    return { width, height, cx: add(x1, mul(0.5, width)), cy: add(y1, mul(0.5, height)) };
  };
  return {
    encode(anchors, boxes) {
      const [a, b] = checkEncodeArgs(`${op}.encode`, anchors, boxes, true);
      const anchor = geometry(a);
      const box = geometry(b);
      return concat(
        [
          div(mul(wx, sub(box.cx, anchor.cx)), anchor.width),
          div(mul(wy, sub(box.cy, anchor.cy)), anchor.height),
          mul(ww, log(div(box.width, anchor.width))),
          mul(wh, log(div(box.height, anchor.height))),
        ],
        -1,
      );
    },
    decode(anchors, deltas) {
      const [a, d] = checkDecodeArgs(`${op}.decode`, anchors, deltas);
      const anchor = geometry(a);
      const [dx, dy, dw, dh] = columns(d);
      const cx = add(mul(div(dx, wx), anchor.width), anchor.cx);
      const cy = add(mul(div(dy, wy), anchor.height), anchor.cy);
      const halfWidth = mul(0.5, mul(exp(clip(div(dw, ww), -Infinity, bound)), anchor.width));
      const halfHeight = mul(0.5, mul(exp(clip(div(dh, wh), -Infinity, bound)), anchor.height));
      return concat(
        [sub(cx, halfWidth), sub(cy, halfHeight), add(cx, halfWidth), add(cy, halfHeight)],
        -1,
      );
    },
  };
}
