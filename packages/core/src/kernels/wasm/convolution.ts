/** Convolutions on the wasm runtime: several images in one product where their planes are small (the images' im2col columns side by side, so that small planes make one larger product), and otherwise whole images shared between the threads, each building and multiplying its own columns. */

import type { DataArray } from "../../dtype.js";
import { blockRows, type ConvGeometry, columnBlock, isPointwise } from "../conv.js";
import { CONV_IMAGES_ARGUMENTS, WEIGHT_IMAGES_ARGUMENTS } from "./conv-module.js";
import { depthBlocks, packedBytes, productAt, threadChunks } from "./gemm.js";
import { LAYOUTS } from "./gemm-module.js";
import {
  align64,
  FUNCTION_NAMES,
  getNumThreads,
  type WasmRuntime,
  windowArguments,
} from "./runtime.js";

/**
 * Column elements per batch of images: 256 KiB of float32 columns, within L2, so that the columns
 * im2col writes are still in cache when the product packs them. (Batches of 2²⁰ elements, 4 MiB,
 * made the trainstep's convolutions 1.1–1.9 × slower on one thread than one image at a time: the
 * round trip through memory cost more than the per-product overheads saved.) Images whose own
 * columns exceed it go to the row-blocked path (`conv2dInto`), which keeps its blocks in cache.
 */
const BATCH_COLUMNS = 1 << 16;

/**
 * The weight gradient goes by whole images up to 2¹⁸ column elements each (1 MiB of float32, the
 * backend's im2col block: one image's columns, still in cache when they are packed); larger ones
 * go to the row-blocked path.
 */
const WEIGHT_IMAGE_COLUMNS = 1 << 18;

/**
 * Chunks of the weight gradient: partial sums, each over a fixed range of images, so the count
 * depends on the batch alone (never on the threads), and adding the partials costs little.
 */
const WEIGHT_CHUNKS = 8;

/** C, H, W, Ho, Wo, the window and the dilation: the geometry as the whole-image kernels take it. */
function imageArguments(g: ConvGeometry): number[] {
  return [
    g.inChannels,
    g.inHeight,
    g.inWidth,
    g.outHeight,
    g.outWidth,
    ...windowArguments(g),
    g.dilationHeight,
    g.dilationWidth,
  ];
}

/** The sizes of one batched convolution, and where its pieces sit in wasm memory (bytes). */
interface Plan {
  single: boolean;
  bytes: 4 | 8;
  /** Output pixels per image, Ho · Wo. */
  plane: number;
  /** The product's depth, Cin · kh · kw. */
  depth: number;
  /** Elements of one input image, Cin · H · W. */
  image: number;
  /** Images per batch. */
  perBatch: number;
  imagesAt: number;
  columnsAt: number;
  /** Where the caller's third region (C, or the copied weights and C) starts. */
  restAt: number;
}

/** The batched layout of `g`, from byte `base` up (above the runtime's heap), or null when it does not batch. */
function plan(g: ConvGeometry, single: boolean, base: number): Plan | null {
  if (g.groups !== 1) return null;
  const plane = g.outHeight * g.outWidth;
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  // The tests' block override (`setColumnBlock`) sizes the batches too.
  const limit = columnBlock(BATCH_COLUMNS);
  if (depth * plane > limit) return null;
  const bytes = single ? 4 : 8;
  const image = g.inChannels * g.inHeight * g.inWidth;
  const perBatch = Math.max(1, Math.min(g.batch, Math.floor(limit / (depth * plane))));
  const imagesAt = align64(base);
  const columnsAt = align64(imagesAt + perBatch * image * bytes);
  return {
    single,
    bytes,
    plane,
    depth,
    image,
    perBatch,
    imagesAt,
    columnsAt,
    restAt: align64(columnsAt + depth * perBatch * plane * bytes),
  };
}

/**
 * Copies images [b0, b0 + count) of x into wasm memory and builds their columns side by side:
 * col[(c · kh + ky) · kw + kx, j · Ho·Wo + oy · Wo + ox] for image j of the batch, the images
 * shared between the threads when there are enough of them.
 */
