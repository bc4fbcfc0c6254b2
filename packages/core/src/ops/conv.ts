/** Spatial ops over NCHW tensors: conv2d with its two backward products as ops of their own, max and average pooling, nearest upsampling. */

import { allocate, type DType, promoteTypes } from "../dtype.js";
import { getBackend } from "../kernels/backend.js";
import type { ConvGeometry, PoolGeometry } from "../kernels/conv.js";
import { checkSize, formatShape } from "../shape.js";
import { type OpAttributes, record } from "../tape.js";
import { Tensor } from "../tensor.js";
import { cast } from "./cast.js";
import { sum } from "./reduce.js";
import { gather } from "./selection.js";
import { broadcastTo, reshape } from "./shape.js";
import { checkFloat, checkOptions } from "./util.js";

/** A size per spatial axis, or one number for both. */
export type Pair = number | readonly [number, number];

/** Options of `conv2d`: bias, stride, padding, dilation and groups, as PyTorch's `F.conv2d`. */
export interface Conv2dOptions {
  /** [Cout], added to every output position of its channel. */
  bias?: Tensor;
  /** Default 1. */
  stride?: Pair;
  /**
   * Zeros around the input: "valid" (none, the default), a number or [h, w] per side, or "same":
   * the output has ceil(H / stride) rows (TensorFlow's rule, which also holds for stride > 1);
   * an odd total goes mostly to the bottom and right, as PyTorch and TensorFlow both do.
   */
  padding?: "same" | "valid" | Pair;
  /** Spacing between kernel taps; default 1. */
  dilation?: Pair;
  /** Channel groups: Cin and Cout split into `groups` independent convolutions. Default 1. */
  groups?: number;
}

/** @internal `value` as [h, w], each an integer >= `min`; errors name `op` and `name`. */
export function pairOf(op: string, name: string, value: Pair, min: number): [number, number] {
  const pair: readonly number[] =
    typeof value === "number" ? [value, value] : Array.isArray(value) ? value : [];
  if (pair.length !== 2 || pair.some((v) => !Number.isInteger(v) || v < min)) {
    const shown = Array.isArray(value) ? `[${value.join(", ")}]` : String(value);
    throw new Error(
      `${op}: ${name} must be an integer >= ${min} or a pair [h, w] of them, got ${shown}`,
    );
  }
  return [pair[0], pair[1]];
}

/** @internal Checks that `t` is a float NCHW tensor. */
export function checkNchw(op: string, name: string, t: Tensor): void {
  checkFloat(op, name, t);
  if (t.rank !== 4) {
    throw new Error(
      `${op}: ${name} must have rank 4 [batch, channels, height, width] (NCHW), got shape ${formatShape(t.shape)}`,
    );
  }
}

/** One spatial axis: output size and padding before, from the input size and the options. */
function convAxis(
  op: string,
  axis: "height" | "width",
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  padding: "same" | "valid" | number,
): [outSize: number, padBefore: number] {
  const extent = dilation * (kernel - 1) + 1;
  let out: number;
  let before: number;
  if (padding === "same") {
    out = Math.ceil(size / stride);
    const total = Math.max(0, (out - 1) * stride + extent - size);
    before = Math.floor(total / 2);
  } else {
    before = padding === "valid" ? 0 : padding;
    out = Math.floor((size + 2 * before - extent) / stride) + 1;
  }
  if (out < 1) {
    throw new Error(
      `${op}: the kernel's ${axis} extent ${extent} (size ${kernel}, dilation ${dilation}) exceeds the padded input ${axis} ${size + 2 * before}; the output would be empty`,
    );
  }
  return [out, before];
}

function paddingPair(
  op: string,
  padding: Conv2dOptions["padding"],
): ["same" | "valid" | number, "same" | "valid" | number] {
  if (padding === undefined || padding === "valid") return ["valid", "valid"];
  if (padding === "same") return ["same", "same"];
  if (typeof padding === "string") {
    throw new Error(
      `${op}: padding must be "same", "valid", an integer >= 0 or a pair [h, w] of them, got "${padding}"`,
    );
  }
  return pairOf(op, "padding", padding, 0);
}

