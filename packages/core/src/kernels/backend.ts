/** The seam between ops and every kernel that is not elementwise (products, convolutions, pools, reductions, gathers): ops (and optimisers) call whichever backend is current, so a faster one (WebAssembly SIMD) can replace the plain-JavaScript loops without touching any op. */

import { type DataArray, type Placement, setPlacement } from "../dtype.js";
import {
  avgPool2dBackwardInto,
  avgPool2dInto,
  type ConvGeometry,
  conv2dBackwardInputInto,
  conv2dBackwardWeightInto,
  conv2dInto,
  maxPool2dBackwardInto,
  maxPool2dInto,
  type PoolGeometry,
} from "./conv.js";
import { javascriptReductions } from "./javascript-reductions.js";
import type { Renderer } from "./kernel.js";
import { gemm } from "./matmul.js";
import { type AdamStep, adamInto, type StateArray } from "./optimizers.js";
import { createWasmBackend } from "./wasm/backend.js";
import { hasWasmSimd } from "./wasm/runtime.js";

/** The reduction and gather kernels, with the signatures of their JavaScript loops. */
type Reductions = typeof javascriptReductions;

/** C[m × n] += op(A)[m × k] · op(B)[k × n], each operand read through (offset, row stride, column stride). */
export type Gemm = typeof gemm;

/**
 * The kernels an op may ask for besides the elementwise ones (which fuse, and live apart). Every
 * function writes into an output the caller allocated (zero-filled) and never allocates per
 * element; float32 and float64 arrays must both be handled, and int32 where an op allows it
 * (reductions, gathers).
 */
