/** Anchor boxes over the levels of a feature pyramid, in keras-retinanet's or torchvision's convention. */

import { type Tensor, tensor } from "@focalgrad/core";
import { checkLossOptions, isPositiveFinite } from "./common.js";

/** Which library's anchors to reproduce. */
export type AnchorConvention = "keras-retinanet" | "torchvision";

export interface AnchorConfig {
  /** Pyramid levels, P3 = 3 (a stride of 2^3 = 8). Default [3, 4, 5, 6, 7]. */
  levels?: readonly number[];
  /** Base anchor size per level, in pixels. Default 2^(level + 2): 32 on P3 … 512 on P7. */
  sizes?: readonly number[];
  /** Distance between anchor centres per level, in pixels. Default 2^level: 8 on P3 … 128 on P7. */
  strides?: readonly number[];
  /** Aspect ratios, height / width. Default [0.5, 1, 2]. */
  ratios?: readonly number[];
  /** Multipliers of the size. Default [2^0, 2^(1/3), 2^(2/3)]. */
  scales?: readonly number[];
  /** Default "keras-retinanet"; see `anchorLevels`. */
  convention?: AnchorConvention;
  /**
   * The grid `[height, width]` of each level, e.g. your network's feature map sizes. Default
   * `[ceil(H / stride), ceil(W / stride)]`, which is what a stack of stride-2 convolutions with
   * "same" padding produces (and keras-retinanet's `guess_shapes` when stride = 2^level).
   */
  featureShapes?: readonly (readonly [number, number])[];
  /** dtype of the anchors. Default "float32". */
  dtype?: "float32" | "float64";
}

/** One pyramid level of anchors: its geometry and its rows of `anchorsFor`. */
export interface AnchorLevel {
  /** The pyramid level (3 for P3). */
  level: number;
  /** The level's base anchor size, in pixels. */
  size: number;
  /** Distance between neighbouring anchor centres `[y, x]`, in pixels. */
  stride: readonly [number, number];
  /** The grid `[height, width]` of anchor positions. */
  featureShape: readonly [number, number];
  /** Anchors per grid position: ratios × scales. */
  anchorsPerLocation: number;
  /** Index of the level's first anchor among all anchors (the rows of `anchorsFor`). */
  offset: number;
  /** Number of anchors of the level: height × width × anchorsPerLocation. */
  count: number;
  /** The level's anchors `[count, 4]`, (x1, y1, x2, y2). */
  anchors: Tensor;
}

interface ResolvedConfig {
  levels: readonly number[];
  sizes: readonly number[];
  strides: readonly number[];
  ratios: readonly number[];
  scales: readonly number[];
  convention: AnchorConvention;
  featureShapes: readonly (readonly [number, number])[] | undefined;
  dtype: "float32" | "float64";
}

const DEFAULT_LEVELS = [3, 4, 5, 6, 7] as const;
const DEFAULT_RATIOS = [0.5, 1, 2] as const;
const DEFAULT_SCALES = [2 ** 0, 2 ** (1 / 3), 2 ** (2 / 3)] as const;

function checkNumbers(
  op: string,
  name: string,
  value: unknown,
  length: number | null,
  test: (v: number) => boolean,
  what: string,
): readonly number[] {
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    (length === null || value.length === length) &&
    value.every((v) => typeof v === "number" && test(v));
  if (!ok) {
    const count = length === null ? "a non-empty array" : `an array of ${length} (one per level)`;
    throw new Error(`${op}: ${name} must be ${count} of ${what}, got ${JSON.stringify(value)}`);
  }
  return value as readonly number[];
}

const positiveInteger = (v: number) => Number.isInteger(v) && v > 0;

function checkPair(op: string, name: string, value: unknown): readonly [number, number] {
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    !value.every((v) => typeof v === "number" && positiveInteger(v))
  ) {
    throw new Error(
      `${op}: ${name} must be [height, width], two integers > 0, got ${JSON.stringify(value)}`,
    );
  }
  return value as unknown as readonly [number, number];
}

