/** The dense backends every kernel test runs on, and a describe block that runs its tests on each. */

import { afterAll, beforeAll, describe } from "vitest";
import {
  createWasmBackend,
  type DenseBackend,
  getNumThreads,
  javascriptBackend,
  setBackend,
  setNumThreads,
} from "../src/index.js";
import { hasRelaxedSimd } from "../src/kernels/wasm/runtime.js";

/**
 * The wasm backends with every product sent to wasm and split over every thread (the defaults
 * leave the tests' small products to the JavaScript kernel): relaxed SIMD where the runtime has
 * it, and plain SIMD always.
 */
export const WASM_BACKENDS: DenseBackend[] = [
  ...(hasRelaxedSimd() ? [createWasmBackend({ relaxed: true, minProduct: 0, perChunk: 0 })] : []),
  createWasmBackend({ relaxed: false, minProduct: 0, perChunk: 0 }),
];

/** The reference first, then the first wasm backend (the one a user gets by default). */
export const BACKENDS: DenseBackend[] = [javascriptBackend, WASM_BACKENDS[0]];

/**
 * `describe(name)` once per backend of `backends`, each run with that backend current on one
 * thread: the op tests make thousands of tiny products, and waking a worker for each costs more
 * than the product on a loaded machine; backends.test.ts checks the split between threads.
 */
export function describeOnBackends(
  name: string,
  body: (backend: DenseBackend) => void,
  backends: readonly DenseBackend[] = BACKENDS,
): void {
  for (const backend of backends) {
    describe(`${name} [${backend.name}]`, () => {
      let previous: DenseBackend;
      let threads: number;
      beforeAll(() => {
        previous = setBackend(backend);
        threads = getNumThreads();
        setNumThreads(1);
      });
      afterAll(() => {
        setBackend(previous);
        setNumThreads(threads);
      });
      body(backend);
    });
  }
}

/** `n` values in [−0.5, 0.5) from a linear congruential sequence seeded by `seed`. */
export function filled(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}
