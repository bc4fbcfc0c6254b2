/** Convolution and pooling kernels over NCHW typed arrays: im2col + gemm for conv2d's three products, direct loops for pools. */

import type { DataArray } from "../dtype.js";
import type { Gemm } from "./backend.js";

/**
 * Everything a convolution kernel needs to know, resolved by the op: sizes, strides, the padding
 * before the first row and column (the padding after is implied by the output size, which allows
 * the asymmetric padding of "same" with an even kernel), dilations and groups.
 */
export interface ConvGeometry {
  /** Images in the batch, B. */
  batch: number;
  /** Input channels, Cin (all groups together). */
  inChannels: number;
  /** Input height, H. */
  inHeight: number;
  /** Input width, W. */
  inWidth: number;
  /** Output channels, Cout (all groups together). */
  outChannels: number;
  /** Output height, Ho. */
  outHeight: number;
  /** Output width, Wo. */
  outWidth: number;
  /** Kernel height, kh. */
  kernelHeight: number;
  /** Kernel width, kw. */
  kernelWidth: number;
  /** Step between output rows, in input rows. */
  strideHeight: number;
  /** Step between output columns, in input columns. */
  strideWidth: number;
  /** Zero rows before the first input row. */
  padTop: number;
  /** Zero columns before the first input column. */
  padLeft: number;
  /** Spacing between kernel rows, in input rows (1: adjacent). */
  dilationHeight: number;
  /** Spacing between kernel columns, in input columns (1: adjacent). */
  dilationWidth: number;
  /** Channel groups: each output channel sees `inChannels / groups` input channels. */
  groups: number;
}

// One im2col block per precision, reused by every call (kernels run synchronously). A float32
// convolution keeps float32 columns: they are copies of float32 inputs, so nothing is rounded, and
// the block is half the bytes.
let columns64 = new Float64Array(0);
let columns32 = new Float32Array(0);

/** An im2col block: float32 for float32 convolutions, float64 otherwise. */
export type Columns = Float32Array | Float64Array;

function columnScratch(size: number, like: DataArray): Columns {
  if (like instanceof Float32Array) {
    if (columns32.length < size) columns32 = new Float32Array(size);
    return columns32;
  }
  if (columns64.length < size) columns64 = new Float64Array(size);
  return columns64;
}

/**
 * Elements per im2col block, as a backend prefers it: the columns are built a few output rows at
 * a time so that the block stays in cache between im2col writing it and the gemm packing it,
 * instead of a whole image's matrix (9 MiB for 32 channels, 3 × 3, 64 × 64) making a round trip
 * through memory. The JavaScript backend's default.
 */
export const COLUMN_BLOCK = 1 << 16;

/** A block size that overrides every backend's (tests set it to exercise one-row blocks). */
let blockOverride: number | null = null;

/**
 * @internal For tests and benchmarks: sets the im2col block size in elements for every backend
 * (null: each backend's own) and returns the previous setting.
 */
export function setColumnBlock(elements: number | null): number | null {
  const previous = blockOverride;
  blockOverride = elements === null ? null : Math.max(1, Math.floor(elements));
  return previous;
}

/** Elements per im2col block: the tests' override, else the backend's `block`. */
export function columnBlock(block: number): number {
  return blockOverride ?? block;
}

/** Output rows per im2col block. */
export function blockRows(g: ConvGeometry, block: number): number {
  const rowElements = g.inChannels * g.kernelHeight * g.kernelWidth * g.outWidth;
  return Math.max(1, Math.min(g.outHeight, Math.floor(columnBlock(block) / rowElements)));
}

/** A 1 × 1, stride-1, unpadded convolution is a plain product: the image is its own im2col matrix. */
export function isPointwise(g: ConvGeometry): boolean {
  return (
    g.kernelHeight === 1 &&
    g.kernelWidth === 1 &&
    g.strideHeight === 1 &&
    g.strideWidth === 1 &&
    g.padTop === 0 &&
    g.padLeft === 0 &&
    g.outHeight === g.inHeight &&
    g.outWidth === g.inWidth
  );
}

/** The first output column whose tap at offset `shift` (ix = ox · stride + shift) is >= 0. */
function firstValid(shift: number, stride: number, outSize: number): number {
  return shift >= 0 ? 0 : Math.min(outSize, Math.ceil(-shift / stride));
}

/** One past the last output column whose tap at offset `shift` is < size. */
function endValid(shift: number, stride: number, outSize: number, size: number): number {
  return Math.min(outSize, Math.max(0, Math.ceil((size - shift) / stride)));
}