/**
 * 2-D cross-correlation (what deep-learning libraries call convolution) of x [B, Cin, H, W] with
 * w [Cout, Cin / groups, kh, kw] (PyTorch's layouts, so weights move between the two as they are),
 * plus an optional bias [Cout]. Mixed float32/float64 computes in float64. The gradients are
 * ops of their own (a transposed convolution for x, a correlation of x with the upstream
 * gradient for w), each differentiable again, so second derivatives work.
 *
 * @example
 * const x = uniform([8, 3, 32, 32], { seed: 0 });
 * const w = uniform([16, 3, 3, 3], { low: -0.1, high: 0.1, seed: 1 });
 * conv2d(x, w, { padding: "same" }).shape;            // [8, 16, 32, 32]
 * conv2d(x, w, { stride: 2, padding: 1 }).shape;      // [8, 16, 16, 16]
 */
export function conv2d(x: Tensor, w: Tensor, options?: Conv2dOptions): Tensor {
  const op = "conv2d";
  options = checkOptions(op, options, {
    bias: "tensor",
    stride: "pair",
    padding: "any", // "same", "valid" or a pair: paddingPair says which
    dilation: "pair",
    groups: "number",
  });
  checkNchw(op, "x", x);
  checkFloat(op, "w", w);
  if (w.rank !== 4) {
    throw new Error(
      `${op}: w must have rank 4 [outChannels, inChannels / groups, kernelHeight, kernelWidth], got shape ${formatShape(w.shape)}`,
    );
  }
  const groups = options.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) {
    throw new Error(`${op}: groups must be an integer >= 1, got ${groups}`);
  }
  const [batch, inChannels, inHeight, inWidth] = x.shape;
  const [outChannels, wInChannels, kernelHeight, kernelWidth] = w.shape;
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new Error(
      `${op}: groups (${groups}) must divide both the input channels (${inChannels}, x of shape ${formatShape(x.shape)}) and the output channels (${outChannels}, w of shape ${formatShape(w.shape)})`,
    );
  }
  if (wInChannels !== inChannels / groups) {
    throw new Error(
      `${op}: w of shape ${formatShape(w.shape)} expects ${wInChannels * groups} input channels but x of shape ${formatShape(x.shape)} has ${inChannels} (w.shape[1] must be inChannels / groups = ${inChannels / groups})`,
    );
  }
  if (kernelHeight < 1 || kernelWidth < 1) {
    throw new Error(`${op}: w of shape ${formatShape(w.shape)} has an empty kernel`);
  }
  const bias = options.bias;
  if (bias !== undefined) {
    checkFloat(op, "bias", bias);
    if (bias.rank !== 1 || bias.shape[0] !== outChannels) {
      throw new Error(
        `${op}: bias must have shape [${outChannels}] (one per output channel of w ${formatShape(w.shape)}), got ${formatShape(bias.shape)}`,
      );
    }
  }
  const [strideHeight, strideWidth] = pairOf(op, "stride", options.stride ?? 1, 1);
  const [dilationHeight, dilationWidth] = pairOf(op, "dilation", options.dilation ?? 1, 1);
  const [padH, padW] = paddingPair(op, options.padding);
  const [outHeight, padTop] = convAxis(
    op,
    "height",
    inHeight,
    kernelHeight,
    strideHeight,
    dilationHeight,
    padH,
  );
  const [outWidth, padLeft] = convAxis(
    op,
    "width",
    inWidth,
    kernelWidth,
    strideWidth,
    dilationWidth,
    padW,
  );
  const geometry: ConvGeometry = {
    batch,
    inChannels,
    inHeight,
    inWidth,
    outChannels,
    outHeight,
    outWidth,
    kernelHeight,
    kernelWidth,
    strideHeight,
    strideWidth,
    padTop,
    padLeft,
    dilationHeight,
    dilationWidth,
    groups,
  };
  checkSize(op, [batch, outChannels, outHeight, outWidth]);
  let dtype = promoteTypes(x.dtype, w.dtype);
  if (bias !== undefined) dtype = promoteTypes(dtype, bias.dtype);
  return convolve(
    cast(x, dtype),
    cast(w, dtype),
    bias === undefined ? null : cast(bias, dtype),
    geometry,
  );
}

