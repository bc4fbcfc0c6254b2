/** The dense matrix-product kernel: C += op(A) · op(B), packed, cache-blocked and 4 × 4 register-tiled. */

import type { DataArray } from "../dtype.js";

/*
 * GotoBLAS layering in plain JavaScript. A KC × NC block of B is packed into 4-column panels
 * (kept in L3/L2), an MC × KC block of A into 4-row panels (kept in L2), and a micro-kernel keeps
 * a 4 × 4 tile of C in sixteen local doubles while it streams one panel of each. Packing reads
 * the operands through row and column strides, so a transposed operand costs nothing extra and
 * the backward products of matmul and conv2d need no transpose copies. Packed panels are always
 * Float64Array: the micro-kernel stays monomorphic whatever the dtype, and float32 products
 * accumulate in double precision, rounding once per stored tile.
 */

const MR = 4;
const NR = 4;
/** Depth of a packed block: a 4 × KC panel of B (8 KiB) stays in L1 while the micro-kernel runs. */
const KC = 256;
/** Rows of A per packed block (128 KiB of doubles, within L2). */
const MC = 64;
/** Columns of B per packed block (2 MiB of doubles, L2/L3). */
const NC = 1024;
/** Below this many multiply-adds, packing costs more than it saves. */
const SMALL = 8 * 8 * 8;

// Scratch panels shared by every call: kernels run synchronously, and this keeps the hot path
// free of allocation.
let packedA = new Float64Array(MC * KC);
let packedB = new Float64Array(KC * NC);

/**
 * C[m × n] += op(A)[m × k] · op(B)[k × n]. Element (i, p) of op(A) is
 * `a[aOffset + i * aRowStride + p * aColStride]` (swap the strides for a transposed A), likewise
 * for B; C is row-major from `cOffset` with `cRowStride` elements between rows. C is accumulated
 * into, so zero it first for a plain product.
 */
export function gemm(
  m: number,
  n: number,
  k: number,
  a: DataArray,
  aOffset: number,
  aRowStride: number,
  aColStride: number,
  b: DataArray,
  bOffset: number,
  bRowStride: number,
  bColStride: number,
  c: DataArray,
  cOffset: number,
  cRowStride: number,
): void {
  if (m === 0 || n === 0 || k === 0) return;
  if (m * n * k <= SMALL || m < 2 || n < 2) {
    gemmSimple(
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
  // Equal depth blocks of about KC: a depth of 288 (a 3 × 3 × 32 convolution) runs as one block of
  // 288 rather than 256 + 32, whose short second pass would be dominated by loading and storing C.
  const kBlock = Math.ceil(k / Math.max(1, Math.round(k / KC)));
  const ncMax = Math.min(NC, roundUp(n, NR));
  if (packedB.length < kBlock * ncMax) packedB = new Float64Array(kBlock * ncMax);
  if (packedA.length < kBlock * roundUp(MC, MR)) packedA = new Float64Array(kBlock * MC);
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += kBlock) {
      const kc = Math.min(kBlock, k - pc);
      packB(
        kc,
        nc,
        b,
        bOffset + pc * bRowStride + jc * bColStride,
        bRowStride,
        bColStride,
        packedB,
      );
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        packA(
          mc,
          kc,
          a,
          aOffset + ic * aRowStride + pc * aColStride,
          aRowStride,
          aColStride,
          packedA,
        );
        macroKernel(mc, nc, kc, packedA, packedB, c, cOffset + ic * cRowStride + jc, cRowStride);
      }
    }
  }
}

function roundUp(x: number, multiple: number): number {
  return Math.ceil(x / multiple) * multiple;
}

/** Unblocked product for tiny or degenerate (vector-shaped) operands. */
function gemmSimple(
  m: number,
  n: number,
  k: number,
  a: DataArray,
  aOffset: number,
  aRowStride: number,
  aColStride: number,
  b: DataArray,
  bOffset: number,
  bRowStride: number,
  bColStride: number,
  c: DataArray,
  cOffset: number,
  cRowStride: number,
): void {
  if (bColStride === 1 && n > 1) {
    // Rows of B are contiguous: i-p-j order streams them (a vector times a matrix, say).
    for (let i = 0; i < m; i++) {
      const cRow = cOffset + i * cRowStride;
      for (let p = 0; p < k; p++) {
        const av = a[aOffset + i * aRowStride + p * aColStride];
        const bRow = bOffset + p * bRowStride;
        for (let j = 0; j < n; j++) c[cRow + j] += av * b[bRow + j];
      }
    }
    return;
  }
  for (let i = 0; i < m; i++) {
    const aRow = aOffset + i * aRowStride;
    const cRow = cOffset + i * cRowStride;
    for (let j = 0; j < n; j++) {
      let acc = 0;
      let ai = aRow;
      let bi = bOffset + j * bColStride;
      for (let p = 0; p < k; p++) {
        acc += a[ai] * b[bi];
        ai += aColStride;
        bi += bRowStride;
      }
      c[cRow + j] += acc;
    }
  }
}

