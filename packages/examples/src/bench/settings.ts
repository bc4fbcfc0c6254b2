/** The focalgrad rows of the benchmark: which dense backend and how many threads each runs with. */

import { availableParallelism } from "node:os";
import { type BackendName, getBackend, setBackend, setNumThreads } from "@focalgrad/core";
import type { Implementation, ImplName } from "./run.js";

/** The focalgrad implementation names, each with its backend and thread count. */
export const FOCALGRAD_SETTINGS = {
  focalgrad: { backend: null, threads: null },
  "focalgrad-1t": { backend: null, threads: 1 },
  "focalgrad-js": { backend: "javascript", threads: 1 },
} as const satisfies Record<string, { backend: BackendName | null; threads: number | null }>;

export type FocalgradName = keyof typeof FOCALGRAD_SETTINGS;

export function isFocalgrad(name: ImplName): name is FocalgradName {
  return name in FOCALGRAD_SETTINGS;
}

/** The default backend (FOCALGRAD_BACKEND, else wasm where available), before any row changes it. */
const defaultBackend = getBackend();

/**
 * `implementation` renamed to `name`, with that row's backend and thread count made current
 * whenever it runs (before its cross-check and before its timing).
 *
 * @example
 * const rows = ["focalgrad", "focalgrad-1t"].map((n) => withSetting(n, focalgradDense(spec, "fwd")));
 */
export function withSetting(name: FocalgradName, implementation: Implementation): Implementation {
  const setting = FOCALGRAD_SETTINGS[name];
  const apply = async () => {
    setBackend(setting.backend ?? defaultBackend);
    setNumThreads(setting.threads ?? availableParallelism());
  };
  return {
    name,
    prepare: async () => {
      await apply();
      const prepared = await implementation.prepare();
      if (typeof prepared === "string") return prepared;
      // Tensors in the backend's own memory (wasm) are blocks of a memory grown before the check,
      // which the process's counters do not see again: the backend's own peak counts them.
      let backendPeak = 0;
      return {
        ...prepared,
        activate: async () => {
          await apply();
          await prepared.activate?.();
        },
        check: async (probe) => {
          const stats = getBackend().memoryStats?.bind(getBackend());
          const before = stats?.({ resetPeak: true });
          const checks = await prepared.check(probe);
          if (stats !== undefined && before !== undefined) {
            backendPeak = stats().peakBytes - before.bytes;
          }
          return checks;
        },
        trackedPeakBytes: () => Math.max(backendPeak, prepared.trackedPeakBytes?.() ?? 0),
      };
    },
  };
}