/**
 * The im2col block of output rows [oy0, oy1) of one image (at `xOffset`): with
 * n = (oy1 − oy0) · Wo columns, col[(c · kh + ky) · kw + kx, (oy − oy0) · Wo + ox] =
 * x[c, oy·sh − pt + ky·dh, ox·sw − pl + kx·dw], 0 in the padding.
 */
function im2col(
  x: DataArray,
  xOffset: number,
  g: ConvGeometry,
  col: Columns,
  oy0: number,
  oy1: number,
): void {
  const { inChannels, inHeight, inWidth, outWidth, kernelHeight, kernelWidth } = g;
  const { strideHeight, strideWidth, padTop, padLeft, dilationHeight, dilationWidth } = g;
  const plane = inHeight * inWidth;
  let o = 0;
  for (let c = 0; c < inChannels; c++) {
    const channel = xOffset + c * plane;
    for (let ky = 0; ky < kernelHeight; ky++) {
      const rowShift = ky * dilationHeight - padTop;
      for (let kx = 0; kx < kernelWidth; kx++) {
        const colShift = kx * dilationWidth - padLeft;
        const lo = firstValid(colShift, strideWidth, outWidth);
        const hi = Math.max(lo, endValid(colShift, strideWidth, outWidth, inWidth));
        for (let oy = oy0; oy < oy1; oy++) {
          const iy = oy * strideHeight + rowShift;
          if (iy < 0 || iy >= inHeight) {
            col.fill(0, o, o + outWidth);
            o += outWidth;
            continue;
          }
          const src = channel + iy * inWidth + colShift;
          for (let ox = 0; ox < lo; ox++) col[o + ox] = 0;
          if (strideWidth === 1) for (let ox = lo; ox < hi; ox++) col[o + ox] = x[src + ox];
          else for (let ox = lo; ox < hi; ox++) col[o + ox] = x[src + ox * strideWidth];
          for (let ox = hi; ox < outWidth; ox++) col[o + ox] = 0;
          o += outWidth;
        }
      }
    }
  }
}

/** The adjoint of `im2col`: adds every entry of the block back onto the input pixel it came from. */
function col2im(
  col: Columns,
  g: ConvGeometry,
  dx: DataArray,
  dxOffset: number,
  oy0: number,
  oy1: number,
): void {
  const { inChannels, inHeight, inWidth, outWidth, kernelHeight, kernelWidth } = g;
  const { strideHeight, strideWidth, padTop, padLeft, dilationHeight, dilationWidth } = g;
  const plane = inHeight * inWidth;
  let o = 0;
  for (let c = 0; c < inChannels; c++) {
    const channel = dxOffset + c * plane;
    for (let ky = 0; ky < kernelHeight; ky++) {
      const rowShift = ky * dilationHeight - padTop;
      for (let kx = 0; kx < kernelWidth; kx++) {
        const colShift = kx * dilationWidth - padLeft;
        const lo = firstValid(colShift, strideWidth, outWidth);
        const hi = Math.max(lo, endValid(colShift, strideWidth, outWidth, inWidth));
        for (let oy = oy0; oy < oy1; oy++) {
          const iy = oy * strideHeight + rowShift;
          if (iy >= 0 && iy < inHeight) {
            const dst = channel + iy * inWidth + colShift;
            for (let ox = lo; ox < hi; ox++) dx[dst + ox * strideWidth] += col[o + ox];
          }
          o += outWidth;
        }
      }
    }
  }
}

/**
 * Where a convolution's im2col blocks live and what builds them. A backend may keep them in its
 * own memory, where its gemm reads them without a copy.
 */
export interface ColumnSource {
  /** A block of at least `size` elements of `like`'s precision, for the convolution `g`. */
  scratch(size: number, like: DataArray, g: ConvGeometry): Columns;
  /** The im2col block of output rows [oy0, oy1) of the image at `xOffset`, into `col`. */
  im2col(
    x: DataArray,
    xOffset: number,
    g: ConvGeometry,
    col: Columns,
    oy0: number,
    oy1: number,
  ): void;
}

/** Blocks in JavaScript arrays, built by the loops above: the reference and the fallback. */
export const javascriptColumns: ColumnSource = { scratch: columnScratch, im2col };