export interface DenseBackend {
  /** A name for messages and benchmarks, e.g. "javascript". */
  readonly name: string;
  /** The general matrix product every matmul runs on. */
  gemm: Gemm;
  /** out[B, Cout, Ho, Wo] = conv(x, w) (+ bias per output channel when given). */
  conv2d(
    x: DataArray,
    w: DataArray,
    bias: DataArray | null,
    out: DataArray,
    geometry: ConvGeometry,
  ): void;
  /** dx[B, Cin, H, W] += the transposed convolution of dy with w (conv2d's gradient in x). */
  conv2dBackwardInput(dy: DataArray, w: DataArray, dx: DataArray, geometry: ConvGeometry): void;
  /** dw[Cout, Cin / groups, kh, kw] += conv2d's gradient in w, from the input x and dy. */
  conv2dBackwardWeight(x: DataArray, dy: DataArray, dw: DataArray, geometry: ConvGeometry): void;
  /**
   * out = the maximum of each window, argmax = the flat index into x of the element that won
   * (the first maximum in row-major window order; the first NaN wins).
   */
  maxPool2d(x: DataArray, out: DataArray, argmax: Int32Array, geometry: PoolGeometry): void;
  /**
   * dx += the adjoint of maxPool2d applied to dy: each dy[o] added at dx[argmax[o]], in increasing
   * o; `argmax` is what maxPool2d gave for `geometry` (each winner in its own plane).
   */
  maxPool2dBackward(dy: DataArray, argmax: Int32Array, dx: DataArray, geometry: PoolGeometry): void;
  /** out = the mean of each window, the zero padding counted (divides by kh · kw). */
  avgPool2d(x: DataArray, out: DataArray, geometry: PoolGeometry): void;
  /** dx += the adjoint of avgPool2d applied to dy. */
  avgPool2dBackward(dy: DataArray, dx: DataArray, geometry: PoolGeometry): void;
  /** Sum, max or min over the middle axis of x viewed as [outer, length, inner]. */
  reduce: Reductions["reduce"];
  /** The position of the max or min over the middle axis (first on ties, first NaN wins). */
  argReduce: Reductions["argReduce"];
  /** Running sums over the middle axis, forwards or reversed. */
  cumulativeSum: Reductions["cumulativeSum"];
  /** out[o, i, n] = x[o, index[i], n] (`gather` along an axis). */
  gatherAxis: Reductions["gatherAxis"];
  /** The adjoint of `gatherAxis`: repeated indices add up. */
  scatterAddAxis: Reductions["scatterAddAxis"];
  /** Contiguous slices at row starts (`gatherNd`). */
  gatherRows: Reductions["gatherRows"];
  /** The adjoint of `gatherRows`. */
  scatterAddRows: Reductions["scatterAddRows"];
  /** out[o, j, n] = x[o, index[o, j, n], n] (`takeAlongAxis`). */
  gatherAlong: Reductions["gatherAlong"];
  /** The adjoint of `gatherAlong`. */
  scatterAddAlong: Reductions["scatterAddAlong"];
  /** The positions of the non-zero entries, in increasing order (`argwhere`). */
  nonzeroPositions: Reductions["nonzeroPositions"];
  /**
   * A zeroed buffer of `length` elements, float32 (`single`) or float64, for an optimiser's state
   * (Adam's moments), where this backend's optimiser kernels read it in place; it lives as long
   * as the array is referenced.
   */
  optimizerState(length: number, single: boolean): StateArray;
  /**
   * Adam's (and AdamW's) update of `param` in place from `grad`, with its moments `m`, `v`, in
   * their precision (any arrays: a backend that cannot read them in place must still update them).
   */
  adam(param: DataArray, grad: DataArray, m: StateArray, v: StateArray, step: AdamStep): void;
  /**
   * The renderer of the fused elementwise kernels (lazy fusion) on this backend; absent, the
   * JavaScript renderer. A backend's renderer may leave kernels to JavaScript's (`supports`).
   */
  readonly renderer?: Renderer;
  /**
   * Where a tensor's large arrays go while this backend is in force: zeroed arrays in memory its
   * kernels read and write in place (freed with the tensor, as any array is), or null to leave
   * one to JavaScript memory. Absent: JavaScript memory.
   */
  readonly allocate?: Placement;
  /**
   * Bytes of tensor data in the backend's own memory (`allocate`'s arrays not yet collected) and
   * the most there has been since the last `resetPeak` (as `torch.cuda.max_memory_allocated`).
   * Absent for a backend that keeps nothing of its own.
   */
  memoryStats?(options?: { resetPeak?: boolean }): BackendMemory;
}

/** What `DenseBackend.memoryStats` reports. */
export interface BackendMemory {
  /** Bytes of tensor data in the backend's memory now (blocks of collected tensors freed first). */
  bytes: number;
  /** The most `bytes` has been since the backend was made or its peak was last reset. */
  peakBytes: number;
}

/** The kernels every backend must provide. */
const KERNELS = [
  "gemm",
  "conv2d",
  "conv2dBackwardInput",
  "conv2dBackwardWeight",
  "maxPool2d",
  "maxPool2dBackward",
  "avgPool2d",
  "avgPool2dBackward",
  "reduce",
  "argReduce",
  "cumulativeSum",
  "gatherAxis",
  "scatterAddAxis",
  "gatherRows",
  "scatterAddRows",
  "gatherAlong",
  "scatterAddAlong",
  "nonzeroPositions",
  "optimizerState",
  "adam",
] as const satisfies readonly (keyof DenseBackend)[];

/**
 * Plain JavaScript: packed, blocked, 4 × 4 register-tiled gemm, im2col convolutions on top of
 * it, direct pooling loops, and the reductions and gathers. The reference every other backend is
 * tested against, and the fallback where WebAssembly SIMD is missing.
 *
 * @example
 * setBackend(javascriptBackend);
 */
