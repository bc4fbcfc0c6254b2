/** Shape arithmetic shared by ops and kernels: sizes, strides, broadcasting, axes. */

export type Shape = readonly number[];

/**
 * The most elements one tensor may hold: 2^31 − 1, so that every flat position, stride and index
 * of a tensor is an exact int32 (the loops count in int32, index tensors are int32).
 */
export const maxElements = 2 ** 31 - 1;

/**
 * Checks that a shape an op is about to make can be held, returning its element count: no size
 * and no product of sizes beyond `maxElements`, so that a count never wraps or fails deep in a
 * typed-array constructor. Every op that makes a new shape calls this (or `checkShape`).
 */
export function checkSize(op: string, shape: Shape): number {
  let n = 1;
  let largest = 0;
  for (const d of shape) {
    n *= d;
    if (d > largest) largest = d;
  }
  if (n > maxElements || largest > maxElements) {
    const count = n > maxElements ? `${n.toPrecision(4)} elements` : `an axis of size ${largest}`;
    throw new Error(
      `${op}: shape ${formatShape(shape)} has ${count}, more than a tensor can hold (at most 2^31 − 1 = ${maxElements})`,
    );
  }
  return n;
}

/** Checks a shape given by the caller: an array of non-negative integers (see `checkSize`). */
export function checkShape(op: string, shape: unknown, name = "shape"): asserts shape is Shape {
  if (!Array.isArray(shape)) {
    const what = shape === null ? "null" : typeof shape;
    throw new Error(`${op}: ${name} must be an array of sizes, got ${what}`);
  }
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new Error(
        `${op}: ${name} ${formatShape(shape)} must hold non-negative integers, got ${String(d)}`,
      );
    }
  }
  checkSize(op, shape);
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides, in elements. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** NumPy broadcasting of any number of shapes; throws naming `op` and every shape. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const shape of shapes) {
    const offset = rank - shape.length;
    for (let i = 0; i < shape.length; i++) {
      const d = shape[i];
      const o = out[offset + i];
      if (d === o || d === 1) continue;
      if (o === 1) out[offset + i] = d;
      else {
        throw new Error(
          `${op}: shapes ${shapes.map(formatShape).join(" and ")} cannot be broadcast together ` +
            `(axis ${i - shape.length} has sizes ${o} and ${d}; each pair must be equal or 1)`,
        );
      }
    }
  }
  checkSize(op, out);
  return out;
}

/** Strides that read `shape` as if it were broadcast to `target`: 0 along broadcast axes. */
export function broadcastStrides(shape: Shape, target: Shape): number[] {
  const strides = stridesOf(shape);
  const offset = target.length - shape.length;
  const out = new Array<number>(target.length).fill(0);
  for (let i = 0; i < shape.length; i++) out[offset + i] = shape[i] === 1 ? 0 : strides[i];
  return out;
}

/** Resolves a possibly negative axis against `rank`, or throws naming `op`. */
export function normalizeAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new Error(
      `${op}: axis ${axis} is out of range for a tensor of rank ${rank} (expected an integer in [${-rank}, ${rank - 1}])`,
    );
  }
  return axis < 0 ? axis + rank : axis;
}

/** Sorted, distinct, non-negative axes; `undefined` means every axis. */
export function normalizeAxes(
  op: string,
  axis: number | readonly number[] | undefined,
  rank: number,
): number[] {
  if (axis === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axis === "number" ? [axis] : axis;
  const out = list.map((a) => normalizeAxis(op, a, rank)).sort((a, b) => a - b);
  for (let i = 1; i < out.length; i++) {
    if (out[i] === out[i - 1])
      throw new Error(`${op}: axis ${out[i]} is repeated in [${list.join(", ")}]`);
  }
  return out;
}
