/** argwhere's kernel: the flat positions of the non-zero entries of an array, in increasing order. */

import { allocate, type DataArray } from "../dtype.js";

/**
 * The positions i where `data[i] !== 0` (so a NaN counts, as in NumPy's `nonzero`), in increasing
 * order, in an int32 array of their count.
 *
 * @example
 * nonzeroPositions(Uint8Array.of(0, 1, 1, 0, 1)); // Int32Array [1, 2, 4]
 */
export function nonzeroPositions(data: DataArray): Int32Array {
  let count = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) count++;
  const positions = allocate("int32", count, false);
  for (let i = 0, k = 0; k < count; i++) if (data[i] !== 0) positions[k++] = i;
  return positions;
}
