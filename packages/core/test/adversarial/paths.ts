/** Runs a computation on both evaluation paths: op by op (fusion off) and fused (forced on). */

import { configureFusion } from "../../src/kernels/elementwise.js";

/** The two ways an elementwise chain can run; results must agree (within float32 rounding). */
export const paths = ["op by op", "fused"] as const;
export type Path = (typeof paths)[number];

/** `fn` with fusion off, or with fusion forced on every size (and tiny loop chunks). */
export function onPath<T>(path: Path, fn: () => T): T {
  const before = configureFusion(
    path === "fused" ? { enabled: true, minSize: 1, chunk: 3 } : { enabled: false },
  );
  try {
    return fn();
  } finally {
    configureFusion(before);
  }
}

/** Whether `v` is exactly zero (either sign): a gradient that nothing flows into. */
export function isZero(v: number): boolean {
  return v === 0;
}