function sameDtype(dtype: DType, ...ts: Tensor[]): Tensor[] {
  return ts.map((t) => cast(t, dtype));
}

/**
 * A window op's geometry as recorded attributes: kernel, stride, dilation and the zeros before and
 * after on each axis ([top, left, bottom, right], so an asymmetric "same" padding is exact).
 */
function windowAttributes(
  g: PoolGeometry | ConvGeometry,
  kernel: [number, number],
  extra: OpAttributes = {},
): OpAttributes {
  const dilation = "dilationHeight" in g ? [g.dilationHeight, g.dilationWidth] : [1, 1];
  // The zeros the last window reaches past the input; negative when rows at the end are never
  // read (a floor-rounded output), where no zeros at all give the same windows.
  const after = (out: number, stride: number, k: number, d: number, size: number, before: number) =>
    Math.max(0, (out - 1) * stride + d * (k - 1) + 1 - size - before);
  const bottom = after(g.outHeight, g.strideHeight, kernel[0], dilation[0], g.inHeight, g.padTop);
  const right = after(g.outWidth, g.strideWidth, kernel[1], dilation[1], g.inWidth, g.padLeft);
  return {
    kernelSize: kernel,
    stride: [g.strideHeight, g.strideWidth],
    padding: [g.padTop, g.padLeft, bottom, right],
    dilation,
    ...extra,
  };
}

/** The forward product, recorded with rules that are the two backward ops. */
function convolve(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry): Tensor {
  const dtype = x.dtype;
  // With a bias, conv2d sets every element (to the bias, then adds); without, it adds into zeros.
  const out = allocate(dtype, g.batch * g.outChannels * g.outHeight * g.outWidth, bias === null);
  getBackend().conv2d(x.read(), w.read(), bias === null ? null : bias.read(), out, g);
  const result = new Tensor(out, [g.batch, g.outChannels, g.outHeight, g.outWidth], dtype);
  const inputs = bias === null ? [x, w] : [x, w, bias];
  return record(
    "conv2d",
    result,
    inputs,
    [
      (dy) => convBackwardInput(dy, w, g),
      (dy) => convBackwardWeight(x, dy, g),
      // Spatial axes first: they are contiguous, so no permuted copy of dy is made.
      (dy) => sum(sum(dy, { axis: [2, 3] }), { axis: 0 }),
    ],
    undefined,
    windowAttributes(g, [g.kernelHeight, g.kernelWidth], { groups: g.groups }),
  );
}

/**
 * conv2d's gradient in x, a transposed convolution of `dy` with `w`. It is bilinear; its own
 * gradients follow from ⟨T(dy, w), G⟩ = ⟨dy, conv(G, w)⟩: conv(G, w) in dy, and the weight
 * gradient of conv at input G against dy in w.
 */
function convBackwardInput(dy: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const [d, k] = sameDtype(promoteTypes(dy.dtype, w.dtype), dy, w);
  const dx = allocate(d.dtype, g.batch * g.inChannels * g.inHeight * g.inWidth);
  getBackend().conv2dBackwardInput(d.read(), k.read(), dx, g);
  const result = new Tensor(dx, [g.batch, g.inChannels, g.inHeight, g.inWidth], d.dtype);
  return record(
    "conv2dBackwardInput",
    result,
    [d, k],
    [
      (upstream) => convolve(upstream, k, null, g),
      (upstream) => convBackwardWeight(upstream, d, g),
    ],
  );
}

/**
 * conv2d's gradient in w, from the input `x` and `dy`. Bilinear too, with
 * ⟨W(x, dy), H⟩ = ⟨dy, conv(x, H)⟩ = ⟨x, T(dy, H)⟩.
 */
