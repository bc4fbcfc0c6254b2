/** Max and average pooling on the wasm runtime: the input copied in and the results copied out (unless they are in wasm memory already), the generated loops; and the max-pool's adjoint, in place on arrays in wasm memory, its planes shared between the threads. */

import type { DataArray } from "../../dtype.js";
import type { PoolGeometry } from "../conv.js";
import { threadChunks } from "./gemm.js";
import { align64, FUNCTION_NAMES, type WasmRuntime, windowArguments } from "./runtime.js";

/** Outputs a chunk of the max-pool's adjoint gets at the least (a load, a compare, an add each). */
const ADJOINT_CHUNK = 1 << 15;

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
    // Arrays already in wasm memory (tensors' data in the heap) are read and written where they are.
    const resident = runtime.placeOf(x);
    const outResident = runtime.addressOf(out, single);
    const argmaxResident = argmax === null ? -1 : runtime.placeOf(argmax);
    const inStage = align64(runtime.heapTop);
    const outStage = align64(inStage + (resident < 0 ? inputs * bytes : 0));
    const argmaxStage = align64(outStage + (outResident < 0 ? outputs * bytes : 0));
    if (!runtime.reserve(argmaxStage + outputs * 4)) return false;
    const view = single ? runtime.f32 : runtime.f64;
    const inAt = resident < 0 ? inStage : resident;
    const outAt = outResident < 0 ? outStage : outResident;
    const argmaxAt = argmaxResident < 0 ? argmaxStage : argmaxResident;
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
    if (outResident < 0) out.set(view.subarray(outAt / bytes, outAt / bytes + outputs));
    if (argmaxResident < 0) argmax?.set(new Int32Array(runtime.memory.buffer, argmaxAt, outputs));
    return true;
  };

  /**
   * dx += the max-pool's adjoint of dy (each dy[o] added at dx[argmax[o]]) where dy, argmax and dx
   * are all in wasm memory: whole planes to each chunk, each plane's outputs in order, so the
   * bits are the JavaScript loop's on any number of threads. Returns false (having done nothing)
   * for arrays elsewhere, whose copies in and out would cost more than the loop itself. Throws,
   * having added some planes, when a winner lies outside its own plane.
   */
  const maxPool2dBackward = (
    dy: DataArray,
    argmax: Int32Array,
    dx: DataArray,
    g: PoolGeometry,
  ): boolean => {
    const single = dx instanceof Float32Array;
    const planeIn = g.inHeight * g.inWidth;
    const planeOut = g.outHeight * g.outWidth;
    const outputs = g.planes * planeOut;
    if (argmax.length !== outputs || dy.length !== outputs || dx.length !== g.planes * planeIn) {
      throw new Error(
        `maxPool2dBackward: expected ${outputs} gradients and winners and ${g.planes * planeIn} inputs, got ${dy.length}, ${argmax.length} and ${dx.length}`,
      );
    }
    const [dyAt, argmaxAt, dxAt] = [
      runtime.addressOf(dy, single),
      runtime.placeOf(argmax),
      runtime.addressOf(dx, single),
    ];
    if (dyAt < 0 || argmaxAt < 0 || dxAt < 0) return false;
    try {
      runtime.run({
        fn: FUNCTION_NAMES.indexOf(single ? "maxPoolAdjoint32" : "maxPoolAdjoint64"),
        args: [dyAt, argmaxAt, dxAt, planeIn, planeOut],
        total: g.planes,
        chunks: threadChunks(g.planes, outputs, ADJOINT_CHUNK),
      });
    } catch (cause) {
      throw new Error(
        "maxPool2dBackward: a winner in argmax lies outside its own plane of x (argmax must be the one maxPool2d gave for this geometry)",
        { cause },
      );
    }
    return true;
  };
  return {
    maxPool2d: (x: DataArray, out: DataArray, argmax: Int32Array, g: PoolGeometry) =>
      run("maxPool", x, out, argmax, g),
    avgPool2d: (x: DataArray, out: DataArray, g: PoolGeometry) => run("avgPool", x, out, null, g),
    maxPool2dBackward,
  };
}
