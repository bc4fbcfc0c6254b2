/** argwhere's kernel on the wasm runtime: the positions of a bool array's true entries, where the array already lies in wasm memory. */

import { allocate, type DataArray } from "../../dtype.js";
import { align64, type WasmRuntime } from "./runtime.js";

/** Arrays shorter than this are scanned in JavaScript (a call into wasm costs more than the scan). */
const MIN_LENGTH = 4096;

/**
 * `nonzeroPositions` of the backend interface on `runtime` for bool arrays in its memory (a
 * tensor's data in the heap): the same positions as the JavaScript loop, sixteen bytes at a time.
 * Returns null (having done nothing) for any other array, which the caller scans in JavaScript.
 *
 * @example
 * const positions = wasmPositions(runtime).nonzeroPositions(mask) ?? nonzeroPositions(mask);
 */
export function wasmPositions(runtime: WasmRuntime) {
  return {
    nonzeroPositions: (data: DataArray): Int32Array | null => {
      const at = runtime.placeOf(data);
      if (!(data instanceof Uint8Array) || at < 0 || data.length < MIN_LENGTH) return null;
      const count = (runtime.exports.countNonzero8 as unknown as (a: number, n: number) => number)(
        at,
        data.length,
      );
      const positions = allocate("int32", count, false);
      const resident = runtime.placeOf(positions);
      // Positions that did not go to the heap are written to scratch and copied out.
      const outAt = resident >= 0 ? resident : align64(runtime.residentBytes);
      if (resident < 0 && !runtime.reserve(outAt + 4 * count)) return null;
      runtime.exports.nonzeroPositions8(at, data.length, outAt);
      if (resident < 0) positions.set(new Int32Array(runtime.memory.buffer, outAt, count));
      return positions;
    },
  };
}