function convBackwardWeight(x: Tensor, dy: Tensor, g: ConvGeometry): Tensor {
  const [input, d] = sameDtype(promoteTypes(x.dtype, dy.dtype), x, dy);
  const shape = [g.outChannels, g.inChannels / g.groups, g.kernelHeight, g.kernelWidth];
  const dw = allocate(input.dtype, shape[0] * shape[1] * shape[2] * shape[3]);
  getBackend().conv2dBackwardWeight(input.read(), d.read(), dw, g);
  const result = new Tensor(dw, shape, input.dtype);
  return record(
    "conv2dBackwardWeight",
    result,
    [input, d],
    [
      (upstream) => convBackwardInput(d, upstream, g),
      (upstream) => convolve(input, upstream, null, g),
    ],
  );
}

/** Options of `maxPool2d` and `avgPool2d`: the window, its stride and the zero padding. */
export interface Pool2dOptions {
  /** The window, [h, w] or one size for both. */
  kernelSize: Pair;
  /** Default: the kernel size (non-overlapping windows). */
  stride?: Pair;
  /** Implicit padding on every side, at most half the window (PyTorch's limit). Default 0. */
  padding?: Pair;
}

function poolGeometry(op: string, x: Tensor, options: Pool2dOptions): PoolGeometry {
  checkNchw(op, "x", x);
  checkOptions(op, options, { kernelSize: "pair", stride: "pair", padding: "pair" });
  if (options === undefined || options.kernelSize === undefined) {
    throw new Error(`${op}: options.kernelSize is required, e.g. ${op}(x, { kernelSize: 2 })`);
  }
  const [kernelHeight, kernelWidth] = pairOf(op, "kernelSize", options.kernelSize, 1);
  const [strideHeight, strideWidth] = pairOf(op, "stride", options.stride ?? options.kernelSize, 1);
  const [padTop, padLeft] = pairOf(op, "padding", options.padding ?? 0, 0);
  if (2 * padTop > kernelHeight || 2 * padLeft > kernelWidth) {
    throw new Error(
      `${op}: padding [${padTop}, ${padLeft}] must be at most half of kernelSize [${kernelHeight}, ${kernelWidth}]`,
    );
  }
  const [batch, channels, inHeight, inWidth] = x.shape;
  const outHeight = Math.floor((inHeight + 2 * padTop - kernelHeight) / strideHeight) + 1;
  const outWidth = Math.floor((inWidth + 2 * padLeft - kernelWidth) / strideWidth) + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new Error(
      `${op}: kernelSize [${kernelHeight}, ${kernelWidth}] is larger than the padded input [${inHeight + 2 * padTop}, ${inWidth + 2 * padLeft}] of x with shape ${formatShape(x.shape)}`,
    );
  }
  checkSize(op, [batch, channels, outHeight, outWidth]);
  return {
    planes: batch * channels,
    inHeight,
    inWidth,
    outHeight,
    outWidth,
    kernelHeight,
    kernelWidth,
    strideHeight,
    strideWidth,
    padTop,
    padLeft,
  };
}

/**
 * Maximum over each window of x [B, C, H, W] (padding never wins: it is −∞). The gradient goes
 * to the element that won (an op of its own, whose gradient gathers at the winners, so it is
 * differentiable again). Tie rule: when
 * several elements of a window share the maximum, the first in row-major window order takes the
 * whole gradient (PyTorch's CPU rule); overlapping windows may each send gradient to one element.
 *
 * @example
 * maxPool2d(tensor([[[[1, 2], [3, 4]]]]), { kernelSize: 2 }); // [[[[4]]]]
 * maxPool2d(uniform([1, 8, 32, 32], { seed: 0 }), { kernelSize: 3, stride: 2, padding: 1 }).shape; // [1, 8, 16, 16]
 */
export function maxPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  const g = poolGeometry("maxPool2d", x, options);
  const [batch, channels] = x.shape;
  const outShape = [batch, channels, g.outHeight, g.outWidth];
  const out = allocate(x.dtype, g.planes * g.outHeight * g.outWidth, false);
  // Where the backend keeps tensors' data (wasm memory), the winners go there too: the adjoint
  // then reads them in place.
  const argmax = allocate("int32", out.length, false);
  getBackend().maxPool2d(x.read(), out, argmax, g);
  const result = new Tensor(out, outShape, x.dtype);
  return record(
    "maxPool2d",
    result,
    [x],
    [(dy) => maxPoolBackward(dy, argmax, x.shape, g)],
    undefined,
    windowAttributes(g, [g.kernelHeight, g.kernelWidth]),
  );
}