export const javascriptBackend: DenseBackend = {
  name: "javascript",
  gemm,
  conv2d: (x, w, bias, out, geometry) => conv2dInto(x, w, bias, out, geometry, gemm),
  conv2dBackwardInput: (dy, w, dx, geometry) => conv2dBackwardInputInto(dy, w, dx, geometry, gemm),
  conv2dBackwardWeight: (x, dy, dw, geometry) =>
    conv2dBackwardWeightInto(x, dy, dw, geometry, gemm),
  maxPool2d: maxPool2dInto,
  maxPool2dBackward: maxPool2dBackwardInto,
  avgPool2d: avgPool2dInto,
  avgPool2dBackward: avgPool2dBackwardInto,
  ...javascriptReductions,
  optimizerState: (length, single) =>
    single ? new Float32Array(length) : new Float64Array(length),
  adam: adamInto,
};

/** The backends that can be selected by name (`setBackend` or the FOCALGRAD_BACKEND variable). */
export type BackendName = "javascript" | "js" | "wasm";

let wasmBackend: DenseBackend | null = null;

function named(name: string, where: string): DenseBackend {
  if (name === "javascript" || name === "js") return javascriptBackend;
  if (name === "wasm") {
    if (!hasWasmSimd()) {
      throw new Error(`${where}: "wasm" needs WebAssembly SIMD128, which this runtime lacks`);
    }
    wasmBackend ??= createWasmBackend();
    return wasmBackend;
  }
  throw new Error(`${where}: unknown backend "${name}" (expected "wasm", "javascript" or "js")`);
}

/**
 * @internal The backend in force until `setBackend` is called, from the value of the
 * FOCALGRAD_BACKEND variable: that backend if it is set, otherwise WebAssembly where the runtime
 * has SIMD128 and JavaScript elsewhere.
 */
export function backendFromEnvironment(variable: string | undefined): DenseBackend {
  if (variable !== undefined && variable.trim() !== "") {
    return named(variable.trim().toLowerCase(), "FOCALGRAD_BACKEND");
  }
  return hasWasmSimd() ? named("wasm", "default backend") : javascriptBackend;
}

let current: DenseBackend | null = null;

/**
 * Makes `backend` (a backend, or the name of a built-in one) the one every matmul, conv and pool
 * op uses from now on; returns the previous one.
 *
 * @example
 * const previous = setBackend("javascript");
 * setBackend(previous);
 */
export function setBackend(backend: DenseBackend | BackendName): DenseBackend {
  const chosen = typeof backend === "string" ? named(backend, "setBackend") : backend;
  for (const key of KERNELS) {
    if (typeof chosen?.[key] !== "function") {
      throw new Error(`setBackend: backend.${key} must be a function, got ${typeof chosen?.[key]}`);
    }
  }
  const renderer = chosen.renderer;
  if (
    renderer !== undefined &&
    (typeof renderer?.supports !== "function" || typeof renderer?.run !== "function")
  ) {
    throw new Error(
      "setBackend: backend.renderer must be a renderer (supports and run functions) or absent",
    );
  }
  if (chosen.memoryStats !== undefined && typeof chosen.memoryStats !== "function") {
    throw new Error(
      `setBackend: backend.memoryStats must be a function or absent, got ${typeof chosen.memoryStats}`,
    );
  }
  if (chosen.allocate !== undefined && typeof chosen.allocate !== "function") {
    throw new Error(
      `setBackend: backend.allocate must be a function or absent, got ${typeof chosen.allocate}`,
    );
  }
  const previous = getBackend();
  current = chosen;
  return previous;
}

/**
 * The backend the dense ops run on.
 *
 * @example
 * getBackend().name; // "wasm" where WebAssembly SIMD128 is available, else "javascript"
 */
export function getBackend(): DenseBackend {
  current ??= backendFromEnvironment(
    (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
      ?.FOCALGRAD_BACKEND,
  );
  return current;
}

export type { ConvGeometry, PoolGeometry };

// Large arrays of new tensors go where the backend in force puts them (the wasm backend: its memory).
setPlacement((dtype, n, zeroed) => getBackend().allocate?.(dtype, n, zeroed) ?? null);
