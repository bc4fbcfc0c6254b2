/** Writing into tensors' `data` in place (optimiser steps, loads, running statistics, initialisers) without confusing lazily fused results. */

import type { Tensor } from "../tensor.js";

/**
 * @internal Runs `write`, which changes the `data` of `tensors` in place, then marks each tensor
 * modified: a lazily fused result made from the old values refuses to compute from the new ones.
 *
 * @example
 * writeInPlace([w], () => { w.data[0] -= 0.1; });
 */
export function writeInPlace(tensors: Iterable<Tensor>, write: () => void): void {
  write();
  for (const t of tensors) t.markModified();
}
