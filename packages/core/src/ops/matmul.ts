/** Matrix products: 2-D and batched, with NumPy broadcasting of the batch axes, on the current dense backend. */

import { allocate, promoteTypes } from "../dtype.js";
import { getBackend } from "../kernels/backend.js";
import { broadcastShapes, broadcastStrides, checkSize, formatShape, sizeOf } from "../shape.js";
import { record } from "../tape.js";
import { Tensor } from "../tensor.js";
import { cast } from "./cast.js";
import { checkFloat } from "./util.js";

/**
 * `a @ b` for float tensors of rank >= 2: [..., m, k] · [..., k, n] → [..., m, n], the batch
 * axes broadcast (as `torch.matmul`). Mixed float32/float64 computes in float64.
 *
 * @example
 * matmul(ones([2, 3]), ones([3, 4])); // shape [2, 4], all 3
 * matmul(zeros([8, 2, 3]), zeros([3, 5])).shape; // [8, 2, 5]
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return matmulTransposed("matmul", a, b, false, false);
}

/**
 * @internal `op(a) @ op(b)` where `op` transposes the last two axes when its flag is set, without
 * a transpose copy: the kernel reads a transposed operand through swapped strides. The gradient
 * rules are products of the same family, so the backward pass of matmul copies nothing either
 * and stays differentiable.
 *
 * @example
 * matmulTransposed("linear", x, weight, false, true); // x @ weightᵀ, as nn.Linear needs
 */
export function matmulTransposed(
  op: string,
  a: Tensor,
  b: Tensor,
  transposeA: boolean,
  transposeB: boolean,
): Tensor {
  checkFloat(op, "a", a);
  checkFloat(op, "b", b);
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(
      `${op}: both operands need rank >= 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)} (use reshape or expandDims for vectors)`,
    );
  }
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const [k2, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
  if (k !== k2) {
    const what = `${formatShape(a.shape)}${transposeA ? "ᵀ" : ""} @ ${formatShape(b.shape)}${transposeB ? "ᵀ" : ""}`;
    throw new Error(
      `${op}: inner sizes differ: ${what} (${k} vs ${k2}; expected [..., m, k] @ [..., k, n])`,
    );
  }
  const dtype = promoteTypes(a.dtype, b.dtype);
  const x = cast(a, dtype);
  const y = cast(b, dtype);
  const batch = broadcastShapes(op, a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batchCount = sizeOf(batch);
  const aStrides = broadcastStrides(a.shape.slice(0, -2), batch);
  const bStrides = broadcastStrides(b.shape.slice(0, -2), batch);
  const out = allocate(dtype, checkSize(op, [...batch, m, n]));
  // Element (i, p) of op(a) sits at i * rowStride + p * colStride within one matrix.
  const [aRowStride, aColStride] = transposeA ? [1, aCols] : [aCols, 1];
  const [bRowStride, bColStride] = transposeB ? [1, bCols] : [bCols, 1];
  const { gemm } = getBackend();
  const index = new Array<number>(batch.length).fill(0);
  for (let t = 0; t < batchCount; t++) {
    let aOff = 0;
    let bOff = 0;
    for (let d = 0; d < batch.length; d++) {
      aOff += index[d] * aStrides[d];
      bOff += index[d] * bStrides[d];
    }
    gemm(
      m,
      n,
      k,
      x.read(),
      aOff * m * k,
      aRowStride,
      aColStride,
      y.read(),
      bOff * k * n,
      bRowStride,
      bColStride,
      out,
      t * m * n,
      n,
    );
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++index[d] < batch[d]) break;
      index[d] = 0;
    }
  }
  const result = new Tensor(out, [...batch, m, n], dtype);
  // With C = op(A) op(B): dop(A) = G op(B)ᵀ and dop(B) = op(A)ᵀ G; transposing those back when A
  // (or B) entered transposed gives four products of this same family. The engine sums each
  // gradient over the batch axes its operand was broadcast along.
  return record(
    "matmul",
    result,
    [x, y],
    [
      (g) =>
        transposeA
          ? matmulTransposed("matmul", y, g, transposeB, true)
          : matmulTransposed("matmul", g, y, false, !transposeB),
      (g) =>
        transposeB
          ? matmulTransposed("matmul", g, x, true, transposeA)
          : matmulTransposed("matmul", x, g, !transposeA, false),
    ],
    undefined,
    { transposeA, transposeB },
  );
}