/** dx of shape `shape` with every dy[o] added at the flat position argmax[o]; its gradient gathers there. */
function maxPoolBackward(
  dy: Tensor,
  argmax: Int32Array,
  shape: readonly number[],
  g: PoolGeometry,
): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const dx = allocate(dy.dtype, size);
  getBackend().maxPool2dBackward(dy.read(), argmax, dx, g);
  const result = new Tensor(dx, shape, dy.dtype);
  return record(
    "maxPool2dBackward",
    result,
    [dy],
    [
      (upstream) =>
        reshape(
          gather(reshape(upstream, [-1]), new Tensor(argmax, [argmax.length], "int32")),
          dy.shape,
        ),
    ],
  );
}

/**
 * Mean over each window of x [B, C, H, W]; zero padding counts towards the mean (PyTorch's
 * default `count_include_pad: true`). Linear, so its gradient is the adjoint op, whose own
 * gradient is avgPool2d again.
 *
 * @example
 * avgPool2d(tensor([[[[1, 2], [3, 4]]]]), { kernelSize: 2 }); // [[[[2.5]]]]
 */
export function avgPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  const g = poolGeometry("avgPool2d", x, options);
  return averagePool(x, g);
}

function averagePool(x: Tensor, g: PoolGeometry): Tensor {
  const [batch, channels] = x.shape;
  const out = allocate(x.dtype, g.planes * g.outHeight * g.outWidth, false);
  getBackend().avgPool2d(x.read(), out, g);
  const result = new Tensor(out, [batch, channels, g.outHeight, g.outWidth], x.dtype);
  return record(
    "avgPool2d",
    result,
    [x],
    [(dy) => averagePoolBackward(dy, x.shape, g)],
    undefined,
    windowAttributes(g, [g.kernelHeight, g.kernelWidth]),
  );
}

function averagePoolBackward(dy: Tensor, shape: readonly number[], g: PoolGeometry): Tensor {
  const dx = allocate(dy.dtype, g.planes * g.inHeight * g.inWidth);
  getBackend().avgPool2dBackward(dy.read(), dx, g);
  const result = new Tensor(dx, shape, dy.dtype);
  return record("avgPool2dBackward", result, [dy], [(upstream) => averagePool(upstream, g)]);
}

/** Options of `upsampleNearest2d`: the integer scale factor. */
export interface UpsampleOptions {
  /** A positive integer per axis (or one for both): every pixel becomes a block of this size. */
  scaleFactor: Pair;
}

/**
 * Nearest-neighbour upsampling of x [B, C, H, W] by integer factors, as an FPN's top-down path
 * needs: out[b, c, i, j] = x[b, c, ⌊i / sh⌋, ⌊j / sw⌋]. Built from reshape and broadcastTo, so
 * its gradient (a sum over each block) and all higher ones come from those ops.
 *
 * @example
 * upsampleNearest2d(tensor([[[[1, 2]]]]), { scaleFactor: 2 }); // [[[[1, 1, 2, 2], [1, 1, 2, 2]]]]
 */
export function upsampleNearest2d(x: Tensor, options: UpsampleOptions): Tensor {
  const op = "upsampleNearest2d";
  checkNchw(op, "x", x);
  checkOptions(op, options, { scaleFactor: "pair" });
  if (options === undefined || options.scaleFactor === undefined) {
    throw new Error(`${op}: options.scaleFactor is required, e.g. ${op}(x, { scaleFactor: 2 })`);
  }
  const [sh, sw] = pairOf(op, "scaleFactor", options.scaleFactor, 1);
  if (sh === 1 && sw === 1) return x;
  const [b, c, h, w] = x.shape;
  checkSize(op, [b, c, h * sh, w * sw]);
  const blocks = broadcastTo(reshape(x, [b, c, h, 1, w, 1]), [b, c, h, sh, w, sw]);
  return reshape(blocks, [b, c, h * sh, w * sw]);
}
