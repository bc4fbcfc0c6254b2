/** The seam between ops and the dense kernels: ops call whichever backend is current, so a faster one (WebAssembly SIMD) can replace the plain-JavaScript loops without touching any op. */

import type { DataArray } from "../dtype.js";
import {
  type ConvGeometry,
  conv2dBackwardInputInto,
  conv2dBackwardWeightInto,
  conv2dInto,
} from "./conv.js";
import { gemm } from "./matmul.js";

/** C[m × n] += op(A)[m × k] · op(B)[k × n], each operand read through (offset, row stride, column stride). */
export type Gemm = typeof gemm;

/**
 * The dense kernels an op may ask for. Every function writes into an output the caller allocated
 * (zero-filled) and never allocates per element; float32 and float64 arrays must both be handled.
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
}

/**
 * Plain JavaScript: packed, blocked, 4 × 4 register-tiled gemm, and im2col convolutions on top
 * of it. A faster backend can reuse any of its kernels.
 *
 * @example
 * setBackend({ ...javascriptBackend, name: "wasm-gemm", gemm: wasmGemm });
 */
export const javascriptBackend: DenseBackend = {
  name: "javascript",
  gemm,
  conv2d: (x, w, bias, out, geometry) => conv2dInto(x, w, bias, out, geometry, gemm),
  conv2dBackwardInput: (dy, w, dx, geometry) => conv2dBackwardInputInto(dy, w, dx, geometry, gemm),
  conv2dBackwardWeight: (x, dy, dw, geometry) =>
    conv2dBackwardWeightInto(x, dy, dw, geometry, gemm),
};

let current: DenseBackend = javascriptBackend;

/**
 * Makes `backend` the one every matmul and conv op uses from now on; returns the previous one.
 *
 * @example
 * const previous = setBackend({ ...getBackend(), name: "traced" });
 * setBackend(previous);
 */
export function setBackend(backend: DenseBackend): DenseBackend {
  for (const key of ["gemm", "conv2d", "conv2dBackwardInput", "conv2dBackwardWeight"] as const) {
    if (typeof backend?.[key] !== "function") {
      throw new Error(
        `setBackend: backend.${key} must be a function, got ${typeof backend?.[key]}`,
      );
    }
  }
  const previous = current;
  current = backend;
  return previous;
}

/**
 * The backend the dense ops run on.
 *
 * @example
 * getBackend().name; // "javascript"
 */
export function getBackend(): DenseBackend {
  return current;
}

export type { ConvGeometry };