function columnsOf(
  runtime: WasmRuntime,
  p: Plan,
  x: DataArray,
  g: ConvGeometry,
  b0: number,
  count: number,
): void {
  // Images already in wasm memory (a tensor's data in the heap) are read where they are.
  const resident = runtime.placeOf(x);
  const imagesAt = resident < 0 ? p.imagesAt : resident + b0 * p.image * p.bytes;
  if (resident < 0) {
    const view = p.single ? runtime.f32 : runtime.f64;
    view.set(x.subarray(b0 * p.image, (b0 + count) * p.image), p.imagesAt / p.bytes);
  }
  const elements = count * p.depth * p.plane;
  runtime.run({
    fn: FUNCTION_NAMES.indexOf(p.single ? "im2colImages32" : "im2colImages64"),
    args: [
      imagesAt,
      p.columnsAt,
      ...imageArguments(g),
      p.image * p.bytes,
      p.plane * p.bytes,
      count * p.plane * p.bytes,
    ],
    total: count,
    // A chunk is worth a thread's wake-up from about 2¹⁶ column elements.
    chunks: Math.max(1, Math.min(count, getNumThreads() * 2, Math.floor(elements / (1 << 16)))),
  });
}

/**
 * Multiply-adds a chunk of images gets at least, in units of the backend's `perChunk` (a chunk's
 * im2col and packing come on top of its products, so it needs more work than a chunk of a product).
 */
const IMAGE_CHUNK = 4;

/**
 * out = conv(x, w) + bias (out += conv(x, w) without one) for an ungrouped convolution by whole
 * images: x, out and the weights go into wasm memory with one copy each, the weights are packed
 * once, and then each chunk of images (`convImages`) builds its im2col blocks of `block`
 * elements in scratch of its own and multiplies them, on whichever thread claims it. Returns
 * false, having done nothing, where the memory cannot hold it.
 */
function conv2dByImages(
  runtime: WasmRuntime,
  x: DataArray,
  w: DataArray,
  bias: DataArray | null,
  out: DataArray,
  g: ConvGeometry,
  block: number,
  perChunk: number,
): boolean {
  const single = out instanceof Float32Array;
  const { bytes, mr, nr } = single ? LAYOUTS.float32 : LAYOUTS.float64;
  const m = g.outChannels;
  const plane = g.outHeight * g.outWidth;
  const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
  const image = g.inChannels * g.inHeight * g.inWidth;
  const rows = blockRows(g, block);
  const widest = Math.ceil((rows * g.outWidth) / nr) * nr;
  const mPad = Math.ceil(m / mr) * mr;
  // Scratch of one chunk: the columns of a block, C with padded rows, the block's B panels.
  const cOffset = align64(depth * rows * g.outWidth * bytes);
  const bOffset = align64(cOffset + mPad * widest * bytes);
  const stride = align64(bOffset + widest * depth * bytes);
  const chunks = threadChunks(g.batch, g.batch * m * plane * depth, IMAGE_CHUNK * perChunk);
  // x and out already in wasm memory (tensors' data in the heap) are used where they are: the
  // kernel copies exactly each block's rows between out and its C.
  const xResident = runtime.placeOf(x);
  const outResident = runtime.placeOf(out);
  const xStage = align64(runtime.residentBytes);
  const outStage = align64(xStage + (xResident < 0 ? g.batch * image * bytes : 0));
  const wAt = align64(outStage + (outResident < 0 ? g.batch * m * plane * bytes : 0));
  const aAt = align64(wAt + m * depth * bytes);
  const scratchAt = align64(aAt + mPad * depth * bytes);
  if (!runtime.reserve(scratchAt + chunks * stride)) return false;
  const xAt = xResident < 0 ? xStage : xResident;
  const outAt = outResident < 0 ? outStage : outResident;
  const view = single ? runtime.f32 : runtime.f64;
  const outBase = outAt / bytes;
  const outSize = g.batch * m * plane;
  if (xResident < 0) view.set(x.subarray(0, g.batch * image), xAt / bytes);
  view.set(w.subarray(0, m * depth), wAt / bytes);
  if (bias === null) {
    if (outResident < 0) view.set(out.subarray(0, outSize), outBase);
  } else {
    for (let b = 0; b < g.batch; b++) {
      for (let co = 0; co < m; co++) {
        const from = outBase + (b * m + co) * plane;
        runtime.fill(single, bias[co], from, from + plane);
      }
    }
  }
  const { kc, mc } = depthBlocks(single, depth);
  const suffix = single ? "32" : "64";
  runtime.run({
    fn: FUNCTION_NAMES.indexOf(`packRangeA${suffix}`),
    args: [wAt, m, depth, depth, 1, kc, aAt],
    total: mPad / mr,
    chunks: 1,
  });
  const args = [xAt, outAt, aAt, g.inChannels, g.inHeight, g.inWidth, g.outHeight, g.outWidth];
  args.push(...windowArguments(g), g.dilationHeight, g.dilationWidth);
  args.push(m, rows, kc, mc, cOffset, bOffset);
  if (args.length !== CONV_IMAGES_ARGUMENTS) throw new Error("conv2dByImages: argument count");
  runtime.run({
    fn: FUNCTION_NAMES.indexOf(`convImages${suffix}`),
    args,
    total: g.batch,
    chunks,
    scratch: { base: scratchAt, stride },
  });
  if (outResident < 0) out.set(view.subarray(outBase, outBase + outSize), 0);
  return true;
}

