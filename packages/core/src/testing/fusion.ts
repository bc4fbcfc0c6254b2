/** Running code with lazy fusion forced on or off, to check that it gives the same results either way. */

import { javascript } from "../kernels/javascript.js";
import type { Renderer } from "../kernels/kernel.js";
import { createWasmRenderer } from "../kernels/wasm/renderer.js";
import { hasRelaxedSimd, hasWasmSimd, WasmRuntime } from "../kernels/wasm/runtime.js";
import { configureFusion } from "../lazy/index.js";

/** Options of `withFusion`. */
export interface WithFusionOptions {
  /**
   * The renderer of the fused kernels: the JavaScript one, or WebAssembly SIMD's taking every
   * kernel it can however small (it otherwise leaves kernels below 16 384 elements to
   * JavaScript). Default: the current backend's, as outside `withFusion`.
   */
  renderer?: "javascript" | "wasm";
}

let wasmRenderer: Renderer | null = null;

function rendererNamed(name: "javascript" | "wasm" | undefined): Renderer | null {
  if (name === undefined) return null;
  if (name === "javascript") return javascript;
  if (name !== "wasm") {
    throw new Error(
      `withFusion: renderer must be "javascript" or "wasm", got ${JSON.stringify(name)}`,
    );
  }
  if (!hasWasmSimd()) {
    throw new Error(
      `withFusion: renderer "wasm" needs WebAssembly SIMD128, which this runtime lacks`,
    );
  }
  wasmRenderer ??= createWasmRenderer(new WasmRuntime(hasRelaxedSimd()), { minSize: 1 });
  return wasmRenderer;
}

/**
 * Runs `fn` with every elementwise chain fused into one loop however small its tensors
 * (`"fused"`, as on tensors of 16 384 elements or more, in loops of 3 elements so that every loop
 * restarts mid-row), or with every op computed at once (`"opByOp"`), then restores the settings.
 * On the JavaScript renderer results are bit for bit the same either way; on WebAssembly's they
 * are within float32 rounding (its `log`, `exp` and `log1p` are within 2 ulp of `Math`'s). This is
 * how the test suites check it.
 *
 * @example
 * const fused = withFusion("fused", () => myLoss(p).item(), { renderer: "javascript" });
 * const eager = withFusion("opByOp", () => myLoss(p).item());
 * Object.is(fused, eager); // true
 * withFusion("fused", () => myLoss(p).item(), { renderer: "wasm" }); // within float32 rounding
 */
export function withFusion<T>(
  mode: "fused" | "opByOp",
  fn: () => T,
  options: WithFusionOptions = {},
): T {
  if (mode !== "fused" && mode !== "opByOp") {
    throw new Error(`withFusion: mode must be "fused" or "opByOp", got ${JSON.stringify(mode)}`);
  }
  const renderer = rendererNamed(options.renderer);
  const before = configureFusion(
    mode === "fused"
      ? { enabled: true, minSize: 1, chunk: 3, ...(renderer === null ? {} : { renderer }) }
      : { enabled: false },
  );
  try {
    return fn();
  } finally {
    configureFusion(before);
  }
}
