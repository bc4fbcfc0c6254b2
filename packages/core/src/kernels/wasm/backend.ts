/** The WebAssembly backend: the SIMD GEMM (on every core) under the convolutions, im2col and pooling in wasm, the fused elementwise kernels in wasm (its renderer), Adam's update with its state in wasm memory, the JavaScript loops for the pools' adjoints, the reductions and the gathers, argwhere's positions in wasm. */

import type { DenseBackend } from "../backend.js";
import {
  avgPool2dBackwardInto,
  avgPool2dInto,
  conv2dBackwardInputInto,
  conv2dBackwardWeightInto,
  conv2dInto,
  maxPool2dBackwardInto,
  maxPool2dInto,
} from "../conv.js";
import { javascriptReductions } from "../javascript-reductions.js";
import { wasmColumns } from "./columns.js";
import { wasmConvolutions } from "./convolution.js";
import { type GemmThresholds, PER_CHUNK, wasmGemm } from "./gemm.js";
import { wasmOptimizers } from "./optimizers.js";
import { wasmPooling } from "./pooling.js";
import { wasmPositions } from "./positions.js";
import { wasmReductions } from "./reductions.js";
import { createWasmRenderer } from "./renderer.js";
import { hasRelaxedSimd, MAX_TENSOR_BYTES, TENSOR_BUDGET, WasmRuntime } from "./runtime.js";

/**
 * Elements per im2col block on this backend: larger than the JavaScript backend's, because each
 * gemm call packs the weights again and may wake the worker threads; 256 Ki float32 (1 MiB) is
 * still within L2 on the machines this was tuned on.
 */
const COLUMN_BLOCK = 1 << 18;

/** Options of `createWasmBackend`: the relaxed-SIMD choice and the sizes above which products go to threads. */
export interface WasmBackendOptions extends GemmThresholds {
  /**
   * Use `f32x4.relaxed_madd` / `f64x2.relaxed_madd` (a fused multiply-add where the CPU has one).
   * Default: when the runtime validates it.
   */
  relaxed?: boolean;
  /**
   * Bytes of tensor data kept in wasm memory, where the kernels read and write it in place
   * (arrays of 64 KiB and more; beyond the budget, new ones go to JavaScript memory). The memory
   * grows to hold them and does not shrink. 0 keeps every tensor in JavaScript memory. Default
   * 512 MiB.
   */
  tensorBytes?: number;
}

/**
 * A backend whose matrix products, and so convolutions, run in WebAssembly SIMD128 on up to
 * `getNumThreads()` threads. float32 products accumulate in float32 (fused where relaxed SIMD is
 * on), float64 in float64: results match the JavaScript backend within rounding, and are the
 * same bits whatever the number of threads. Throws where WebAssembly SIMD is missing.
 *
 * @example
 * setBackend(createWasmBackend());
 * setBackend(createWasmBackend({ relaxed: false })); // plain SIMD multiply and add
 * createWasmBackend({ minProduct: 0, perChunk: 0 }); // every product in wasm, on every thread
 */
export function createWasmBackend(options: WasmBackendOptions = {}): DenseBackend {
  const relaxed = options.relaxed ?? hasRelaxedSimd();
  if (relaxed && !hasRelaxedSimd()) {
    throw new Error("createWasmBackend: relaxed is true but this runtime has no relaxed SIMD");
  }
  const tensorBytes = options.tensorBytes ?? TENSOR_BUDGET;
  if (!(Number.isInteger(tensorBytes) && tensorBytes >= 0 && tensorBytes <= MAX_TENSOR_BYTES)) {
    throw new Error(
      `createWasmBackend: tensorBytes must be an integer in [0, ${MAX_TENSOR_BYTES}], got ${tensorBytes}`,
    );
  }
  const runtime = new WasmRuntime(relaxed);
  runtime.tensorBudget = tensorBytes;
  const gemm = wasmGemm(runtime, options);
  const columns = wasmColumns(runtime);
  const convolutions = wasmConvolutions(runtime, options.perChunk ?? PER_CHUNK, COLUMN_BLOCK);
  const pooling = wasmPooling(runtime);
  const positions = wasmPositions(runtime);
  const reductions = wasmReductions(runtime);
  // Several images per product where their columns fit a batch, else whole images on each
  // thread, else (pointwise, grouped, or too large for the memory) a block of rows at a time.
  const conv2d: DenseBackend["conv2d"] = (x, w, bias, out, geometry) => {
    if (!convolutions.conv2d(x, w, bias, out, geometry)) {
      conv2dInto(x, w, bias, out, geometry, gemm, COLUMN_BLOCK, columns);
    }
  };
  return {
    name: relaxed ? "wasm" : "wasm-simd",
    gemm,
    conv2d,
    conv2dBackwardInput: (dy, w, dx, geometry) =>
      conv2dBackwardInputInto(dy, w, dx, geometry, gemm, COLUMN_BLOCK, columns, conv2d),
    conv2dBackwardWeight: (x, dy, dw, geometry) => {
      if (!convolutions.conv2dBackwardWeight(x, dy, dw, geometry)) {
        conv2dBackwardWeightInto(x, dy, dw, geometry, gemm, COLUMN_BLOCK, columns);
      }
    },
    maxPool2d: (x, out, argmax, geometry) => {
      if (!pooling.maxPool2d(x, out, argmax, geometry)) maxPool2dInto(x, out, argmax, geometry);
    },
    avgPool2d: (x, out, geometry) => {
      if (!pooling.avgPool2d(x, out, geometry)) avgPool2dInto(x, out, geometry);
    },
    // The pools' adjoints scatter with one addition per element: copying dy, the winners and dx
    // into wasm memory and back would cost several times the JavaScript loop, so the max-pool's
    // runs in wasm only on arrays there already (tensors' data), and the average-pool's in JavaScript.
    maxPool2dBackward: (dy, argmax, dx, geometry) => {
      if (!pooling.maxPool2dBackward(dy, argmax, dx, geometry)) {
        maxPool2dBackwardInto(dy, argmax, dx);
      }
    },
    avgPool2dBackward: avgPool2dBackwardInto,
    ...javascriptReductions,
    // Row sums (a bias gradient's) in wasm on arrays there already; the rest in JavaScript.
    reduce: (kind, x, outer, length, inner, out) => {
      if (kind === "sum" && inner === 1 && reductions.sumRows(x, outer, length, out)) return;
      javascriptReductions.reduce(kind, x, outer, length, inner, out);
    },
    nonzeroPositions: (data) =>
      positions.nonzeroPositions(data) ?? javascriptReductions.nonzeroPositions(data),
    ...wasmOptimizers(runtime),
    renderer: createWasmRenderer(runtime),
    allocate: (dtype, n, zeroed) =>
      tensorBytes > 0 ? runtime.tensorArray(dtype, n, zeroed ?? true) : null,
    memoryStats: ({ resetPeak = false } = {}) => {
      // Collected arrays' blocks first, so that the figures count live tensors only.
      runtime.reclaim();
      const stats = { bytes: runtime.tensorBytes, peakBytes: runtime.peakTensorBytes };
      if (resetPeak) runtime.peakTensorBytes = runtime.tensorBytes;
      return stats;
    },
  };
}