/** Sizes shared by the three products. */
function layout(g: ConvGeometry, block: number) {
  const taps = g.kernelHeight * g.kernelWidth;
  const outPlane = g.outHeight * g.outWidth;
  return {
    inGroup: g.inChannels / g.groups,
    outGroup: g.outChannels / g.groups,
    /** The gemm depth of one group: Cin/G · kh · kw. */
    depth: (g.inChannels / g.groups) * taps,
    outPlane,
    inImage: g.inChannels * g.inHeight * g.inWidth,
    outImage: g.outChannels * outPlane,
    rows: blockRows(g, block),
    allDepth: g.inChannels * taps,
  };
}

/** out = conv2d(x, w) + bias: per image, block of output rows and group, W[g] · im2col block of g. */
export function conv2dInto(
  x: DataArray,
  w: DataArray,
  bias: DataArray | null,
  out: DataArray,
  g: ConvGeometry,
  gemm: Gemm,
  block = COLUMN_BLOCK,
  columns = javascriptColumns,
): void {
  const { outGroup, depth, outPlane, inImage, outImage, rows, allDepth } = layout(g, block);
  const pointwise = isPointwise(g);
  const col = pointwise ? null : columns.scratch(allDepth * rows * g.outWidth, out, g);
  for (let b = 0; b < g.batch; b++) {
    const outBase = b * outImage;
    if (bias !== null) {
      for (let c = 0; c < g.outChannels; c++) {
        out.fill(bias[c], outBase + c * outPlane, outBase + (c + 1) * outPlane);
      }
    }
    if (col === null) {
      for (let gi = 0; gi < g.groups; gi++) {
        gemm(
          outGroup,
          outPlane,
          depth,
          w,
          gi * outGroup * depth,
          depth,
          1,
          x,
          b * inImage + gi * depth * outPlane,
          outPlane,
          1,
          out,
          outBase + gi * outGroup * outPlane,
          outPlane,
        );
      }
      continue;
    }
    for (let oy0 = 0; oy0 < g.outHeight; oy0 += rows) {
      const oy1 = Math.min(g.outHeight, oy0 + rows);
      const n = (oy1 - oy0) * g.outWidth;
      columns.im2col(x, b * inImage, g, col, oy0, oy1);
      for (let gi = 0; gi < g.groups; gi++) {
        gemm(
          outGroup,
          n,
          depth,
          w,
          gi * outGroup * depth,
          depth,
          1,
          col,
          gi * depth * n,
          n,
          1,
          out,
          outBase + gi * outGroup * outPlane + oy0 * g.outWidth,
          outPlane,
        );
      }
    }
  }
}

/** A forward convolution with `conv2dInto`'s contract (out += conv(x, w) without a bias; out = conv + bias with one). */
export type ConvForward = (
  x: DataArray,
  w: DataArray,
  bias: DataArray | null,
  out: DataArray,
  geometry: ConvGeometry,
) => void;

// The flipped, channel-swapped weights of a stride-1 backward-input pass, reused between calls.
let flipped = new Float64Array(0);

/**
 * dx += conv2d's gradient in x. With stride 1 this is itself a convolution of dy with the
 * kernel flipped in space and its channel axes swapped, padded by (extent − 1 − pad): that runs
 * as a forward pass, whose gemm has depth Cout · kh · kw, instead of the im2col route below,
 * whose gemm has depth Cout only and spends its time loading and storing C. `forward` runs that
 * pass (a backend may have a faster one than `conv2dInto` on `gemm`).
 */
