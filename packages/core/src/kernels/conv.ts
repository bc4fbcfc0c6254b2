/** Convolution and pooling kernels over NCHW typed arrays: im2col + gemm for conv2d's three products, direct loops for pools. */

import type { DataArray } from "../dtype.js";
import type { Gemm } from "./backend.js";

/**
 * Everything a convolution kernel needs to know, resolved by the op: sizes, strides, the padding
 * before the first row and column (the padding after is implied by the output size, which allows
 * the asymmetric padding of "same" with an even kernel), dilations and groups.
 */
export interface ConvGeometry {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  outHeight: number;
  outWidth: number;
  kernelHeight: number;
  kernelWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  dilationHeight: number;
  dilationWidth: number;
  groups: number;
}

// One im2col matrix, reused by every call (kernels run synchronously).
let columns = new Float64Array(0);

function columnScratch(size: number): Float64Array {
  if (columns.length < size) columns = new Float64Array(size);
  return columns;
}

/** A 1 × 1, stride-1, unpadded convolution is a plain product: the image is its own im2col matrix. */
function isPointwise(g: ConvGeometry): boolean {
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

/** The first and one-past-last output column whose tap at offset `shift` lands inside [0, size). */
function validRange(
  shift: number,
  stride: number,
  outSize: number,
  size: number,
): [number, number] {
  // ix = ox * stride + shift must satisfy 0 <= ix < size.
  const lo = shift >= 0 ? 0 : Math.ceil(-shift / stride);
  const hi = Math.min(outSize, Math.max(0, Math.ceil((size - shift) / stride)));
  return [Math.min(lo, hi), hi];
}

/**
 * col[(c · kh + ky) · kw + kx, oy · Wo + ox] = x[c, oy·sh − pt + ky·dh, ox·sw − pl + kx·dw] (0 outside)
 * for the channels of one image starting at `xOffset`.
 */
function im2col(x: DataArray, xOffset: number, g: ConvGeometry, col: Float64Array): void {
  const { inChannels, inHeight, inWidth, outHeight, outWidth, kernelHeight, kernelWidth } = g;
  const { strideHeight, strideWidth, padTop, padLeft, dilationHeight, dilationWidth } = g;
  const plane = inHeight * inWidth;
  const outPlane = outHeight * outWidth;
  let row = 0;
  for (let c = 0; c < inChannels; c++) {
    const channel = xOffset + c * plane;
    for (let ky = 0; ky < kernelHeight; ky++) {
      const rowShift = ky * dilationHeight - padTop;
      for (let kx = 0; kx < kernelWidth; kx++) {
        const colShift = kx * dilationWidth - padLeft;
        const [lo, hi] = validRange(colShift, strideWidth, outWidth, inWidth);
        let o = row * outPlane;
        for (let oy = 0; oy < outHeight; oy++) {
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
        row++;
      }
    }
  }
}

/** The adjoint of `im2col`: adds every entry of `col` back onto the input pixel it was read from. */
function col2im(col: Float64Array, g: ConvGeometry, dx: DataArray, dxOffset: number): void {
  const { inChannels, inHeight, inWidth, outHeight, outWidth, kernelHeight, kernelWidth } = g;
  const { strideHeight, strideWidth, padTop, padLeft, dilationHeight, dilationWidth } = g;
  const plane = inHeight * inWidth;
  const outPlane = outHeight * outWidth;
  let row = 0;
  for (let c = 0; c < inChannels; c++) {
    const channel = dxOffset + c * plane;
    for (let ky = 0; ky < kernelHeight; ky++) {
      const rowShift = ky * dilationHeight - padTop;
      for (let kx = 0; kx < kernelWidth; kx++) {
        const colShift = kx * dilationWidth - padLeft;
        const [lo, hi] = validRange(colShift, strideWidth, outWidth, inWidth);
        let o = row * outPlane;
        for (let oy = 0; oy < outHeight; oy++) {
          const iy = oy * strideHeight + rowShift;
          if (iy >= 0 && iy < inHeight) {
            const dst = channel + iy * inWidth + colShift;
            for (let ox = lo; ox < hi; ox++) dx[dst + ox * strideWidth] += col[o + ox];
          }
          o += outWidth;
        }
        row++;
      }
    }
  }
}

/** out = conv2d(x, w) + bias: per image, per group, W[g] (Cout/G × Cin/G·kh·kw) · im2col rows of group g. */
export function conv2dInto(
  x: DataArray,
  w: DataArray,
  bias: DataArray | null,
  out: DataArray,
  g: ConvGeometry,
  gemm: Gemm,
): void {
  const taps = g.kernelHeight * g.kernelWidth;
  const inGroup = g.inChannels / g.groups;
  const outGroup = g.outChannels / g.groups;
  const depth = inGroup * taps;
  const outPlane = g.outHeight * g.outWidth;
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  const outImage = g.outChannels * outPlane;
  const pointwise = isPointwise(g);
  const col = pointwise ? null : columnScratch(g.inChannels * taps * outPlane);
  for (let b = 0; b < g.batch; b++) {
    const outBase = b * outImage;
    if (bias !== null) {
      for (let c = 0; c < g.outChannels; c++) {
        out.fill(bias[c], outBase + c * outPlane, outBase + (c + 1) * outPlane);
      }
    }
    if (col !== null) im2col(x, b * inImage, g, col);
    const source = col ?? x;
    const sourceBase = col !== null ? 0 : b * inImage;
    for (let gi = 0; gi < g.groups; gi++) {
      gemm(
        outGroup,
        outPlane,
        depth,
        w,
        gi * outGroup * depth,
        depth,
        1,
        source,
        sourceBase + gi * depth * outPlane,
        outPlane,
        1,
        out,
        outBase + gi * outGroup * outPlane,
        outPlane,
      );
    }
  }
}

// The flipped, channel-swapped weights of a stride-1 backward-input pass, reused between calls.
let flipped = new Float64Array(0);

/**
 * dx += conv2d's gradient in x. With stride 1 this is itself a convolution of dy with the
 * kernel flipped in space and its channel axes swapped, padded by (extent − 1 − pad): that runs
 * as a forward pass, whose gemm has depth Cout · kh · kw, instead of the im2col route below,
 * whose gemm has depth Cout only and spends its time loading and storing C.
 */
export function conv2dBackwardInputInto(
  dy: DataArray,
  w: DataArray,
  dx: DataArray,
  g: ConvGeometry,
  gemm: Gemm,
): void {
  if (g.strideHeight === 1 && g.strideWidth === 1 && !isPointwise(g)) {
    const { kernelHeight: kh, kernelWidth: kw } = g;
    const taps = kh * kw;
    const inGroup = g.inChannels / g.groups;
    const outGroup = g.outChannels / g.groups;
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
    conv2dInto(dy, flipped, null, dx, transposed, gemm);
    return;
  }
  const taps = g.kernelHeight * g.kernelWidth;
  const inGroup = g.inChannels / g.groups;
  const outGroup = g.outChannels / g.groups;
  const depth = inGroup * taps;
  const outPlane = g.outHeight * g.outWidth;
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  const outImage = g.outChannels * outPlane;
  // Otherwise: per image, W[g]ᵀ · dy[g] into an im2col matrix, then col2im.
  const pointwise = isPointwise(g);
  const col = pointwise ? null : columnScratch(g.inChannels * taps * outPlane);
  for (let b = 0; b < g.batch; b++) {
    if (col !== null) col.fill(0, 0, g.inChannels * taps * outPlane);
    const target = col ?? dx;
    const targetBase = col !== null ? 0 : b * inImage;
    for (let gi = 0; gi < g.groups; gi++) {
      // Wᵀ is read by swapping W's strides: no transpose copy.
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
        target,
        targetBase + gi * depth * outPlane,
        outPlane,
      );
    }
    if (col !== null) col2im(col, g, dx, b * inImage);
  }
}

/** dw += conv2d's gradient in w: per image and group, dy[g] · im2col(x)[g]ᵀ. */
export function conv2dBackwardWeightInto(
  x: DataArray,
  dy: DataArray,
  dw: DataArray,
  g: ConvGeometry,
  gemm: Gemm,
): void {
  const taps = g.kernelHeight * g.kernelWidth;
  const inGroup = g.inChannels / g.groups;
  const outGroup = g.outChannels / g.groups;
  const depth = inGroup * taps;
  const outPlane = g.outHeight * g.outWidth;
  const inImage = g.inChannels * g.inHeight * g.inWidth;
  const outImage = g.outChannels * outPlane;
  const pointwise = isPointwise(g);
  const col = pointwise ? null : columnScratch(g.inChannels * taps * outPlane);
  for (let b = 0; b < g.batch; b++) {
    if (col !== null) im2col(x, b * inImage, g, col);
    const source = col ?? x;
    const sourceBase = col !== null ? 0 : b * inImage;
    for (let gi = 0; gi < g.groups; gi++) {
      // The im2col matrix is read transposed through its strides.
      gemm(
        outGroup,
        depth,
        outPlane,
        dy,
        b * outImage + gi * outGroup * outPlane,
        outPlane,
        1,
        source,
        sourceBase + gi * depth * outPlane,
        1,
        outPlane,
        dw,
        gi * outGroup * depth,
        depth,
      );
    }
  }
}

/** The window of a 2-D pool over `planes` independent H × W planes (batch × channels). */
export interface PoolGeometry {
  planes: number;
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  kernelHeight: number;
  kernelWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
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
