/** Sorting: `sort`, `argsort` and `topk` along an axis, stable, with NaN counted as the largest value. */

import { orderAlong } from "../kernels/sort.js";
import { normalizeAxis, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import { takeAlongAxis } from "./selection.js";
import { reshape } from "./shape.js";
import { checkInteger, checkNumeric, checkOptions } from "./util.js";

const sortOptions = { axis: "axis", descending: "boolean" } as const;

export interface SortOptions {
  /** The axis to sort along (negative counts from the end). Default -1. */
  axis?: number;
  /** Largest first. Default false. */
  descending?: boolean;
}

export interface TopkOptions {
  /** The axis to choose along (negative counts from the end). Default -1. */
  axis?: number;
  /** Choose the largest (default) or, with false, the smallest. */
  largest?: boolean;
  /** Return the chosen elements in order, largest first (smallest with `largest: false`). With false, in their original order. Default true. */
  sorted?: boolean;
}

/**
 * The positions (int32) of the first `count` elements of every run of `x` along axis `ax` in
 * sorted order; `x` has rank >= 1.
 */
function positions(
  x: Tensor,
  ax: number,
  descending: boolean,
  count: number,
  indexOrder: boolean,
): Tensor {
  const shape = x.shape.slice();
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  const out = new Int32Array(outer * count * inner);
  orderAlong(x.read(), outer, shape[ax], inner, descending, count, indexOrder, out);
  shape[ax] = count;
  return new Tensor(out, shape, "int32");
}

/** Runs `fn` on `x` seen with rank >= 1 (a scalar as [1]), and gives results the scalar's shape back. */
function withAxis<T extends Tensor | { values: Tensor; indices: Tensor }>(
  op: string,
  x: Tensor,
  axis: number,
  fn: (x: Tensor, ax: number) => T,
): T {
  checkNumeric(op, "x", x);
  if (x.rank > 0) return fn(x, normalizeAxis(op, axis, x.rank));
  normalizeAxis(op, axis, 1);
  const result = fn(reshape(x, [1]), 0);
  if (result instanceof Tensor) return reshape(result, []) as T;
  return { values: reshape(result.values, []), indices: reshape(result.indices, []) } as T;
}

/**
 * The elements of `x` sorted along `axis` (default the last), ascending or with `descending`
 * largest first, and the int32 positions they came from (PyTorch's `sort` with `stable=True`):
 * equal elements keep their order, and NaN counts as the largest value (last ascending, first
 * descending). `values` is differentiable: its gradient goes back to the position each value came
 * from.
 *
 * @example
 * const { values, indices } = sort(tensor([3, 1, 2, 1]));
 * values;  // [1, 1, 2, 3]
 * indices; // [1, 3, 2, 0]
 */
export function sort(x: Tensor, options: SortOptions = {}): { values: Tensor; indices: Tensor } {
  const { axis = -1, descending = false } = checkOptions("sort", options, sortOptions);
  return withAxis("sort", x, axis, (v, ax) => {
    const indices = positions(v, ax, descending, v.shape[ax], false);
    return { values: takeAlongAxis(v, indices, ax), indices };
  });
}

/**
 * The int32 positions that sort `x` along `axis` (default the last), stably: `sort(x).indices`.
 * No gradient.
 *
 * @example
 * argsort(tensor([[0.2, 0.9, 0.1]]), { descending: true }); // [[1, 0, 2]]
 */
export function argsort(x: Tensor, options: SortOptions = {}): Tensor {
  const { axis = -1, descending = false } = checkOptions("argsort", options, sortOptions);
  return withAxis("argsort", x, axis, (v, ax) => positions(v, ax, descending, v.shape[ax], false));
}

/**
 * The `k` largest (or, with `largest: false`, smallest) elements of `x` along `axis` (default the
 * last) and their int32 positions (PyTorch's `topk`). Sorted by default, largest first; among
 * equal elements the earlier position comes first, and NaN counts as the largest value. With
 * `sorted: false` the chosen elements come in their original order. `values` is differentiable:
 * its gradient goes back to the chosen positions, 0 elsewhere.
 *
 * @example
 * const { values, indices } = topk(tensor([0.1, 0.9, 0.5, 0.9]), 2);
 * values;  // [0.9, 0.9]
 * indices; // [1, 3]
 */
export function topk(
  x: Tensor,
  k: number,
  options: TopkOptions = {},
): { values: Tensor; indices: Tensor } {
  const {
    axis = -1,
    largest = true,
    sorted = true,
  } = checkOptions("topk", options, {
    axis: "axis",
    largest: "boolean",
    sorted: "boolean",
  });
  return withAxis("topk", x, axis, (v, ax) => {
    const length = v.shape[ax];
    checkInteger("topk", "k", k, 0);
    if (k > length) {
      throw new Error(
        `topk: k = ${k} is larger than axis ${ax} of x, of size ${length} (expected 0 <= k <= ${length})`,
      );
    }
    const indices = positions(v, ax, largest, k, !sorted);
    return { values: takeAlongAxis(v, indices, ax), indices };
  });
}
