/**
 * `argwhere`'s pending results: the coordinates of the hits are written out only if something
 * reads them, and a gather through them uses the flat positions instead (no range check, no
 * offsets recomputed). The third kind of pending value beside programs and deferred sums (index.ts).
 */

import { type Shape, stridesOf } from "../shape.js";
import { Tensor } from "../tensor.js";

/** What the coordinates of each pending result are made from: the shape searched and each hit's flat position. */
const sources = new WeakMap<Tensor, { shape: Shape; positions: Int32Array }>();

/** The multi-indices (row-major, one row each) of flat positions in a tensor of `shape`. */
function coordinates(positions: Int32Array, shape: Shape): Int32Array {
  const rank = shape.length;
  const out = new Int32Array(positions.length * rank);
  const strides = stridesOf(shape);
  for (let k = 0, o = 0; k < positions.length; k++) {
    let rest = positions[k];
    for (let d = 0; d < rank; d++) {
      const i = Math.floor(rest / strides[d]);
      out[o++] = i;
      rest -= i * strides[d];
    }
  }
  return out;
}

/**
 * An int32 tensor [K, rank of `shape`] of the coordinates of the flat `positions` (increasing) in
 * a tensor of `shape`, written out when first read.
 *
 * @example
 * pendingCoordinates(Int32Array.of(0, 3), [2, 2]).toArray(); // [[0, 0], [1, 1]]
 */
export function pendingCoordinates(positions: Int32Array, shape: Shape): Tensor {
  const result = new Tensor(null, [positions.length, shape.length], "int32", () =>
    coordinates(positions, shape),
  );
  sources.set(result, { shape, positions });
  return result;
}

/**
 * The shape and flat positions `indices` holds the coordinates of, when it is an unchanged result
 * of `pendingCoordinates` (never written to, its memory never handed out); else undefined.
 */
export function coordinatesSource(
  indices: Tensor,
): { readonly shape: Shape; readonly positions: Int32Array } | undefined {
  return indices.version === 0 && !indices.isExposed ? sources.get(indices) : undefined;
}
