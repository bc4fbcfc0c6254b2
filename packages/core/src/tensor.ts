/** The tensor: a contiguous row-major typed array, its shape and dtype, and its place in the autodiff graph. */

import { type DataArray, type DataArrayOf, type DType, isFloat } from "./dtype.js";
import type { GraphNode } from "./engine.js";
import { backward as runBackward } from "./engine.js";
import { formatShape, type Shape, sizeOf } from "./shape.js";

/** Nested JavaScript arrays, as `toArray()` returns them. */
export type NestedArray = number | boolean | NestedArray[];

/** The key Node's `util.inspect` (and so `console.log`) looks up; `Symbol.for` needs no Node import. */
const inspectCustom: unique symbol = Symbol.for("nodejs.util.inspect.custom");

/**
 * An n-dimensional array of one dtype (`float32`, `float64`, `int32` or `bool`), stored as a
 * contiguous row-major typed array, and a node of the autodiff graph. Make tensors with `tensor()`,
 * `zeros()`, `ones()` and the other creators, and combine them with the functions of this package
 * (`add(x, y)`, `sum(x)`, …); every op returns a new tensor. Tensors are ordinary garbage-collected
 * objects, with no `dispose`.
 *
 * @example
 * const x = tensor([1, 2, 3], { requiresGrad: true }); // float32, shape [3]
 * sum(mul(x, x)).backward();
 * x.grad!.toArray(); // [2, 4, 6]
 * console.log(x);    // tensor([1., 2., 3.], shape=[3], dtype=float32, requiresGrad=true)
 */
export class Tensor<D extends DType = DType> {
  private stored: DataArrayOf[D] | null;
  private compute: (() => DataArray) | null;
  /** The length of each axis, outermost first; `[]` for a scalar. Frozen. */
  readonly shape: Shape;
  /** The element type: `float32`, `float64`, `int32` or `bool`. */
  readonly dtype: D;
  /** The number of elements, the product of `shape` (1 for a scalar). */
  readonly size: number;
  /** Bumped by `markModified()`: lazily fused results check it so they never read a later write. */
  version = 0;
  /** The accumulated gradient after `backward()`, on leaves that require gradients. */
  grad: Tensor | null = null;
  /** @internal The op that made this tensor, while the graph is alive. */
  node: GraphNode | null = null;
  private requires = false;

  /**
   * @internal Wraps `data` (not copied), or with `data` null a pending result that `compute`
   * produces on first read. Users make tensors with `tensor()`, `zeros()` and the other creators.
   */
  constructor(data: DataArray | null, shape: Shape, dtype: D, compute?: () => DataArray) {
    const size = sizeOf(shape);
    if (data !== null && data.length !== size) {
      throw new Error(
        `Tensor: ${data.length} elements do not fill shape ${formatShape(shape)} (${size} expected)`,
      );
    }
    this.stored = data as DataArrayOf[D] | null;
    this.compute = data === null ? (compute ?? null) : null;
    this.shape = Object.freeze(shape.slice());
    this.dtype = dtype;
    this.size = size;
  }

  /**
   * The elements, row-major, as a typed array of the dtype. Shared with views made by `reshape`,
   * so treat it as read-only; after writing into it in place, call `markModified()`.
   */
  get data(): DataArrayOf[D] {
    if (this.stored === null) {
      this.stored = this.compute!() as DataArrayOf[D];
      this.compute = null;
    }
    return this.stored;
  }

  /**
   * Records that `data` was written in place (as optimisers do). A lazily fused result made from
   * this tensor earlier then refuses to compute from the new values, rather than silently mixing.
   *
   * @example
   * w.data[0] -= 0.1 * w.grad!.data[0];
   * w.markModified();
   */
  markModified(): void {
    this.version++;
  }

  /**
   * @internal Supplies the data of a pending tensor that a loop computing something else made as a
   * by-product (a deferred sum computed inside a backward loop).
   */
  resolve(data: DataArray): void {
    if (this.stored !== null) throw new Error("resolve: the tensor's data is already computed");
    if (data.length !== this.size) {
      throw new Error(`resolve: ${data.length} elements for a tensor of ${this.size}`);
    }
    this.stored = data as DataArrayOf[D];
    this.compute = null;
  }

  /** @internal Whether the data is still to be computed (a lazily fused elementwise result). */
  get isPending(): boolean {
    return this.stored === null;
  }

  /** The number of axes, `shape.length` (0 for a scalar). */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether gradients flow to this tensor. Only floating-point leaves can be made to require them. */
  get requiresGrad(): boolean {
    return this.requires;
  }

