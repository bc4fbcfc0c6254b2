/** The WebAssembly GEMM as the backend sees it: copies the operands and C into wasm memory, packs there, hands chunks of C's tiles to every thread, and copies C back. */

import type { Gemm } from "../backend.js";
import { gemm as javascriptGemm } from "../matmul.js";
import { LAYOUTS } from "./gemm-module.js";
import {
  align64,
  FUNCTION_NAMES,
  getNumThreads,
  type KernelName,
  type WasmRuntime,
} from "./runtime.js";

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
/** The default of `GemmThresholds.perChunk`. */
export const PER_CHUNK = 1 << 16;

/** Depth of a packed block: one B panel (kc · nr elements) stays in L1 while A panels pass. */
const KC = 256;
/** Bytes of A panels per row block, kept in L2 while every B panel of the range passes. */
const MC_BYTES = 1 << 16;

/** Elements a chunk of a shared packing gets at least (about 10 µs of copying). */
const PACK_CHUNK = 1 << 15;

/**
 * Chunks per thread of a threaded product: more than one, so that when a worker starts late (or
 * a core is busy with another process) the threads that are running take its chunks instead of
 * waiting for it.
 */
const CHUNKS_PER_THREAD = 4;

/**
 * Chunks of a job of `units` independent pieces (panels, images) and `work` multiply-adds on the
 * current threads: one on a single thread, else up to CHUNKS_PER_THREAD per thread, each with
 * at least `minWork` multiply-adds, never more than the pieces.
 */
export function threadChunks(units: number, work: number, minWork: number): number {
  const threads = getNumThreads();
  if (threads === 1) return 1;
  return Math.max(
    1,
    Math.min(units, CHUNKS_PER_THREAD * threads, Math.floor(work / Math.max(1, minWork))),
  );
}

/** A product whose operands and C are already in wasm memory, by byte address and element strides. */
export interface ProductAt {
  m: number;
  n: number;
  k: number;
  /** op(A)[i, p] at byte a + (i · aRowStride + p · aColStride) · bytes. */
  a: number;
  aRowStride: number;
  aColStride: number;
  /** op(B)[p, j] at byte b + (p · bRowStride + j · bColStride) · bytes. */
  b: number;
  bRowStride: number;
  bColStride: number;
  /** C[i, j] at byte c + i · ldc + j · bytes; rows padded to whole B panels (nr columns). */
  c: number;
  ldc: number;
  /** First byte free for the packed panels (`packedBytes` of them). */
  scratch: number;
}

/**
 * How a product of depth `k` is blocked: depth blocks `kc` (equal, near KC, as the JavaScript
 * kernel cuts them) and `mc` row panels of A per pass (their panels within MC_BYTES).
 */
export function depthBlocks(single: boolean, k: number): { kc: number; mc: number } {
  const { bytes, mr } = single ? LAYOUTS.float32 : LAYOUTS.float64;
  const kc = Math.ceil(k / Math.max(1, Math.round(k / KC)));
  return { kc, mc: Math.max(1, Math.floor(MC_BYTES / (mr * kc * bytes))) };
}

/** Bytes of packed panels a product of this size needs past its scratch address. */
export function packedBytes(single: boolean, m: number, n: number, k: number): number {
  const { bytes, mr, nr } = single ? LAYOUTS.float32 : LAYOUTS.float64;
  return (
    align64(Math.ceil(m / mr) * mr * k * bytes) + align64(Math.ceil(n / nr) * nr * k * bytes) + 64
  );
}

/**
 * C += op(A) · op(B) on operands in wasm memory (the caller reserved `packedBytes` past
 * `p.scratch`): packs the operand that is not split (its panels shared between the threads), then
 * runs the chunks of C's tiles on up to `getNumThreads()` threads, each packing its own share of
 * the other operand. Each element of C is
 * summed in the same order whatever the chunks and whoever runs them.
 *
 * @example
 * productAt(runtime, true, { m, n, k, a, aRowStride: k, aColStride: 1, b, bRowStride: n, bColStride: 1, c, ldc, scratch }, 1 << 16);
 */
