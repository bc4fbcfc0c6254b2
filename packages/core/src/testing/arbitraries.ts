/** fast-check arbitraries for property tests of ops and losses: shapes, broadcasts, tensors, indices. */

import type { Arbitrary } from "fast-check";
import type { DType } from "../dtype.js";
import { type Shape, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";

type FastCheck = typeof import("fast-check");

// fast-check is an optional peer dependency: it is loaded when installed, so that importing
// `@focalgrad/core/testing` for `gradcheck` alone works without it.
const installed: FastCheck | null = await import("fast-check").then(
  (module) => module,
  () => null,
);

/** fast-check, or an error naming the arbitrary that needs it. */
function fastCheck(arbitrary: string): FastCheck {
  if (installed === null) {
    throw new Error(
      `${arbitrary}: the arbitraries of @focalgrad/core/testing need fast-check, which is not ` +
        "installed (npm install --save-dev fast-check); gradcheck and gradgradcheck do not",
    );
  }
  return installed;
}

/** Bounds on the shapes `shape()` and `broadcastPair()` draw. */
export interface ShapeConstraints {
  /** Smallest number of axes. Default 0 (scalars included). */
  minRank?: number;
  /** Largest number of axes. Default 3. */
  maxRank?: number;
  /** Smallest size of any axis. Default 1. */
  minSide?: number;
  /** Largest size of any axis. Default 4. */
  maxSide?: number;
}

/**
 * Shapes of rank in [minRank, maxRank] (default 0–3) with sides in [minSide, maxSide] (default 1–4).
 *
 * @example
 * fc.assert(fc.property(shape({ minRank: 1 }), (s) => s.length >= 1));
 */
export function shape(constraints: ShapeConstraints = {}): Arbitrary<number[]> {
  const fc = fastCheck("shape");
  const { minRank = 0, maxRank = 3, minSide = 1, maxSide = 4 } = constraints;
  return fc.array(fc.integer({ min: minSide, max: maxSide }), {
    minLength: minRank,
    maxLength: maxRank,
  });
}

/**
 * Pairs of shapes that broadcast together: a common shape from which each side drops some leading
 * axes and sets some others to 1.
 *
 * @example
 * fc.assert(fc.property(broadcastPair(), ([a, b]) => broadcastShapes("add", a, b).length >= 0));
 */
export function broadcastPair(constraints: ShapeConstraints = {}): Arbitrary<[number[], number[]]> {
  const fc = fastCheck("broadcastPair");
  return shape(constraints).chain((full) => {
    const side = fc
      .tuple(
        fc.integer({ min: 0, max: full.length }),
        fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
      )
      .map(([drop, ones]) => full.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
    return fc.tuple(side, side);
  });
}

/** Bounds on the values `floatTensor()` draws, its dtype, and kinks to keep away from. */
export interface TensorConstraints {
  /** Default -2. */
  min?: number;
  /** Default 2. */
  max?: number;
  /** Default float64, the dtype of gradient checks. */
  dtype?: DType;
  /** Values closer than `margin` to any of these are moved away: keeps samples off kinks. */
  avoid?: readonly number[];
  /** Default 0.05 when `avoid` is given. */
  margin?: number;
}

/**
 * Tensors of a fixed shape (or of shapes drawn from an arbitrary) with bounded, finite values.
 *
 * @example
 * fc.assert(fc.property(floatTensor([2, 3], { min: 0.1, max: 0.9 }), (p) => p.size === 6));
 */
export function floatTensor(
  shapeOf: Shape | Arbitrary<number[]>,
  constraints: TensorConstraints = {},
): Arbitrary<Tensor> {
  const fc = fastCheck("floatTensor");
  const { min = -2, max = 2, dtype = "float64", avoid = [], margin = 0.05 } = constraints;
  const shapes = Array.isArray(shapeOf)
    ? fc.constant([...shapeOf])
    : (shapeOf as Arbitrary<number[]>);
  return shapes.chain((s) =>
    fc
      .array(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), {
        minLength: sizeOf(s),
        maxLength: sizeOf(s),
      })
      .map((values) => {
        const moved = values.map((v) => {
          for (const k of avoid) {
            if (Math.abs(v - k) < margin) return v < k ? k - margin : k + margin;
          }
          return v;
        });
        const data = dtype === "float32" ? Float32Array.from(moved) : Float64Array.from(moved);
        return new Tensor(data, s, dtype);
      }),
  );
}

/**
 * int32 index tensors of `shape` with values in [0, size), biased towards repeats so that the
 * scatter-add of repeated indices is exercised.
 *
 * @example
 * fc.assert(fc.property(indexTensor(5, [7]), (idx) => idx.data.every((i) => i < 5)));
 */
export function indexTensor(size: number, shapeOf: Shape): Arbitrary<Tensor> {
  const fc = fastCheck("indexTensor");
  const n = sizeOf(shapeOf);
  const value = fc.integer({ min: 0, max: Math.max(0, size - 1) });
  return fc
    .tuple(
      fc.array(value, { minLength: n, maxLength: n }),
      fc.array(fc.nat({ max: Math.max(0, n - 1) }), { maxLength: n }),
    )
    .map(([values, copies]) => {
      // Copy some entries over others to guarantee duplicates in most draws.
      for (let i = 0; i + 1 < copies.length; i += 2) values[copies[i]] = values[copies[i + 1]];
      return new Tensor(Int32Array.from(values), shapeOf, "int32");
    });
}