export function conv2dBackwardInputInto(
  dy: DataArray,
  w: DataArray,
  dx: DataArray,
  g: ConvGeometry,
  gemm: Gemm,
  block = COLUMN_BLOCK,
  columns = javascriptColumns,
  forward: ConvForward = (x, w, bias, out, geometry) =>
    conv2dInto(x, w, bias, out, geometry, gemm, block, columns),
): void {
  const { inGroup, outGroup, depth, outPlane, inImage, outImage, rows, allDepth } = layout(
    g,
    block,
  );
  const pointwise = isPointwise(g);
  if (g.strideHeight === 1 && g.strideWidth === 1 && !pointwise) {
    const { kernelHeight: kh, kernelWidth: kw } = g;
    const taps = kh * kw;
    if (flipped.length < w.length) flipped = new Float64Array(w.length);
    // flipped[(gi · Cin/G + ci), co, ky, kx] = w[gi · Cout/G + co, ci, kh − 1 − ky, kw − 1 − kx].
    for (let gi = 0; gi < g.groups; gi++) {
      for (let co = 0; co < outGroup; co++) {
        for (let ci = 0; ci < inGroup; ci++) {
          const src = ((gi * outGroup + co) * inGroup + ci) * taps;
          const dst = ((gi * inGroup + ci) * outGroup + co) * taps;
          for (let t = 0; t < taps; t++) flipped[dst + t] = w[src + taps - 1 - t];
        }
      }
    }
    const transposed: ConvGeometry = {
      ...g,
      inChannels: g.outChannels,
      inHeight: g.outHeight,
      inWidth: g.outWidth,
      outChannels: g.inChannels,
      outHeight: g.inHeight,
      outWidth: g.inWidth,
      padTop: g.dilationHeight * (kh - 1) - g.padTop,
      padLeft: g.dilationWidth * (kw - 1) - g.padLeft,
    };
    forward(dy, flipped, null, dx, transposed);
    return;
  }
  // Otherwise: per image and block of output rows, W[g]ᵀ · dy[g] into an im2col block, then
  // col2im. Wᵀ is read by swapping W's strides: no transpose copy.
  const col = pointwise ? null : columns.scratch(allDepth * rows * g.outWidth, dx, g);
  for (let b = 0; b < g.batch; b++) {
    if (col === null) {
      for (let gi = 0; gi < g.groups; gi++) {
        gemm(
          depth,
          outPlane,
          outGroup,
          w,
          gi * outGroup * depth,
          1,
          depth,
          dy,
          b * outImage + gi * outGroup * outPlane,
          outPlane,
          1,
          dx,
          b * inImage + gi * depth * outPlane,
          outPlane,
        );
      }
      continue;
    }
    for (let oy0 = 0; oy0 < g.outHeight; oy0 += rows) {
      const oy1 = Math.min(g.outHeight, oy0 + rows);
      const n = (oy1 - oy0) * g.outWidth;
      col.fill(0, 0, allDepth * n);
      for (let gi = 0; gi < g.groups; gi++) {
        gemm(
          depth,
          n,
          outGroup,
          w,
          gi * outGroup * depth,
          1,
          depth,
          dy,
          b * outImage + gi * outGroup * outPlane + oy0 * g.outWidth,
          outPlane,
          1,
          col,
          gi * depth * n,
          n,
        );
      }
      col2im(col, g, dx, b * inImage, oy0, oy1);
    }
  }
}

/** dw += conv2d's gradient in w: per image, block of output rows and group, dy[g] · (im2col block of g)ᵀ. */
export function conv2dBackwardWeightInto(
  x: DataArray,
  dy: DataArray,
  dw: DataArray,
  g: ConvGeometry,
  gemm: Gemm,
  block = COLUMN_BLOCK,
  columns = javascriptColumns,
): void {
  const { outGroup, depth, outPlane, inImage, outImage, rows, allDepth } = layout(g, block);
  const pointwise = isPointwise(g);
  const col = pointwise ? null : columns.scratch(allDepth * rows * g.outWidth, dw, g);
  for (let b = 0; b < g.batch; b++) {
    if (col === null) {
      for (let gi = 0; gi < g.groups; gi++) {
        gemm(
          outGroup,
          depth,
          outPlane,
          dy,
          b * outImage + gi * outGroup * outPlane,
          outPlane,
          1,
          x,
          b * inImage + gi * depth * outPlane,
          1,
          outPlane,
          dw,
          gi * outGroup * depth,
          depth,
        );
      }
      continue;
    }
    for (let oy0 = 0; oy0 < g.outHeight; oy0 += rows) {
      const oy1 = Math.min(g.outHeight, oy0 + rows);
      const n = (oy1 - oy0) * g.outWidth;
      columns.im2col(x, b * inImage, g, col, oy0, oy1);
      // The block is read transposed through its strides.
      for (let gi = 0; gi < g.groups; gi++) {
        gemm(
          outGroup,
          depth,
          n,
          dy,
          b * outImage + gi * outGroup * outPlane + oy0 * g.outWidth,
          outPlane,
          1,
          col,
          gi * depth * n,
          1,
          n,
          dw,
          gi * outGroup * depth,
          depth,
        );
      }
    }
  }
}

/** The window of a 2-D pool over `planes` independent H × W planes (batch × channels). */
export interface PoolGeometry {
  /** Batch × channels: the number of independent H × W planes pooled. */
  planes: number;
  /** Input height, in pixels. */
  inHeight: number;
  /** Input width, in pixels. */
  inWidth: number;
  /** Output height, in windows. */
  outHeight: number;
  /** Output width, in windows. */
  outWidth: number;
  /** Window height. */
  kernelHeight: number;
  /** Window width. */
  kernelWidth: number;
  /** Vertical step between windows. */
  strideHeight: number;
  /** Horizontal step between windows. */
  strideWidth: number;
  /** Padding above the input, in pixels (`maxPool2d` and `avgPool2d` say how padded cells count). */
  padTop: number;
  /** Padding left of the input, in pixels. */
  padLeft: number;
}

