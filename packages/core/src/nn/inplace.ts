/** Writing into tensors' `data` in place (optimiser steps, loads, running statistics, initialisers) without confusing lazily fused results. */

import type { Tensor } from "../tensor.js";

/**
 * @internal Runs `write`, which changes the arrays `writable()` gives of `tensors` in place, then
 * marks each tensor modified (see `Tensor.write`; this is its form for several tensors at once).
 *
 * @example
 * writeInPlace([w], () => { w.writable()[0] -= 0.1; });
 */
export function writeInPlace(tensors: Iterable<Tensor>, write: () => void): void {
  write();
  for (const t of tensors) t.markModified();
}
