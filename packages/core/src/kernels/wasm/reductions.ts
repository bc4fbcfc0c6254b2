/** Row sums on the wasm runtime (the reduction behind a bias gradient): rows of an array already in wasm memory summed in place, shared between the threads. */

import type { DataArray } from "../../dtype.js";
import { threadChunks } from "./gemm.js";
import { align64, FUNCTION_NAMES, type WasmRuntime } from "./runtime.js";

/** Elements below which the JavaScript loop is left to sum (a call into wasm costs more). */
const MIN_ELEMENTS = 1 << 14;
/**
 * Elements a chunk of rows gets at the least before another thread is woken: the sums are bound
 * by memory, not arithmetic (1 M float32 took 0.36–0.42 ms on one thread, 0.45–0.55 on two), so
 * only arrays of several MiB are split.
 */
const CHUNK_ELEMENTS = 1 << 20;

/**
 * The row sums of the backend interface's `reduce` (a sum over the middle axis with `inner` 1) on
 * `runtime`, for float32 and float64 arrays in its memory (tensors' data in the heap): the same
 * bits as the JavaScript loop on any number of threads. Returns false (having done nothing) for
 * other arrays, small ones, or an output of another float type, which the caller sums in JavaScript.
 *
 * @example
 * wasmReductions(runtime).sumRows(x, outer, length, out) || reduce("sum", x, outer, length, 1, out);
 */
export function wasmReductions(runtime: WasmRuntime) {
  return {
    sumRows: (x: DataArray, outer: number, length: number, out: DataArray): boolean => {
      const single = x instanceof Float32Array;
      const at = runtime.addressOf(x, single);
      const sameType = single ? out instanceof Float32Array : out instanceof Float64Array;
      if (at < 0 || !sameType || outer * length < MIN_ELEMENTS) return false;
      if (x.length < outer * length || out.length < outer) {
        throw new Error(
          `reduce: expected ${outer * length} elements and ${outer} outputs, got ${x.length} and ${out.length}`,
        );
      }
      const bytes = single ? 4 : 8;
      // An output elsewhere (a small one in JavaScript memory) is written to scratch and copied out.
      const resident = runtime.addressOf(out, single);
      const outAt = resident >= 0 ? resident : align64(runtime.residentBytes);
      if (resident < 0 && !runtime.reserve(outAt + outer * bytes)) return false;
      runtime.run({
        fn: FUNCTION_NAMES.indexOf(single ? "sumRows32" : "sumRows64"),
        args: [at, outAt, length],
        total: outer,
        chunks: threadChunks(outer, outer * length, CHUNK_ELEMENTS),
      });
      if (resident < 0) {
        const view = single ? runtime.f32 : runtime.f64;
        out.set(view.subarray(outAt / bytes, outAt / bytes + outer));
      }
      return true;
    },
  };
}