/**
 * Max over each window, and the flat index into x of the element that won. Ties go to the first
 * maximum in row-major window order (PyTorch's CPU rule); the first NaN wins and propagates.
 */
export function maxPool2dInto(
  x: DataArray,
  out: DataArray,
  argmax: Int32Array,
  g: PoolGeometry,
): void {
  const plane = g.inHeight * g.inWidth;
  let o = 0;
  for (let p = 0; p < g.planes; p++) {
    const base = p * plane;
    for (let oy = 0; oy < g.outHeight; oy++) {
      const y0 = oy * g.strideHeight - g.padTop;
      const yLo = Math.max(0, y0);
      const yHi = Math.min(g.inHeight, y0 + g.kernelHeight);
      for (let ox = 0; ox < g.outWidth; ox++) {
        const x0 = ox * g.strideWidth - g.padLeft;
        const xLo = Math.max(0, x0);
        const xHi = Math.min(g.inWidth, x0 + g.kernelWidth);
        let best = -Infinity;
        let at = base + yLo * g.inWidth + xLo;
        for (let iy = yLo; iy < yHi; iy++) {
          const row = base + iy * g.inWidth;
          for (let ix = xLo; ix < xHi; ix++) {
            const v = x[row + ix];
            if (v > best || (Number.isNaN(v) && !Number.isNaN(best))) {
              best = v;
              at = row + ix;
            }
          }
        }
        out[o] = best;
        argmax[o] = at;
        o++;
      }
    }
  }
}

/**
 * The adjoint of `maxPool2dInto` in x: dx[argmax[o]] += dy[o] for every output o (an element that
 * wins several overlapping windows gets each window's gradient).
 */
export function maxPool2dBackwardInto(dy: DataArray, argmax: Int32Array, dx: DataArray): void {
  for (let o = 0; o < argmax.length; o++) dx[argmax[o]] += dy[o];
}

/**
 * Mean over each window, counting the zero padding (PyTorch's default `count_include_pad`), so
 * that every output divides by kh · kw and the op is exactly linear with a simple adjoint.
 */
export function avgPool2dInto(x: DataArray, out: DataArray, g: PoolGeometry): void {
  const plane = g.inHeight * g.inWidth;
  const scale = 1 / (g.kernelHeight * g.kernelWidth);
  let o = 0;
  for (let p = 0; p < g.planes; p++) {
    const base = p * plane;
    for (let oy = 0; oy < g.outHeight; oy++) {
      const y0 = oy * g.strideHeight - g.padTop;
      const yLo = Math.max(0, y0);
      const yHi = Math.min(g.inHeight, y0 + g.kernelHeight);
      for (let ox = 0; ox < g.outWidth; ox++) {
        const x0 = ox * g.strideWidth - g.padLeft;
        const xLo = Math.max(0, x0);
        const xHi = Math.min(g.inWidth, x0 + g.kernelWidth);
        let total = 0;
        for (let iy = yLo; iy < yHi; iy++) {
          const row = base + iy * g.inWidth;
          for (let ix = xLo; ix < xHi; ix++) total += x[row + ix];
        }
        out[o++] = total * scale;
      }
    }
  }
}

/** The adjoint of `avgPool2dInto`: dx[window] += dy / (kh · kw) for every window. */
export function avgPool2dBackwardInto(dy: DataArray, dx: DataArray, g: PoolGeometry): void {
  const plane = g.inHeight * g.inWidth;
  const scale = 1 / (g.kernelHeight * g.kernelWidth);
  let o = 0;
  for (let p = 0; p < g.planes; p++) {
    const base = p * plane;
    for (let oy = 0; oy < g.outHeight; oy++) {
      const y0 = oy * g.strideHeight - g.padTop;
      const yLo = Math.max(0, y0);
      const yHi = Math.min(g.inHeight, y0 + g.kernelHeight);
      for (let ox = 0; ox < g.outWidth; ox++) {
        const x0 = ox * g.strideWidth - g.padLeft;
        const xLo = Math.max(0, x0);
        const xHi = Math.min(g.inWidth, x0 + g.kernelWidth);
        const share = dy[o++] * scale;
        for (let iy = yLo; iy < yHi; iy++) {
          const row = base + iy * g.inWidth;
          for (let ix = xLo; ix < xHi; ix++) dx[row + ix] += share;
        }
      }
    }
  }
}
