/** The tensor: a contiguous row-major typed array, its shape and dtype, and its place in the autodiff graph. */

import { type DataArray, type DataArrayOf, type DType, isFloat } from "./dtype.js";
import { formatShape, type Shape, sizeOf } from "./shape.js";
import type { GraphNode } from "./tape.js";

/** Nested JavaScript arrays, as `toArray()` returns them. */
export type NestedArray = number | boolean | NestedArray[];

/**
 * @internal The memory behind one or more tensors: a tensor, its `reshape` views and its `detach()`ed
 * copies share one storage, and with it its version and its flags.
 *
 * Lazily fused results read their inputs later than an op-by-op evaluation would. Two flags keep
 * that invisible: a pending program never reads an array a user may hold (`exposed`: such inputs are
 * read at once instead), and a write into an array a pending program may still read (`captured`)
 * goes to a fresh copy first, so the program reads the values it was made from.
 */
export class Storage {
  /** Bumped by every in-place write: autograd refuses to backpropagate through an op that saved older values. */
  version = 0;
  /** `array` was handed out by `.data`: a user may hold it and write into it at any time. */
  exposed = false;
  /** A pending program may read `array` later. */
  captured = false;

  constructor(public array: DataArray) {}

  /** Before a write: a captured array is left to the programs that read it, and replaced by a copy. */
  unshare(): DataArray {
    if (this.captured) {
      this.array = this.array.slice();
      this.captured = false;
    }
    return this.array;
  }
}

