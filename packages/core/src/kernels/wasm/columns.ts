/** im2col blocks kept in wasm memory and built there, so the wasm GEMM reads them in place. */

import type { DataArray } from "../../dtype.js";
import { type ColumnSource, type Columns, javascriptColumns } from "../conv.js";
import { align64, type WasmRuntime, windowArguments } from "./runtime.js";

/**
 * A `ColumnSource` on `runtime`: the block is a resident view after a copy of one image (the
 * image goes in with one memcpy per block, im2col runs in wasm). Where the memory cannot grow that
 * far, the JavaScript blocks and loops take over.
 *
 * @example
 * conv2dInto(x, w, null, out, geometry, wasmGemm(runtime), 1 << 18, wasmColumns(runtime));
 */
export function wasmColumns(runtime: WasmRuntime): ColumnSource {
  return {
    scratch: (size, like, g) => {
      const single = like instanceof Float32Array;
      const bytes = single ? 4 : 8;
      // The image just above the heap, then the block; the GEMM's scratch starts after both.
      const colAt = align64(runtime.heapTop + g.inChannels * g.inHeight * g.inWidth * bytes);
      const end = colAt + size * bytes;
      if (!runtime.reserve(end)) return javascriptColumns.scratch(size, like, g);
      runtime.residentBytes = end;
      return runtime.residentView(colAt, size, single);
    },
    im2col: (x: DataArray, xOffset, g, col: Columns, oy0, oy1) => {
      const single = col instanceof Float32Array;
      const colAt = runtime.addressOf(col, single);
      if (colAt < 0) {
        javascriptColumns.im2col(x, xOffset, g, col, oy0, oy1);
        return;
      }
      const image = g.inChannels * g.inHeight * g.inWidth;
      // An image already in wasm memory (a tensor's data in the heap) is read where it is.
      const resident = runtime.placeOf(x);
      const imageAt = resident < 0 ? runtime.heapTop : resident + xOffset * (single ? 4 : 8);
      if (resident < 0) {
        (single ? runtime.f32 : runtime.f64).set(
          x.subarray(xOffset, xOffset + image),
          imageAt / (single ? 4 : 8),
        );
      }
      runtime.exports[single ? "im2col32" : "im2col64"](
        imageAt,
        colAt,
        g.inChannels,
        g.inHeight,
        g.inWidth,
        g.outWidth,
        ...windowArguments(g),
        g.dilationHeight,
        g.dilationWidth,
        oy0,
        oy1,
        (oy1 - oy0) * g.outWidth * (single ? 4 : 8),
      );
    },
  };
}
