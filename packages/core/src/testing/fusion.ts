/** Running code with lazy fusion forced on or off, to check that it gives the same results either way. */

import { configureFusion } from "../lazy/index.js";

/**
 * Runs `fn` with every elementwise chain fused into one loop however small its tensors
 * (`"fused"`, as on tensors of 16 384 elements or more, in loops of 3 elements so that every loop
 * restarts mid-row), or with every op computed at once (`"opByOp"`), then restores the settings.
 * Results must be bit for bit the same either way; this is how the test suites check it.
 *
 * @example
 * const fused = withFusion("fused", () => myLoss(p).item());
 * const eager = withFusion("opByOp", () => myLoss(p).item());
 * Object.is(fused, eager); // true
 */
export function withFusion<T>(mode: "fused" | "opByOp", fn: () => T): T {
  if (mode !== "fused" && mode !== "opByOp") {
    throw new Error(`withFusion: mode must be "fused" or "opByOp", got ${JSON.stringify(mode)}`);
  }
  const before = configureFusion(
    mode === "fused" ? { enabled: true, minSize: 1, chunk: 3 } : { enabled: false },
  );
  try {
    return fn();
  } finally {
    configureFusion(before);
  }
}
