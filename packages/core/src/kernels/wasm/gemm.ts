/** The WebAssembly GEMM as the backend sees it: copies the operands and C into wasm memory, packs there, hands chunks of C's tiles to every thread, and copies C back. */

import type { Gemm } from "../backend.js";
import { gemm as javascriptGemm } from "../matmul.js";
import { type GemmLayout, LAYOUTS } from "./gemm-module.js";
import { align64, FUNCTION_NAMES, getNumThreads, type WasmRuntime } from "./runtime.js";

/** Where the wasm GEMM hands over to the JavaScript kernel or to more threads. */
export interface GemmThresholds {
  /**
   * Products of at most this many multiply-adds run on the JavaScript kernel: below it the copies
   * into wasm memory cost more than SIMD saves. Default 4096 (16³).
   */
  minProduct?: number;
  /**
   * Multiply-adds each chunk of a threaded product gets at least: a product of less than twice
   * this runs on the calling thread alone. Default 2¹⁶ (about 5 µs of work, several times what
   * claiming and packing a chunk costs).
   */
  perChunk?: number;
}
/** Depth of a packed block: one B panel (kc · nr elements) stays in L1 while A panels pass. */
const KC = 256;
/** Bytes of A panels per row block, kept in L2 while every B panel of the range passes. */
const MC_BYTES = 1 << 16;

/**
 * Chunks per thread of a threaded product: more than one, so that when a worker starts late (or
 * a core is busy with another process) the threads that are running take its chunks instead of
 * waiting for it.
 */
const CHUNKS_PER_THREAD = 4;

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
  { minProduct = 16 * 16 * 16, perChunk = 1 << 16 }: GemmThresholds = {},
): Gemm {
  return (...args) => {
    const [m, n, k, a, aOffset, aRowStride, aColStride, b, bOffset, bRowStride, bColStride] = args;
    const [c, cOffset, cRowStride] = args.slice(11) as [Parameters<Gemm>[11], number, number];
    if (m === 0 || n === 0 || k === 0) return;
    const single = c instanceof Float32Array;
    const layout: GemmLayout = single ? LAYOUTS.float32 : LAYOUTS.float64;
    const { bytes, mr, nr } = layout;
    const mPanels = Math.ceil(m / mr);
    const nPanels = Math.ceil(n / nr);
    const mPad = mPanels * mr;
    const nPad = nPanels * nr;
    // Wasm memory, in bytes: the elements of A and of B that the product reads, copied as they lie
    // (one memcpy each; packing then runs in wasm), their packed panels, and C with padded rows.
    const aSpan = (m - 1) * aRowStride + (k - 1) * aColStride + 1;
    const bSpan = (k - 1) * bRowStride + (n - 1) * bColStride + 1;
    const aResident = runtime.addressOf(a, single);
    const bResident = runtime.addressOf(b, single);
    const aStage = align64(runtime.residentBytes);
    const bStage = align64(aStage + (aResident < 0 ? aSpan * bytes : 0));
    const aAt = align64(bStage + (bResident < 0 ? bSpan * bytes : 0));
    const bAt = align64(aAt + mPad * k * bytes);
    const cAt = align64(bAt + nPad * k * bytes);
    const end = cAt + mPad * nPad * bytes;
    if (m * n * k <= minProduct || !runtime.reserve(end)) {
      javascriptGemm(...args);
      return;
    }
    const view = single ? runtime.f32 : runtime.f64;
    // Operands already in wasm memory (im2col blocks) are read where they are.
    const aFrom = aResident < 0 ? aStage : aResident + aOffset * bytes;
    const bFrom = bResident < 0 ? bStage : bResident + bOffset * bytes;
    if (aResident < 0) view.set(a.subarray(aOffset, aOffset + aSpan), aStage / bytes);
    if (bResident < 0) view.set(b.subarray(bOffset, bOffset + bSpan), bStage / bytes);
    // C comes in too, so that the kernel adds into it and the result goes back as plain copies.
    const cBase = cAt / bytes;
    // Rows that are contiguous on both sides (conv outputs of a whole plane) move as one block.
    const contiguous = cRowStride === n && nPad === n;
    if (contiguous) view.set(c.subarray(cOffset, cOffset + m * n), cBase);
    else {
      for (let i = 0; i < m; i++) {
        const row = cOffset + i * cRowStride;
        view.set(c.subarray(row, row + n), cBase + i * nPad);
      }
    }
    // Equal depth blocks near KC, as the JavaScript kernel cuts them.
    const kc = Math.ceil(k / Math.max(1, Math.round(k / KC)));
    const suffix = single ? "32" : "64";
    const mc = Math.max(1, Math.floor(MC_BYTES / (mr * kc * bytes)));
    // Chunks along whichever side has more panels; the other operand is packed whole first, and
    // each chunk packs its own share of the split one (so packing runs on every thread). Each
    // element of C is summed in the same order whatever the chunks and whoever runs them.
    const byColumns = nPanels >= mPanels;
    const panels = byColumns ? nPanels : mPanels;
    const threads = getNumThreads();
    const chunks =
      threads === 1
        ? 1
        : Math.max(
            1,
            Math.min(
              panels,
              CHUNKS_PER_THREAD * threads,
              Math.floor((m * n * k) / Math.max(1, perChunk)),
            ),
          );
    const { exports } = runtime;
    if (byColumns) exports[`packA${suffix}`](aFrom, m, k, aRowStride, aColStride, kc, aAt);
    else exports[`packB${suffix}`](bFrom, n, k, bColStride, bRowStride, kc, bAt);
    runtime.run({
      fn: FUNCTION_NAMES.indexOf(`tiles${suffix}`),
      args: [
        aFrom,
        bFrom,
        aAt,
        bAt,
        cAt,
        nPad * bytes,
        m,
        n,
        k,
        aRowStride,
        aColStride,
        bRowStride,
        bColStride,
        kc,
        mc,
        byColumns ? 1 : 0,
      ],
      total: panels,
      chunks,
    });
    if (contiguous) c.set(view.subarray(cBase, cBase + m * n), cOffset);
    else {
      for (let i = 0; i < m; i++) {
        const from = cBase + i * nPad;
        c.set(view.subarray(from, from + n), cOffset + i * cRowStride);
      }
    }
  };
}
