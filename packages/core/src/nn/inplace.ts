/** Writing into tensors' `data` in place (optimiser steps, loads, running statistics, initialisers) without confusing lazily fused results. */

import * as elementwise from "../kernels/elementwise.js";
import type { Tensor } from "../tensor.js";

type Realize = { realizePending?: () => void };
type Versioned = { markModified?: () => void };

/**
 * @internal Runs `write`, which changes the `data` of `tensors` in place. Pending fused results
 * are computed first, from the old values, and each tensor is marked modified afterwards. Both
 * hooks are looked up rather than imported because the fusion layer's in-place protocol is being
 * reworked (`realizePending()` before a write, `markModified()` after it): this works with either.
 *
 * @example
 * writeInPlace([w], () => { w.data[0] -= 0.1; });
 */
export function writeInPlace(tensors: Iterable<Tensor>, write: () => void): void {
  (elementwise as unknown as Realize).realizePending?.();
  write();
  for (const t of tensors) (t as unknown as Versioned).markModified?.();
}