/**
 * `conv2d` and `conv2dBackwardWeight` of the backend interface for ungrouped convolutions whose
 * columns fit a batch of `block`-sized im2col blocks (and `conv2d` by whole images for the larger
 * ones, and for all on several threads, pointwise ones aside). Each returns false (having done
 * nothing) otherwise, and the caller takes the row-blocked path. Results are within rounding of
 * the JavaScript kernels' and the same bits on any number of threads.
 *
 * @example
 * const conv = wasmConvolutions(runtime, 1 << 16, 1 << 18);
 * conv.conv2d(x, w, bias, out, geometry) || conv2dInto(x, w, bias, out, geometry, gemm);
 */
export function wasmConvolutions(runtime: WasmRuntime, perChunk: number, block: number) {
  return {
    /** out = conv(x, w) + bias, or out += conv(x, w) without a bias (`conv2dInto`'s contract). */
    conv2d(
      x: DataArray,
      w: DataArray,
      bias: DataArray | null,
      out: DataArray,
      g: ConvGeometry,
    ): boolean {
      // On several threads whole images go to each (their columns stay in its cache); batches
      // of small planes save per-product overheads on one. Both sum each element in the same
      // order (bias, then the depth blocks of the same kc), so the bits do not depend on the choice.
      const p = getNumThreads() > 1 ? null : plan(g, out instanceof Float32Array, runtime.heapTop);
      if (p === null) {
        return (
          g.groups === 1 &&
          !isPointwise(g) &&
          conv2dByImages(runtime, x, w, bias, out, g, block, perChunk)
        );
      }
      const { bytes, plane, depth } = p;
      const { mr, nr } = p.single ? LAYOUTS.float32 : LAYOUTS.float64;
      const m = g.outChannels;
      const mPad = Math.ceil(m / mr) * mr;
      const widest = Math.ceil((p.perBatch * plane) / nr) * nr;
      const weightsAt = p.restAt;
      const cAt = align64(weightsAt + m * depth * bytes);
      const scratch = align64(cAt + mPad * widest * bytes);
      if (!runtime.reserve(scratch + packedBytes(p.single, m, widest, depth))) return false;
      const view = p.single ? runtime.f32 : runtime.f64;
      view.set(w.subarray(0, m * depth), weightsAt / bytes);
      const outImage = m * plane;
      for (let b0 = 0; b0 < g.batch; b0 += p.perBatch) {
        const count = Math.min(p.perBatch, g.batch - b0);
        const n = count * plane;
        const ldc = Math.ceil(n / nr) * nr;
        columnsOf(runtime, p, x, g, b0, count);
        const cBase = cAt / bytes;
        for (let co = 0; co < m; co++) {
          const row = cBase + co * ldc;
          if (bias !== null) runtime.fill(p.single, bias[co], row, row + n);
          else {
            for (let j = 0; j < count; j++) {
              const from = (b0 + j) * outImage + co * plane;
              view.set(out.subarray(from, from + plane), row + j * plane);
            }
          }
        }
        productAt(
          runtime,
          p.single,
          {
            m,
            n,
            k: depth,
            a: weightsAt,
            aRowStride: depth,
            aColStride: 1,
            b: p.columnsAt,
            bRowStride: n,
            bColStride: 1,
            c: cAt,
            ldc: ldc * bytes,
            scratch,
          },
          perChunk,
        );
        for (let co = 0; co < m; co++) {
          const row = cBase + co * ldc;
          for (let j = 0; j < count; j++) {
            const at = row + j * plane;
            out.set(view.subarray(at, at + plane), (b0 + j) * outImage + co * plane);
          }
        }
      }
      return true;
    },

    /**
     * dw += conv2d's gradient in w, by whole images: a fixed number of chunks of images (it
     * depends on the batch alone), each summing its images into a partial dw of its own (im2col,
     * product and all on one thread), then the partials added into dw in chunk order. The same
     * bits on any number of threads.
     */
    conv2dBackwardWeight(x: DataArray, dy: DataArray, dw: DataArray, g: ConvGeometry): boolean {
      if (g.groups !== 1) return false;
      const single = dw instanceof Float32Array;
      const { bytes, mr, nr } = single ? LAYOUTS.float32 : LAYOUTS.float64;
      const plane = g.outHeight * g.outWidth;
      const depth = g.inChannels * g.kernelHeight * g.kernelWidth;
      // The tests' block override (`setColumnBlock`) sends larger images to the row blocks too.
      if (depth * plane > columnBlock(WEIGHT_IMAGE_COLUMNS)) return false;
      const m = g.outChannels;
      // No images, pixels or channels: nothing to add.
      if (g.batch === 0 || plane === 0 || m * depth === 0) return true;
      const depthPad = Math.ceil(depth / nr) * nr;
      const image = g.inChannels * g.inHeight * g.inWidth;
      // x and dy already in wasm memory are read where they are.
      const xResident = runtime.placeOf(x);
      const dyResident = runtime.placeOf(dy);
      const xStage = align64(runtime.heapTop);
      const dyStage = align64(xStage + (xResident < 0 ? g.batch * image * bytes : 0));
      const scratchAt = align64(dyStage + (dyResident < 0 ? g.batch * m * plane * bytes : 0));
      const xAt = xResident < 0 ? xStage : xResident;
      const dyAt = dyResident < 0 ? dyStage : dyResident;
      // Each chunk's scratch: its partial dw, one image's columns, dy[j] packed, the columns packed.
      const partialBytes = m * depthPad * bytes;
      const aOffset = align64(partialBytes + depth * plane * bytes);
      const bOffset = align64(aOffset + Math.ceil(m / mr) * mr * plane * bytes);
      const stride = align64(bOffset + depthPad * plane * bytes);
      const chunks = Math.min(g.batch, WEIGHT_CHUNKS);
      if (!runtime.reserve(scratchAt + chunks * stride)) return false;
      const view = single ? runtime.f32 : runtime.f64;
      if (xResident < 0) view.set(x.subarray(0, g.batch * image), xAt / bytes);
      if (dyResident < 0) view.set(dy.subarray(0, g.batch * m * plane), dyAt / bytes);
      const { kc, mc } = depthBlocks(single, plane);
      const args = [xAt, dyAt, ...imageArguments(g), m, kc, mc, aOffset, bOffset];
      if (args.length !== WEIGHT_IMAGES_ARGUMENTS) {
        throw new Error("conv2dBackwardWeight: argument count");
      }
      runtime.run({
        fn: FUNCTION_NAMES.indexOf(single ? "weightImages32" : "weightImages64"),
        args,
        total: g.batch,
        chunks,
        scratch: { base: scratchAt, stride },
      });
      // The partials in chunk order into the first, then that into dw.
      const elements = m * depthPad;
      const lanes = 16 / bytes;
      runtime.run({
        fn: FUNCTION_NAMES.indexOf(single ? "sumPartials32" : "sumPartials64"),
        args: [scratchAt, stride, chunks],
        total: elements / lanes,
        step: lanes,
        chunks: 1,
      });
      const sum = scratchAt / bytes;
      for (let co = 0; co < m; co++) {
        const row = sum + co * depthPad;
        const to = co * depth;
        for (let d = 0; d < depth; d++) dw[to + d] += view[row + d];
      }
      return true;
    },
  };
}