function resolveConfig(op: string, config: unknown): ResolvedConfig {
  if (config === null || typeof config !== "object") {
    throw new Error(
      `${op}: config must be an object (AnchorConfig), got ${config === null ? "null" : typeof config}`,
    );
  }
  const c = config as AnchorConfig;
  checkLossOptions(op, c, [
    "levels",
    "sizes",
    "strides",
    "ratios",
    "scales",
    "convention",
    "featureShapes",
    "dtype",
  ]);
  const levels = checkNumbers(
    op,
    "levels",
    c.levels ?? DEFAULT_LEVELS,
    null,
    (v) => Number.isInteger(v) && v >= 0,
    "integers >= 0",
  );
  if (new Set(levels).size !== levels.length) {
    throw new Error(`${op}: levels must be distinct, got ${JSON.stringify(levels)}`);
  }
  const n = levels.length;
  const sizes = checkNumbers(
    op,
    "sizes",
    c.sizes ?? levels.map((l) => 2 ** (l + 2)),
    n,
    isPositiveFinite,
    "finite numbers > 0",
  );
  const strides = checkNumbers(
    op,
    "strides",
    c.strides ?? levels.map((l) => 2 ** l),
    n,
    isPositiveFinite,
    "finite numbers > 0",
  );
  const ratios = checkNumbers(
    op,
    "ratios",
    c.ratios ?? DEFAULT_RATIOS,
    null,
    isPositiveFinite,
    "finite numbers > 0",
  );
  const scales = checkNumbers(
    op,
    "scales",
    c.scales ?? DEFAULT_SCALES,
    null,
    isPositiveFinite,
    "finite numbers > 0",
  );
  const convention = c.convention ?? "keras-retinanet";
  if (convention !== "keras-retinanet" && convention !== "torchvision") {
    throw new Error(
      `${op}: convention must be "keras-retinanet" or "torchvision", got ${JSON.stringify(convention)}`,
    );
  }
  let featureShapes: (readonly [number, number])[] | undefined;
  if (c.featureShapes !== undefined) {
    if (!Array.isArray(c.featureShapes) || c.featureShapes.length !== n) {
      throw new Error(
        `${op}: featureShapes must be an array of ${n} [height, width] pairs (one per level), got ${JSON.stringify(c.featureShapes)}`,
      );
    }
    featureShapes = c.featureShapes.map((s, i) => checkPair(op, `featureShapes[${i}]`, s));
  }
  const dtype = c.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") {
    throw new Error(`${op}: dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);
  }
  return { levels, sizes, strides, ratios, scales, convention, featureShapes, dtype };
}

/** Half-to-even rounding, as `torch.round`. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The zero-centred base anchors of one level, `[A, 4]` flat, ratio-major then scale (both
 * libraries enumerate them in this order).
 */
function baseAnchors(c: ResolvedConfig, size: number): number[] {
  const base: number[] = [];
  const round = c.dtype === "float32" ? Math.fround : (v: number) => v;
  for (const ratio of c.ratios) {
    for (const scale of c.scales) {
      if (c.convention === "keras-retinanet") {
        // generate_anchors: a square of side size · scale, reshaped to the ratio at equal area.
        const side = size * scale;
        const width = Math.sqrt((side * side) / ratio);
        const height = width * ratio;
        base.push(-width * 0.5, -height * 0.5, width * 0.5, height * 0.5);
      } else {
        // torchvision's RetinaNet takes int(size · scale) as the anchor size; AnchorGenerator then
        // computes in the anchors' dtype and rounds the half-extents to integers.
        const side = round(Math.trunc(size * scale));
        const heightRatio = round(Math.sqrt(round(ratio)));
        const widthRatio = round(1 / heightRatio);
        const halfWidth = roundHalfEven(round(widthRatio * side) / 2);
        const halfHeight = roundHalfEven(round(heightRatio * side) / 2);
        base.push(-halfWidth, -halfHeight, halfWidth, halfHeight);
      }
    }
  }
  return base;
}

function buildLevels(
  op: string,
  imageShape: unknown,
  config: unknown,
): { all: Tensor; levels: AnchorLevel[] } {
  const [height, width] = checkPair(op, "imageShape", imageShape);
  const c = resolveConfig(op, config);
  const perLocation = c.ratios.length * c.scales.length;
  const grids = c.levels.map(
    (_, i) =>
      c.featureShapes?.[i] ??
      ([Math.ceil(height / c.strides[i]), Math.ceil(width / c.strides[i])] as const),
  );
  const total = grids.reduce((acc, [gh, gw]) => acc + gh * gw * perLocation, 0);
  const data = c.dtype === "float32" ? new Float32Array(total * 4) : new Float64Array(total * 4);
  const levels: AnchorLevel[] = [];
  let row = 0;
  c.levels.forEach((level, i) => {
    const [gridHeight, gridWidth] = grids[i];
    // torchvision derives the stride from the image and the feature map; keras-retinanet uses the configured one.
    const stride: readonly [number, number] =
      c.convention === "torchvision"
        ? [Math.floor(height / gridHeight), Math.floor(width / gridWidth)]
        : [c.strides[i], c.strides[i]];
    const centreOffset = c.convention === "torchvision" ? 0 : 0.5;
    const base = baseAnchors(c, c.sizes[i]);
    const offset = row;
    for (let y = 0; y < gridHeight; y++) {
      const cy = (y + centreOffset) * stride[0];
      for (let x = 0; x < gridWidth; x++) {
        const cx = (x + centreOffset) * stride[1];
        for (let k = 0; k < base.length; k += 4, row++) {
          data[row * 4] = base[k] + cx;
          data[row * 4 + 1] = base[k + 1] + cy;
          data[row * 4 + 2] = base[k + 2] + cx;
          data[row * 4 + 3] = base[k + 3] + cy;
        }
      }
    }
    const count = row - offset;
    levels.push({
      level,
      size: c.sizes[i],
      stride,
      featureShape: [gridHeight, gridWidth],
      anchorsPerLocation: perLocation,
      offset,
      count,
      anchors: tensor(data.subarray(offset * 4, row * 4), { shape: [count, 4], dtype: c.dtype }),
    });
  });
  return { all: tensor(data, { shape: [total, 4], dtype: c.dtype }), levels };
}

/**
 * The anchors `[N, 4]` (x1, y1, x2, y2, pixels) of an image of `imageShape = [height, width]`:
 * every level of the pyramid in turn, each position-major (rows of the grid top to bottom, each
 * left to right), and at each position its `ratios × scales` anchors, ratio-major. This is the
 * order of the rows of a RetinaNet head's `[B, N, C]` output in both libraries.
 *
 * The defaults are keras-retinanet's (`AnchorParameters.default`, P3–P7); `anchorLevels` describes
 * the conventions and gives the anchors per level.
 *
 * @example
 * anchorsFor([64, 64]).shape;                         // [774, 4]: 9 · (64 + 16 + 4 + 1 + 1)
 * anchorsFor([64, 64], { levels: [3, 4, 5] }).shape;  // [756, 4]: P3–P5 only
 * anchorsFor([8, 8], { levels: [3], ratios: [1], scales: [1] }).toArray(); // [[-12, -12, 20, 20]]
 */
export function anchorsFor(
  imageShape: readonly [number, number],
  config: AnchorConfig = {},
): Tensor {
  return buildLevels("anchorsFor", imageShape, config).all;
}

/**
 * The anchors of `anchorsFor(imageShape, config)` level by level, with each level's grid, stride,
 * offset and count (what a detector needs to split its outputs per level, e.g. for a top-k per
 * level). `Σ count` is N and the levels' anchors are, in order, the rows of `anchorsFor`.
 *
 * Conventions, per level of size `s` and stride `t`, for each ratio `r` (height / width) and scale `k`:
 *
 * - **"keras-retinanet"** (default; `utils/anchors.py`, `generate_anchors` and `shift`): a square
 *   of side `s · k` reshaped to the ratio at equal area, `w = sqrt((s · k)² / r)`, `h = w · r`,
 *   centred at `((i + 0.5) · t, (j + 0.5) · t)` for grid column `i` and row `j`. Computed in float64.
 * - **"torchvision"** (`AnchorGenerator` with the sizes of torchvision's `RetinaNet`): the anchor
 *   size is `trunc(s · k)`, `w = size / sqrt(r)`, `h = size · sqrt(r)`, and the half-extents
 *   `w / 2`, `h / 2` are rounded to integers (half to even, in the anchors' dtype); the centres
 *   are at `(i · tx, j · ty)` with the stride `[ty, tx] = [floor(H / gridH), floor(W / gridW)]`
 *   derived from the image and grid sizes, as torchvision derives it (the configured stride
 *   only sets the default grid).
 *
 * @example
 * const levels = anchorLevels([64, 64], { levels: [3, 4, 5] });
 * levels.map((l) => l.count);        // [576, 144, 36]
 * levels[1].offset;                  // 576: P4's anchors are rows 576…719 of anchorsFor
 * levels[2].featureShape;            // [2, 2]
 */
export function anchorLevels(
  imageShape: readonly [number, number],
  config: AnchorConfig = {},
): AnchorLevel[] {
  return buildLevels("anchorLevels", imageShape, config).levels;
}

/**
 * The number of anchors at each grid position, `ratios × scales` (9 by default): the `A` of a
 * head with `A · C` classification channels.
 *
 * @example
 * anchorsPerLocation();                         // 9
 * anchorsPerLocation({ ratios: [1], scales: [1, 2] }); // 2
 */
export function anchorsPerLocation(config: AnchorConfig = {}): number {
  const c = resolveConfig("anchorsPerLocation", config);
  return c.ratios.length * c.scales.length;
}
