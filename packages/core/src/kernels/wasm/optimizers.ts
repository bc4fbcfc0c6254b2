/** The optimisers' kernels of the wasm backend: their state kept in wasm memory for good, and Adam's step run there on every core. */

import type { DataArray } from "../../dtype.js";
import { type AdamStep, adamInto, type StateArray } from "../optimizers.js";
import { ADAM_SETTINGS } from "./optim-module.js";
import { align64, FUNCTION_NAMES, getNumThreads, type WasmRuntime } from "./runtime.js";

/** Below this many elements a parameter is updated by the JavaScript loop: the copies in and out would cost more than they save. */
const MIN_ELEMENTS = 64;

/** Elements per chunk when the update is shared between threads, at the least. */
const PER_CHUNK = 1 << 15;

/**
 * `optimizerState` and `adam` of the backend interface on `runtime`. State buffers live in the
 * runtime's heap, so each step copies at most the parameter (in and out) and its gradient (in),
 * and neither when they are tensors' data in wasm memory already;
 * buffers made elsewhere (restored from a `stateDict` before this backend was current, say) are
 * updated by the JavaScript loop instead, with the same result.
 *
 * @example
 * const { optimizerState, adam } = wasmOptimizers(runtime);
 * const [m, v] = [optimizerState(p.length), optimizerState(p.length)];
 * adam(p, g, m, v, step);
 */
export function wasmOptimizers(runtime: WasmRuntime) {
  return {
    optimizerState: (length: number, single: boolean): StateArray =>
      runtime.heapView(length, single) ??
      (single ? new Float32Array(length) : new Float64Array(length)),
    adam: (param: DataArray, grad: DataArray, m: StateArray, v: StateArray, s: AdamStep) => {
      const n = param.length;
      const single = param instanceof Float32Array;
      const mAt = runtime.addressOf(m, single);
      const vAt = runtime.addressOf(v, single);
      if (
        n < MIN_ELEMENTS ||
        mAt < 0 ||
        vAt < 0 ||
        !(single || param instanceof Float64Array) ||
        grad.constructor !== param.constructor
      ) {
        adamInto(param, grad, m, v, s);
        return;
      }
      const bytes = single ? 4 : 8;
      const lanes = 16 / bytes;
      // The kernel updates a vector at a time: a parameter or gradient already in wasm memory
      // (a tensor's data) is used in place when its length is whole vectors (else its last vector
      // would run past it, perhaps into another array); the others are copied in (and the
      // parameter out), each with room for a vector more. (The heap's blocks are whole cache
      // lines, so the moments have that room.)
      const inPlace = (array: DataArray) =>
        n % lanes === 0 ? runtime.addressOf(array, single) : -1;
      const [paramResident, gradResident] = [inPlace(param), inPlace(grad)];
      const settingsAt = align64(runtime.residentBytes);
      const paramStage = align64(settingsAt + ADAM_SETTINGS.length * 8);
      const gradStage = align64(paramStage + (paramResident < 0 ? (n + lanes) * bytes : 0));
      const paramAt = paramResident < 0 ? paramStage : paramResident;
      const gradAt = gradResident < 0 ? gradStage : gradResident;
      if (!runtime.reserve(gradStage + (n + lanes) * bytes)) {
        adamInto(param, grad, m, v, s);
        return;
      }
      const values: Record<(typeof ADAM_SETTINGS)[number], number> = {
        ...s,
        oneMinusBeta1: 1 - s.beta1,
        oneMinusBeta2: 1 - s.beta2,
      };
      runtime.f64.set(
        ADAM_SETTINGS.map((name) => values[name]),
        settingsAt / 8,
      );
      const view = single ? runtime.f32 : runtime.f64;
      if (paramResident < 0) view.set(param, paramAt / bytes);
      if (gradResident < 0) view.set(grad, gradAt / bytes);
      const vectors = Math.ceil(n / lanes);
      runtime.run({
        fn: FUNCTION_NAMES.indexOf(single ? "adam32" : "adam64"),
        args: [settingsAt, paramAt, gradAt, mAt, vAt],
        total: vectors,
        step: lanes,
        limit: n,
        chunks: Math.max(1, Math.min(vectors, 2 * getNumThreads(), Math.floor(n / PER_CHUNK))),
      });
      if (paramResident < 0) param.set(view.subarray(paramAt / bytes, paramAt / bytes + n));
    },
  };
}