/** A pending result deeper than this (results of pending results …) computes its inputs first. */
const maxPendingDepth = 200;

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
  private storage: Storage | null;
  private compute: (() => DataArray) | null;
  /** What `compute` returned: programs made while this tensor was pending read it, whatever is written later. */
  private computed: DataArray | null = null;
  /** Whether a pending program read this tensor while it was still pending. */
  private capturedPending = false;
  /** @internal How many pending results stand between this one and concrete data (0 when concrete). */
  readonly pendingDepth: number;
  /** The length of each axis, outermost first; `[]` for a scalar. Frozen. */
  readonly shape: Shape;
  /** The element type: `float32`, `float64`, `int32` or `bool`. */
  readonly dtype: D;
  /** The number of elements, the product of `shape` (1 for a scalar). */
  readonly size: number;
  /** The accumulated gradient after `backward()`, on leaves that require gradients. */
  grad: Tensor | null = null;
  /** @internal The op that made this tensor, while the graph is alive. */
  node: GraphNode | null = null;
  private requires = false;

  /**
   * @internal Wraps `data` (not copied) or shares a storage, or with `data` null a pending result
   * that `compute` produces on first read from the pending tensors `sources` (among others). Users
   * make tensors with `tensor()`, `zeros()` and the other creators.
   */
  constructor(
    data: DataArray | Storage | null,
    shape: Shape,
    dtype: D,
    compute?: () => DataArray,
    sources: readonly Tensor[] = [],
  ) {
    const size = sizeOf(shape);
    const array = data instanceof Storage ? data.array : data;
    if (array !== null && array.length !== size) {
      throw new Error(
        `Tensor: ${array.length} elements do not fill shape ${formatShape(shape)} (${size} expected)`,
      );
    }
    this.storage = data === null ? null : data instanceof Storage ? data : new Storage(data);
    this.compute = data === null ? (compute ?? null) : null;
    let depth = 0;
    if (data === null) {
      for (const s of sources) depth = Math.max(depth, s.pendingDepth);
      // Computing a pending result computes its pending sources first, recursively: keep that
      // recursion shallow by computing deep sources now (long chains of small pending steps).
      if (depth >= maxPendingDepth) {
        for (const s of sources) s.read();
        depth = 0;
      }
      depth++;
    }
    this.pendingDepth = depth;
    this.shape = Object.freeze(shape.slice());
    this.dtype = dtype;
    this.size = size;
  }

  /** Computes a pending result; returns the storage. */
  private realise(): Storage {
    if (this.storage === null) {
      const array = this.compute!();
      this.compute = null;
      this.computed = array;
      this.storage = new Storage(array);
      this.storage.captured = this.capturedPending;
      (this as { pendingDepth: number }).pendingDepth = 0;
    }
    return this.storage;
  }

  /**
   * The elements, row-major, as a typed array of the dtype: the tensor's own memory, shared with
   * its `reshape` views and `detach()`ed copies. You may write into it; call `markModified()`
   * afterwards, so that autograd can tell you when an op recorded earlier needed the old values.
   * Results computed earlier never see such writes, however large the tensor: a lazily fused op
   * that reads a tensor whose memory was handed out reads a copy. To only read, `read()` is cheaper.
   *
   * @example
   * const w = zeros([3]);
   * w.data[0] = 1;
   * w.markModified();
   */
  get data(): DataArrayOf[D] {
    const storage = this.realise();
    storage.unshare();
    storage.exposed = true;
    return storage.array as DataArrayOf[D];
  }

  /**
   * The elements, row-major, for reading only: the same memory as `data` without handing it out
   * for writing, so lazily fused ops may still read this tensor later. Never write into it.
   *
   * @example
   * tensor([1, 2, 3]).read()[2]; // 3
   */
  read(): DataArrayOf[D] {
    return this.realise().array as DataArrayOf[D];
  }

  /**
   * Writes into the elements in place through `fn` and records the write (`markModified()`), as
   * optimisers and `load` do. Results computed earlier, even lazily, keep the values they were made
   * from.
   *
   * @example
   * const w = ones([2]);
   * w.write((d) => { d[0] = 5; }); // w is [5, 1]
   */
  write(fn: (data: DataArrayOf[D]) => void): void {
    fn(this.writable());
    this.markModified();
  }

  /**
   * @internal The elements for an in-place write by library code, which calls `markModified()`
   * after writing (see `write`).
   */
  writable(): DataArrayOf[D] {
    return this.realise().unshare() as DataArrayOf[D];
  }

  /**
   * @internal The array a pending program reads later: the storage itself, marked so that writes
   * go to a copy; a private snapshot when the memory was handed out (a user may write into it at
   * any time); `null` while this tensor is pending (the program reads its result, `captured()`).
   */
  capture(): DataArray | null {
    if (this.storage === null) {
      this.capturedPending = true;
      return null;
    }
    if (this.storage.exposed) return this.storage.array.slice();
    this.storage.captured = true;
    return this.storage.array;
  }

  /** @internal The array a program that captured this tensor while it was pending reads. */
  captured(): DataArray {
    this.realise();
    return this.computed ?? this.storage!.array;
  }

  /** @internal Whether this tensor's memory was handed out by `.data` (a user may hold it). */
  get isExposed(): boolean {
    return this.storage?.exposed === true;
  }

  /** @internal Whether `other` is this tensor or shares its memory (a view, a detached copy). */
  sharesMemoryWith(other: Tensor): boolean {
    return other === this || (this.storage !== null && this.storage === other.storage);
  }

  /** @internal A tensor of `shape` over the same storage (a view: `reshape`, `detach`). */
  view<S extends Shape>(shape: S): Tensor<D> {
    return new Tensor(this.realise(), shape, this.dtype);
  }

  /** Bumped by every recorded in-place write; shared with views. Autograd compares it. */
  get version(): number {
    return this.storage === null ? 0 : this.storage.version;
  }

  /**
   * Records that `data` was written in place. Autograd then refuses to backpropagate through an op
   * recorded before the write that needs this tensor's values (as PyTorch's version counter does),
   * instead of silently using the new values.
   *
   * @example
   * w.data[0] -= 0.1 * w.grad!.read()[0];
   * w.markModified();
   */
  markModified(): void {
    this.realise().version++;
  }

  /**
   * @internal Supplies the data of a pending tensor that a loop computing something else made as a
   * by-product (a deferred sum computed inside a backward loop).
   */
  resolve(data: DataArray): void {
    if (this.storage !== null) throw new Error("resolve: the tensor's data is already computed");
    if (data.length !== this.size) {
      throw new Error(`resolve: ${data.length} elements for a tensor of ${this.size}`);
    }
    this.compute = () => data;
    this.realise();
  }

  /** @internal Whether the data is still to be computed (a lazily fused elementwise result). */
  get isPending(): boolean {
    return this.storage === null;
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
    return this.read()[0];
  }

  /** The elements as nested arrays (booleans as `true`/`false`). */
  toArray(): NestedArray {
    const data = this.read();
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
  // Installed on the prototype by methods.ts with the op methods: the engine sits above the ops,
  // which import the tensor, so the tensor cannot import it without closing an import circle.
  declare backward: (
    upstream?: Tensor,
    options?: { retainGraph?: boolean; createGraph?: boolean },
  ) => void;

  /**
   * The same values, cut off from the graph: no gradient flows through the result. Shares the
   * memory (and its version) with this tensor, as PyTorch's `detach()` does.
   */
  detach(): Tensor<D> {
    return this.view(this.shape);
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
  const data = t.read();
  if (t.rank === 0) return fmt(data[0]);
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
        ? fmt(data[offset + i])
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
