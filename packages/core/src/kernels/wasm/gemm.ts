/** The WebAssembly GEMM as the backend sees it: packs the operands into wasm memory, splits the tiles of C between threads, and adds the result into the caller's array. */

import type { DataArray } from "../../dtype.js";
import { gemm as javascriptGemm } from "../matmul.js";
import { type GemmLayout, LAYOUTS } from "./gemm-module.js";
import type { Share } from "./pool.js";
import { FUNCTION_NAMES, getNumThreads, type WasmRuntime } from "./runtime.js";

/** Where the wasm GEMM hands over to the JavaScript kernel or to more threads. */
export interface GemmThresholds {
  /**
   * Products of at most this many multiply-adds run on the JavaScript kernel: below it the copies
   * into wasm memory cost more than SIMD saves. Default 4096 (16³).
   */
  minProduct?: number;
  /**
   * Multiply-adds each thread must get before another thread is woken. Default 2¹⁸ (about 20 µs of
   * work, several times what waking a worker costs).
   */
  perThread?: number;
}
/** Depth of a packed block: one B panel (kc · nr elements) stays in L1 while A panels pass. */
const KC = 256;
/** Bytes of A panels per row block, kept in L2 while every B panel of the range passes. */
const MC_BYTES = 1 << 16;

const roundUp = (x: number, multiple: number) => Math.ceil(x / multiple) * multiple;
const align64 = (bytes: number) => roundUp(bytes, 64);

/**
 * Packs op(X)[rows × depth] (element (r, p) at `offset + r · rowStride + p · depthStride`) into
 * panels of `width` rows, depth block by depth block (blocks of `kc`), p-major within a panel,
 * zero-padding the rows past the last: the layout `gemm32` / `gemm64` read.
 */
function pack(
  rows: number,
  depth: number,
  src: DataArray,
  offset: number,
  rowStride: number,
  depthStride: number,
  width: number,
  kc: number,
  out: Float32Array<ArrayBufferLike> | Float64Array<ArrayBufferLike>,
  at: number,
): void {
  const panels = Math.ceil(rows / width);
  let block = at;
  for (let pc = 0; pc < depth; pc += kc) {
    const kcLen = Math.min(kc, depth - pc);
    if (rowStride === 1) {
      // The rows of one depth step are contiguous: read them in order and scatter to the panels
      // (the other order strides through the source by whole rows and thrashes the caches).
      for (let p = 0; p < kcLen; p++) {
        const s = offset + (pc + p) * depthStride;
        let o = block + p * width;
        for (let r0 = 0; r0 < rows; r0 += width) {
          const live = Math.min(width, rows - r0);
          for (let r = 0; r < live; r++) out[o + r] = src[s + r0 + r];
          for (let r = live; r < width; r++) out[o + r] = 0;
          o += width * kcLen;
        }
      }
    } else {
      let o = block;
      for (let r0 = 0; r0 < rows; r0 += width) {
        const live = Math.min(width, rows - r0);
        let start = offset + r0 * rowStride + pc * depthStride;
        for (let p = 0; p < kcLen; p++) {
          let s = start;
          for (let r = 0; r < live; r++) {
            out[o + r] = src[s];
            s += rowStride;
          }
          for (let r = live; r < width; r++) out[o + r] = 0;
          o += width;
          start += depthStride;
        }
      }
    }
    block += panels * width * kcLen;
  }
}

/**
 * Splits [0, panels) into `parts` contiguous ranges as even as possible, as [start, end) pairs.
 */
function split(panels: number, parts: number): [number, number][] {
  const ranges: [number, number][] = [];
  for (let t = 0; t < parts; t++) {
    ranges.push([Math.floor((t * panels) / parts), Math.floor(((t + 1) * panels) / parts)]);
  }
  return ranges;
}

/**
 * A `Gemm` on `runtime`: C += op(A) · op(B), in float32 when C is a Float32Array (the operands
 * are rounded to float32 as they are packed, and the products accumulate in float32, possibly
 * fused) and in float64 otherwise. Tiny products, and ones too large for the wasm memory, run on
 * the JavaScript kernel.
 *
 * @example
 * const gemm = wasmGemm(new WasmRuntime(hasRelaxedSimd()), { minProduct: 0 });
 * gemm(2, 2, 2, a, 0, 2, 1, b, 0, 2, 1, c, 0, 2);
 */
export function wasmGemm(
  runtime: WasmRuntime,
  { minProduct = 16 * 16 * 16, perThread = 1 << 18 }: GemmThresholds = {},
): typeof javascriptGemm {
  return (
    m,
    n,
    k,
    a,
    aOffset,
    aRowStride,
    aColStride,
    b,
    bOffset,
    bRowStride,
    bColStride,
    c,
    cOffset,
    cRowStride,
  ) => {
    if (m === 0 || n === 0 || k === 0) return;
    const single = c instanceof Float32Array;
    const layout: GemmLayout = single ? LAYOUTS.float32 : LAYOUTS.float64;
    const { bytes, mr, nr } = layout;
    const mPanels = Math.ceil(m / mr);
    const nPanels = Math.ceil(n / nr);
    const mPad = mPanels * mr;
    const nPad = nPanels * nr;
    const aAt = 0;
    const bAt = align64(aAt + mPad * k * bytes);
    const cAt = align64(bAt + nPad * k * bytes);
    const end = cAt + mPad * nPad * bytes;
    if (m * n * k <= minProduct || !runtime.reserve(end)) {
      javascriptGemm(
        m,
        n,
        k,
        a,
        aOffset,
        aRowStride,
        aColStride,
        b,
        bOffset,
        bRowStride,
        bColStride,
        c,
        cOffset,
        cRowStride,
      );
      return;
    }
    const view = single ? runtime.f32 : runtime.f64;
    // Equal depth blocks near KC, as the JavaScript kernel cuts them.
    const kc = Math.ceil(k / Math.max(1, Math.round(k / KC)));
    pack(m, k, a, aOffset, aRowStride, aColStride, mr, kc, view, aAt / bytes);
    pack(n, k, b, bOffset, bColStride, bRowStride, nr, kc, view, bAt / bytes);
    const mc = Math.max(1, Math.floor(MC_BYTES / (mr * kc * bytes)));
    const fn = FUNCTION_NAMES.indexOf(single ? "gemm32" : "gemm64");
    const ldc = nPad * bytes;
    const parts = Math.max(
      1,
      Math.min(
        getNumThreads(),
        Math.floor((m * n * k) / Math.max(1, perThread)),
        Math.max(mPanels, nPanels),
      ),
    );
    // Split along whichever side has more panels; every tile is summed the same way regardless.
    const byColumns = nPanels >= mPanels;
    const shares: Share[] = split(byColumns ? nPanels : mPanels, parts).map(([lo, hi]) => ({
      fn,
      args: [
        aAt,
        bAt,
        cAt,
        ldc,
        mPanels,
        nPanels,
        byColumns ? 0 : lo,
        byColumns ? mPanels : hi,
        byColumns ? lo : 0,
        byColumns ? hi : nPanels,
        k,
        kc,
        mc,
      ],
    }));
    runtime.run(shares);
    let from = cAt / bytes;
    let to = cOffset;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) c[to + j] += view[from + j];
      from += nPad;
      to += cRowStride;
    }
  };
}