export function productAt(
  runtime: WasmRuntime,
  single: boolean,
  p: ProductAt,
  perChunk: number,
): void {
  const { m, n, k } = p;
  const { bytes, mr, nr } = single ? LAYOUTS.float32 : LAYOUTS.float64;
  const mPanels = Math.ceil(m / mr);
  const nPanels = Math.ceil(n / nr);
  const aAt = align64(p.scratch);
  const bAt = align64(aAt + mPanels * mr * k * bytes);
  const { kc, mc } = depthBlocks(single, k);
  const suffix = single ? "32" : "64";
  // Chunks along whichever side has more panels.
  const byColumns = nPanels >= mPanels;
  const panels = byColumns ? nPanels : mPanels;
  const threads = getNumThreads();
  const chunks = threadChunks(panels, m * n * k, perChunk);
  // The operand every chunk reads whole is packed first, its panels shared between the threads
  // when it is large enough to be worth it (the weights of a convolution seldom are).
  const [whole, wholePanels] = byColumns ? ["A", mPanels] : ["B", nPanels];
  const wholeElements = (byColumns ? m : n) * k;
  runtime.run({
    fn: FUNCTION_NAMES.indexOf(`packRange${whole}${suffix}` as KernelName),
    args: byColumns
      ? [p.a, m, k, p.aRowStride, p.aColStride, kc, aAt]
      : [p.b, n, k, p.bColStride, p.bRowStride, kc, bAt],
    total: wholePanels,
    chunks:
      threads === 1
        ? 1
        : Math.max(1, Math.min(wholePanels, 2 * threads, Math.floor(wholeElements / PACK_CHUNK))),
  });
  runtime.run({
    fn: FUNCTION_NAMES.indexOf(`tiles${suffix}`),
    args: [
      p.a,
      p.b,
      aAt,
      bAt,
      p.c,
      p.ldc,
      m,
      n,
      k,
      p.aRowStride,
      p.aColStride,
      p.bRowStride,
      p.bColStride,
      kc,
      mc,
      byColumns ? 1 : 0,
    ],
    total: panels,
    chunks,
  });
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
  { minProduct = 16 * 16 * 16, perChunk = PER_CHUNK }: GemmThresholds = {},
): Gemm {
  return (...args) => {
    const [m, n, k, a, aOffset, aRowStride, aColStride, b, bOffset, bRowStride, bColStride] = args;
    const [c, cOffset, cRowStride] = args.slice(11) as [Parameters<Gemm>[11], number, number];
    if (m === 0 || n === 0 || k === 0) return;
    const single = c instanceof Float32Array;
    const { bytes, mr, nr } = single ? LAYOUTS.float32 : LAYOUTS.float64;
    const nPad = Math.ceil(n / nr) * nr;
    const mPad = Math.ceil(m / mr) * mr;
    // Wasm memory, in bytes: the elements of A and of B that the product reads, copied as they lie
    // (one memcpy each; packing then runs in wasm), C with padded rows, then the packed panels.
    const aSpan = (m - 1) * aRowStride + (k - 1) * aColStride + 1;
    const bSpan = (k - 1) * bRowStride + (n - 1) * bColStride + 1;
    const aResident = runtime.addressOf(a, single);
    const bResident = runtime.addressOf(b, single);
    const aStage = align64(runtime.residentBytes);
    const bStage = align64(aStage + (aResident < 0 ? aSpan * bytes : 0));
    // Rows that are contiguous on both sides (conv outputs of a whole plane) move as one block;
    // such a C in wasm memory already, of whole tiles (no padding needed), is added into where it
    // is. Any other C is copied in with padded rows and back.
    const contiguous = cRowStride === n && nPad === n;
    const cResident = runtime.addressOf(c, single);
    const cInPlace = contiguous && mPad === m && cResident >= 0;
    const cStage = align64(bStage + (bResident < 0 ? bSpan * bytes : 0));
    const cAt = cInPlace ? cResident + cOffset * bytes : cStage;
    const scratch = align64(cStage + (cInPlace ? 0 : mPad * nPad * bytes));
    if (m * n * k <= minProduct || !runtime.reserve(scratch + packedBytes(single, m, n, k))) {
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
    if (contiguous && !cInPlace) view.set(c.subarray(cOffset, cOffset + m * n), cBase);
    else if (!contiguous) {
      for (let i = 0; i < m; i++) {
        const row = cOffset + i * cRowStride;
        view.set(c.subarray(row, row + n), cBase + i * nPad);
      }
    }
    productAt(
      runtime,
      single,
      {
        m,
        n,
        k,
        a: aFrom,
        aRowStride,
        aColStride,
        b: bFrom,
        bRowStride,
        bColStride,
        c: cAt,
        ldc: nPad * bytes,
        scratch,
      },
      perChunk,
    );
    if (cInPlace) return;
    if (contiguous) c.set(view.subarray(cBase, cBase + m * n), cOffset);
    else {
      for (let i = 0; i < m; i++) {
        const from = cBase + i * nPad;
        c.set(view.subarray(from, from + n), cOffset + i * cRowStride);
      }
    }
  };
}