/** Packs an mc × kc block of A into 4-row panels, p-major within a panel, zero-padding the last. */
function packA(
  mc: number,
  kc: number,
  a: DataArray,
  offset: number,
  rowStride: number,
  colStride: number,
  out: Float64Array,
): void {
  let o = 0;
  for (let i = 0; i < mc; i += MR) {
    const rows = Math.min(MR, mc - i);
    const r0 = offset + i * rowStride;
    if (rows === MR) {
      const r1 = r0 + rowStride;
      const r2 = r1 + rowStride;
      const r3 = r2 + rowStride;
      for (let p = 0; p < kc; p++) {
        const q = p * colStride;
        out[o] = a[r0 + q];
        out[o + 1] = a[r1 + q];
        out[o + 2] = a[r2 + q];
        out[o + 3] = a[r3 + q];
        o += MR;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++)
          out[o + r] = r < rows ? a[r0 + r * rowStride + p * colStride] : 0;
        o += MR;
      }
    }
  }
}

/** Packs a kc × nc block of B into 4-column panels, p-major within a panel, zero-padding the last. */
function packB(
  kc: number,
  nc: number,
  b: DataArray,
  offset: number,
  rowStride: number,
  colStride: number,
  out: Float64Array,
): void {
  let o = 0;
  for (let j = 0; j < nc; j += NR) {
    const cols = Math.min(NR, nc - j);
    const c0 = offset + j * colStride;
    if (cols === NR) {
      const c1 = c0 + colStride;
      const c2 = c1 + colStride;
      const c3 = c2 + colStride;
      for (let p = 0; p < kc; p++) {
        const q = p * rowStride;
        out[o] = b[c0 + q];
        out[o + 1] = b[c1 + q];
        out[o + 2] = b[c2 + q];
        out[o + 3] = b[c3 + q];
        o += NR;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let c = 0; c < NR; c++)
          out[o + c] = c < cols ? b[c0 + c * colStride + p * rowStride] : 0;
        o += NR;
      }
    }
  }
}

/** Runs the micro-kernel over every 4 × 4 tile of an mc × nc block of C. */
function macroKernel(
  mc: number,
  nc: number,
  kc: number,
  ap: Float64Array,
  bp: Float64Array,
  c: DataArray,
  cOffset: number,
  cRowStride: number,
): void {
  for (let j = 0; j < nc; j += NR) {
    const cols = Math.min(NR, nc - j);
    const bBase = j * kc;
    for (let i = 0; i < mc; i += MR) {
      const rows = Math.min(MR, mc - i);
      microKernel(
        kc,
        ap,
        i * kc,
        bp,
        bBase,
        c,
        cOffset + i * cRowStride + j,
        cRowStride,
        rows,
        cols,
      );
    }
  }
}

/** A 4 × 4 tile of C += (4-row panel of A) · (4-column panel of B), held in sixteen locals. */
function microKernel(
  kc: number,
  ap: Float64Array,
  aBase: number,
  bp: Float64Array,
  bBase: number,
  c: DataArray,
  cOffset: number,
  cRowStride: number,
  rows: number,
  cols: number,
): void {
  let c00 = 0;
  let c01 = 0;
  let c02 = 0;
  let c03 = 0;
  let c10 = 0;
  let c11 = 0;
  let c12 = 0;
  let c13 = 0;
  let c20 = 0;
  let c21 = 0;
  let c22 = 0;
  let c23 = 0;
  let c30 = 0;
  let c31 = 0;
  let c32 = 0;
  let c33 = 0;
  let ai = aBase;
  let bi = bBase;
  const end = aBase + kc * MR;
  while (ai < end) {
    const b0 = bp[bi];
    const b1 = bp[bi + 1];
    const b2 = bp[bi + 2];
    const b3 = bp[bi + 3];
    const a0 = ap[ai];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    const a1 = ap[ai + 1];
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    const a2 = ap[ai + 2];
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    const a3 = ap[ai + 3];
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
    ai += MR;
    bi += NR;
  }
  if (rows === MR && cols === NR) {
    let o = cOffset;
    c[o] += c00;
    c[o + 1] += c01;
    c[o + 2] += c02;
    c[o + 3] += c03;
    o += cRowStride;
    c[o] += c10;
    c[o + 1] += c11;
    c[o + 2] += c12;
    c[o + 3] += c13;
    o += cRowStride;
    c[o] += c20;
    c[o + 1] += c21;
    c[o + 2] += c22;
    c[o + 3] += c23;
    o += cRowStride;
    c[o] += c30;
    c[o + 1] += c31;
    c[o + 2] += c32;
    c[o + 3] += c33;
    return;
  }
  // An edge tile: the padded rows and columns of the panels computed zeros; store only the real ones.
  storeEdge(c, cOffset, cRowStride, rows, cols, 0, c00, c01, c02, c03);
  storeEdge(c, cOffset, cRowStride, rows, cols, 1, c10, c11, c12, c13);
  storeEdge(c, cOffset, cRowStride, rows, cols, 2, c20, c21, c22, c23);
  storeEdge(c, cOffset, cRowStride, rows, cols, 3, c30, c31, c32, c33);
}

function storeEdge(
  c: DataArray,
  cOffset: number,
  cRowStride: number,
  rows: number,
  cols: number,
  row: number,
  v0: number,
  v1: number,
  v2: number,
  v3: number,
): void {
  if (row >= rows) return;
  const o = cOffset + row * cRowStride;
  c[o] += v0;
  if (cols > 1) c[o + 1] += v1;
  if (cols > 2) c[o + 2] += v2;
  if (cols > 3) c[o + 3] += v3;
}
