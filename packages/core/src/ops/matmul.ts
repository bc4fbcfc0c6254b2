/** Matrix products: 2-D and batched, with NumPy broadcasting of the batch axes. */

import { allocate, promoteTypes } from "../dtype.js";
import { record } from "../engine.js";
import { matmulInto } from "../kernels/matmul.js";
import { broadcastShapes, broadcastStrides, formatShape, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import { cast } from "./cast.js";
import { transpose } from "./shape.js";
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
  checkFloat("matmul", "a", a);
  checkFloat("matmul", "b", b);
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(
      `matmul: both operands need rank >= 2, got ${formatShape(a.shape)} and ${formatShape(b.shape)} (use reshape or expandDims for vectors)`,
    );
  }
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) {
    throw new Error(
      `matmul: inner sizes differ: ${formatShape(a.shape)} @ ${formatShape(b.shape)} (${k} vs ${k2}; expected [..., m, k] @ [..., k, n])`,
    );
  }
  const dtype = promoteTypes(a.dtype, b.dtype);
  const x = cast(a, dtype);
  const y = cast(b, dtype);
  const batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batchCount = sizeOf(batch);
  const aStrides = broadcastStrides(a.shape.slice(0, -2), batch);
  const bStrides = broadcastStrides(b.shape.slice(0, -2), batch);
  const out = allocate(dtype, batchCount * m * n);
  const index = new Array<number>(batch.length).fill(0);
  for (let t = 0; t < batchCount; t++) {
    let aOff = 0;
    let bOff = 0;
    for (let d = 0; d < batch.length; d++) {
      aOff += index[d] * aStrides[d];
      bOff += index[d] * bStrides[d];
    }
    matmulInto(x.data, aOff * m * k, y.data, bOff * k * n, out, t * m * n, m, k, n);
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++index[d] < batch[d]) break;
      index[d] = 0;
    }
  }
  const result = new Tensor(out, [...batch, m, n], dtype);
  // The engine sums each gradient over the batch axes its operand was broadcast along.
  return record(
    "matmul",
    result,
    [x, y],
    [(g) => matmul(g, transpose(y)), (g) => matmul(transpose(x), g)],
  );
}