  /**
   * Makes this leaf record gradients (into `.grad` on `backward()`), or stops it. Throws for a
   * tensor that is not float, and when turning it off on a tensor made by an op (use `detach()`).
   */
  set requiresGrad(value: boolean) {
    if (value && !isFloat(this.dtype)) {
      throw new Error(
        `requiresGrad: only float32 and float64 tensors can require gradients, got ${this.dtype}`,
      );
    }
    if (this.node !== null && !value) {
      throw new Error(
        "requiresGrad: cannot turn off gradients of a tensor made by an op; use detach()",
      );
    }
    this.requires = value;
  }

  /** Whether this tensor was created by the user rather than by a recorded op. */
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** The single element as a JavaScript number (booleans as 0 or 1). */
  item(): number {
    if (this.size !== 1) {
      throw new Error(
        `item: only a tensor with exactly one element has an item, got shape ${formatShape(this.shape)}`,
      );
    }
    return this.data[0];
  }

  /** The elements as nested arrays (booleans as `true`/`false`). */
  toArray(): NestedArray {
    const data = this.data;
    const asValue = this.dtype === "bool" ? (i: number) => data[i] !== 0 : (i: number) => data[i];
    if (this.rank === 0) return asValue(0);
    const build = (axis: number, offset: number, stride: number): NestedArray[] => {
      const n = this.shape[axis];
      const inner = stride / n;
      const out: NestedArray[] = new Array(n);
      for (let i = 0; i < n; i++) {
        out[i] =
          axis === this.rank - 1 ? asValue(offset + i) : build(axis + 1, offset + i * inner, inner);
      }
      return out;
    };
    return build(0, 0, this.size);
  }

  /**
   * Backpropagates from this tensor, accumulating into `.grad` of every leaf that requires gradients.
   * A non-scalar tensor needs an explicit `upstream` gradient of its own shape.
   *
   * @example
   * const x = tensor([1, 2, 3], { requiresGrad: true });
   * sum(mul(x, x)).backward();
   * x.grad; // [2, 4, 6]
   */
  backward(
    upstream?: Tensor,
    options: { retainGraph?: boolean; createGraph?: boolean } = {},
  ): void {
    runBackward(this, upstream, options);
  }

  /** The same values, cut off from the graph: no gradient flows through the result. Shares `data`. */
  detach(): Tensor<D> {
    return new Tensor(this.data, this.shape, this.dtype);
  }

  /**
   * The values and the metadata, like PyTorch's `repr`: `tensor([1., 2.], shape=[2], dtype=float32)`.
   * Tensors of more than 1000 elements show the first and last three entries of each axis.
   */
  toString(): string {
    const grad = this.requires ? ", requiresGrad=true" : "";
    return `tensor(${formatValues(this)}, shape=${formatShape(this.shape)}, dtype=${this.dtype}${grad})`;
  }

  /** What `console.log(t)` and `util.inspect(t)` print in Node: `toString()`, not the internals. */
  [inspectCustom](): string {
    return this.toString();
  }
}

const edgeItems = 3;
const summariseAbove = 1000;

function formatValues(t: Tensor): string {
  const summarise = t.size > summariseAbove;
  const fmt = (v: number) => {
    if (t.dtype === "bool") return v ? "true" : "false";
    if (t.dtype === "int32") return String(v);
    return Number.isInteger(v) && Math.abs(v) < 1e15
      ? `${v}.`
      : Number(v.toPrecision(6)).toString();
  };
  if (t.rank === 0) return fmt(t.data[0]);
  const strides: number[] = [];
  let s = 1;
  for (let i = t.rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= t.shape[i];
  }
  const walk = (axis: number, offset: number, indent: string): string => {
    const n = t.shape[axis];
    const picks =
      summarise && n > 2 * edgeItems
        ? [...range(0, edgeItems), -1, ...range(n - edgeItems, n)]
        : range(0, n);
    const parts = picks.map((i) => {
      if (i === -1) return "...";
      return axis === t.rank - 1
        ? fmt(t.data[offset + i])
        : walk(axis + 1, offset + i * strides[axis], `${indent} `);
    });
    const sep = axis === t.rank - 1 ? ", " : `,\n${indent} `;
    return `[${parts.join(sep)}]`;
  };
  return walk(0, 0, "       ");
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** @internal Wraps a fresh array as a tensor. */
export function fromData<D extends DType>(data: DataArrayOf[D], shape: Shape, dtype: D): Tensor<D> {
  return new Tensor(data, shape, dtype);
}

export type { DataArray };
