/** Max and average pooling on the wasm runtime: the input copied in (unless it is in wasm memory already), the generated loops, the results copied out. */

import type { DataArray } from "../../dtype.js";
import type { PoolGeometry } from "../conv.js";
import { align64, type WasmRuntime, windowArguments } from "./runtime.js";

/** The 2 × 2, stride-2, unpadded pool whose windows all lie inside the plane (a CNN's usual one). */
function isTwoByTwo(g: PoolGeometry): boolean {
  return (
    g.kernelHeight === 2 &&
    g.kernelWidth === 2 &&
    g.strideHeight === 2 &&
    g.strideWidth === 2 &&
    g.padTop === 0 &&
    g.padLeft === 0 &&
    2 * g.outHeight <= g.inHeight &&
    2 * g.outWidth <= g.inWidth
  );
}

/**
 * `maxPool2d` and `avgPool2d` of the backend interface on `runtime`, bit for bit the JavaScript
 * loops' results (same window order, same tie and NaN rules, the mean summed in double precision).
 * Returns false (having done nothing) when the arrays do not fit in wasm memory.
 *
 * @example
 * const { maxPool2d } = wasmPooling(runtime);
 * maxPool2d(x, out, argmax, geometry) || maxPool2dInto(x, out, argmax, geometry);
 */
export function wasmPooling(runtime: WasmRuntime) {
  const run = (
    kernel: "maxPool" | "avgPool",
    x: DataArray,
    out: DataArray,
    argmax: Int32Array | null,
    g: PoolGeometry,
  ): boolean => {
    const single = x instanceof Float32Array;
    const bytes = single ? 4 : 8;
    const inputs = g.planes * g.inHeight * g.inWidth;
    const outputs = g.planes * g.outHeight * g.outWidth;
    // An input already in wasm memory (a tensor's data in the heap) is read where it is.
    const resident = runtime.placeOf(x);
    const inStage = align64(runtime.heapTop);
    const outAt = align64(inStage + (resident < 0 ? inputs * bytes : 0));
    const argmaxAt = align64(outAt + outputs * bytes);
    if (!runtime.reserve(argmaxAt + outputs * 4)) return false;
    const view = single ? runtime.f32 : runtime.f64;
    const inAt = resident < 0 ? inStage : resident;
    if (resident < 0) view.set(x.subarray(0, inputs), inAt / bytes);
    const sizes = [g.planes, g.inHeight, g.inWidth, g.outHeight, g.outWidth];
    if (kernel === "maxPool" && single && isTwoByTwo(g)) {
      runtime.exports.maxPool2x2_32(inAt, outAt, argmaxAt, ...sizes);
    } else {
      runtime.exports[`${kernel}${single ? "32" : "64"}`](
        inAt,
        outAt,
        argmaxAt,
        ...sizes,
        ...windowArguments(g),
      );
    }
    out.set(view.subarray(outAt / bytes, outAt / bytes + outputs));
    argmax?.set(new Int32Array(runtime.memory.buffer, argmaxAt, outputs));
    return true;
  };
  return {
    maxPool2d: (x: DataArray, out: DataArray, argmax: Int32Array, g: PoolGeometry) =>
      run("maxPool", x, out, argmax, g),
    avgPool2d: (x: DataArray, out: DataArray, g: PoolGeometry) => run("avgPool", x, out, null, g),
  };
}
