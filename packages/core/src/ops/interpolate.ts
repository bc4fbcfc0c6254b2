/** Resizing NCHW images by nearest-neighbour and bilinear interpolation, as PyTorch's `interpolate`. */

import type { Tensor } from "../tensor.js";
import { add, mul, sub } from "./arithmetic.js";
import { checkNchw, type Pair, pairOf } from "./conv.js";
import { tensor } from "./creation.js";
import { gather } from "./selection.js";
import { reshape } from "./shape.js";
import { checkOptions } from "./util.js";

/** Options of `interpolate`: the output size or scale, the mode, and the corner convention. */
export interface InterpolateOptions {
  /** The output [height, width] (or one size for both). Give this or `scaleFactor`. */
  size?: Pair;
  /** Multiplies the input's height and width (one factor or [h, w]); the output size is floored. */
  scaleFactor?: number | readonly [number, number];
  /** "nearest" (default) or "bilinear". */
  mode?: "nearest" | "bilinear";
  /**
   * Bilinear only: align the centres of the corner pixels (true) or their outer edges (false,
   * PyTorch's default).
   */
  alignCorners?: boolean;
}

/** Where each output row (or column) samples the input: two neighbours and the weight of the second. */
interface AxisSampling {
  low: Int32Array;
  high: Int32Array;
  weight: Float64Array;
}

/**
 * The source position of output index `i` along an axis of `input` elements resized to `output`,
 * as PyTorch computes it: with `ratio` the inverse scale (`input / output`, or `1 / scaleFactor`
 * when a factor was given), nearest takes `floor(i · ratio)`; bilinear takes
 * `(i + 0.5) · ratio − 0.5` clamped at 0, or `i · (input − 1) / (output − 1)` with alignCorners.
 */
function sampling(
  input: number,
  output: number,
  ratio: number,
  mode: "nearest" | "bilinear",
  alignCorners: boolean,
): AxisSampling {
  const low = new Int32Array(output);
  const high = new Int32Array(output);
  const weight = new Float64Array(output);
  for (let i = 0; i < output; i++) {
    if (mode === "nearest") {
      low[i] = high[i] = Math.min(Math.floor(i * ratio), input - 1);
      continue;
    }
    const source = alignCorners
      ? output > 1
        ? (i * (input - 1)) / (output - 1)
        : 0
      : Math.max(0, (i + 0.5) * ratio - 0.5);
    const below = Math.min(Math.floor(source), input - 1);
    low[i] = below;
    high[i] = Math.min(below + 1, input - 1);
    weight[i] = source - below;
  }
  return { low, high, weight };
}

/** Resamples `x` along `axis` (2 or 3): a gather per neighbour, so gradients scatter-add back. */
function resampleAxis(x: Tensor, axis: 2 | 3, s: AxisSampling, bilinear: boolean): Tensor {
  const n = s.low.length;
  const lowRows = gather(x, tensor(s.low, { shape: [n] }), axis);
  if (!bilinear) return lowRows;
  const highRows = gather(x, tensor(s.high, { shape: [n] }), axis);
  const shape = axis === 2 ? [1, 1, n, 1] : [1, 1, 1, n];
  const w = reshape(tensor(s.weight, { dtype: x.dtype }), shape);
  return add(lowRows, mul(sub(highRows, lowRows), w));
}

function checkScale(value: number, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new Error(`interpolate: scaleFactor must be a finite number > 0 ${what}, got ${value}`);
  }
  return value;
}

/**
 * Resizes the height and width of `x [N, C, H, W]` (PyTorch's `F.interpolate` for 4-D input):
 *
 * - `"nearest"`: output pixel `i` copies input pixel `floor(i · ratio)`;
 * - `"bilinear"`: a weighted mean of the 2 × 2 input pixels around
 *   `(i + 0.5) · ratio − 0.5` (clamped at the border; `i · (in − 1) / (out − 1)` with
 *   `alignCorners: true`),
 *
 * where `ratio` is `in / out`, or `1 / scaleFactor` when a factor is given (as PyTorch does, so a
 * factor of 1.5 and the size it implies can differ slightly). Differentiable in `x`, to any order:
 * every output is a fixed linear combination of inputs, so the gradient scatter-adds back with the
 * same weights.
 *
 * @example
 * const x = tensor([[[[1, 3]]]]);                                    // [1, 1, 1, 2]
 * interpolate(x, { scaleFactor: 2 });                                 // [[[[1, 1, 3, 3]]]]
 * interpolate(x, { size: [1, 4], mode: "bilinear" });                 // [[[[1, 1.5, 2.5, 3]]]]
 */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  checkNchw("interpolate", "x", x);
  checkOptions("interpolate", options, {
    size: "pair",
    scaleFactor: "pair",
    mode: "string",
    alignCorners: "boolean",
  });
  const { size, scaleFactor, mode = "nearest" } = options ?? {};
  if (mode !== "nearest" && mode !== "bilinear") {
    throw new Error(
      `interpolate: mode must be "nearest" or "bilinear", got ${JSON.stringify(mode)}`,
    );
  }
  if (options?.alignCorners !== undefined && mode !== "bilinear") {
    throw new Error('interpolate: alignCorners applies to mode "bilinear" only');
  }
  if ((size === undefined) === (scaleFactor === undefined)) {
    throw new Error("interpolate: give exactly one of size and scaleFactor");
  }
  const [, , height, width] = x.shape;
  let outHeight: number;
  let outWidth: number;
  let ratios: [number, number];
  if (size !== undefined) {
    [outHeight, outWidth] = pairOf("interpolate", "size", size, 1);
    ratios = [height / outHeight, width / outWidth];
  } else {
    const [sh, sw] =
      typeof scaleFactor === "number" ? [scaleFactor, scaleFactor] : (scaleFactor ?? []);
    checkScale(sh as number, "(height)");
    checkScale(sw as number, "(width)");
    outHeight = Math.floor(height * (sh as number));
    outWidth = Math.floor(width * (sw as number));
    if (outHeight < 1 || outWidth < 1) {
      throw new Error(
        `interpolate: scaleFactor [${sh}, ${sw}] makes an empty output from ${height} × ${width}`,
      );
    }
    ratios = [1 / (sh as number), 1 / (sw as number)];
  }
  const alignCorners = options.alignCorners ?? false;
  const bilinear = mode === "bilinear";
  const rows = sampling(height, outHeight, ratios[0], mode, alignCorners);
  const columns = sampling(width, outWidth, ratios[1], mode, alignCorners);
  return resampleAxis(resampleAxis(x, 2, rows, bilinear), 3, columns, bilinear);
}
