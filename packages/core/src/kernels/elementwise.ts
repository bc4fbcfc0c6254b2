/**
 * Elementwise kernels, with lazy fusion of large elementwise chains.
 *
 * Every elementwise op is a small expression over its operands. Each distinct expression (and set of
 * dtypes) is compiled once with `new Function` into its own loop, so that loops stay monomorphic and
 * inline their arithmetic: no per-element closure calls, no index arithmetic through shape arrays.
 *
 * On large tensors the result is not computed at once: it is a *pending* tensor that remembers its
 * program (a list of steps over concrete inputs). A later elementwise op on a pending operand of the
 * same shape copies the operand's steps into its own program instead of reading a materialised array,
 * so a chain such as `mul(0.75, pow(p, 2))` runs as one pass, and a full `sum` of a pending tensor
 * runs its program inside the reduction loop. A pending tensor computes its data the first time
 * anything reads `.data`. Steps are value-numbered, so a chain and its gradient fused into one loop
 * compute each logarithm once. Every step rounds to its op's dtype, so fused results are bit for
 * bit those of op-by-op evaluation (see `fusion.exact`).
 *
 * A differentiated full sum of a pending tensor waits for the backward pass, which computes it in
 * the same loop as the gradient (see `deferredSum` and `whileDifferentiating`).
 *
 * This module is the interface the ops use; programs and their builder are in `program.ts`, the
 * generated loops in `loop.ts`.
 */

import { allocate, type DataArray, type DType, dtypeOfArray } from "../dtype.js";
import { broadcastStrides, type Shape, shapesEqual, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import { compile, type Kernel, launch, layout, type Mode, run } from "./loop.js";
import {
  broadcastInput,
  fusion,
  operandLetter,
  type Program,
  ProgramBuilder,
  type ProgramInput,
  programs,
  type RowStarts,
} from "./program.js";

export { configureFusion, type FusionSettings, type RowStarts } from "./program.js";

/** One input of a strided loop: its elements, its stride per axis (0 to broadcast), its first element. */
export interface StridedOperand {
  data: DataArray;
  strides: readonly number[];
  offset: number;
}

/** The pending tensors a program reads (not inlined): they compute before it runs. */
function pendingInputs(program: Program): Tensor[] {
  return program.inputs.filter((input) => input.data === null).map((input) => input.tensor);
}

/** Pending full sums (scalars) and the programs whose results they add up. */
const reductions = new WeakMap<Tensor, Program>();

/** A pending tensor that computes `program` when first read. */
function pendingTensor(program: Program, dtype: DType): Tensor {
  const t = new Tensor(
    null,
    program.shape,
    dtype,
    () => {
      programs.delete(t);
      const out = allocate(dtype, sizeOf(program.shape));
      execute(program, dtype, "store", out);
      return out;
    },
    pendingInputs(program),
  );
  programs.set(t, program);
  return t;
}

function fuses(n: number): boolean {
  return fusion.enabled && n >= fusion.minSize;
}

/** Kernels of single ops on small tensors, by expression and dtypes: one map lookup per op. */
const singleOps = new Map<string, Kernel>();

function eager(
  expr: string,
  operands: readonly Tensor[],
  shape: Shape,
  dtype: DType,
  n: number,
): Tensor {
  // The kernel depends on each operand's dtype and on whether it is a scalar (read once).
  let key = `${expr}|${dtype}`;
  for (const t of operands) key += t.size === 1 ? `k${t.dtype}` : t.dtype;
  const inputs = operands.map((t) => broadcastInput(t, shape, true));
  let kernel = singleOps.get(key);
  if (kernel === undefined) {
    const builder = new ProgramBuilder(shape);
    const result = builder.op(
      expr,
      operands.map((_, i) => `v${i}`),
      dtype,
    );
    kernel = compile({ ...builder.program(result), inputs }, dtype, "store", false);
    singleOps.set(key, kernel);
  }
  const out = allocate(dtype, n);
  const operandsOnly = { shape, inputs, sums: [] };
  launch(kernel, operandsOnly, layout(operandsOnly, 0), out, null, 0, null);
  return new Tensor(out, shape, dtype);
}

/**
 * Evaluates `expr` (in terms of `a` … `e`) elementwise over `operands` broadcast to `shape`, into a
 * new tensor of `dtype`: at once for small tensors, as a pending fused program for large ones and
 * for any result of a pending operand (such as a deferred sum), so that a loss made of deferred
 * sums stays deferred. The caller has already checked that the shapes broadcast.
 */
export function elementwise(
  expr: string,
  operands: readonly Tensor[],
  shape: Shape,
  dtype: DType,
): Tensor {
  const n = sizeOf(shape);
  if (!fuses(n) && !(fusion.enabled && operands.some((t) => t.isPending))) {
    return eager(expr, operands, shape, dtype, n);
  }
  const builder = new ProgramBuilder(shape);
  const names = operands.map((t) => builder.operand(t, true));
  const dtypes = operands.map((t) => t.dtype);
  return pendingTensor(builder.program(builder.op(expr, names, dtype, dtypes)), dtype);
}

/**
 * The sum of all elements of `x` in double precision, running a pending program inside the
 * reduction loop (no intermediate array); `null` when `x` is not pending.
 */
export function sumPending(x: Tensor): number | null {
  const program = x.isPending ? programs.get(x) : undefined;
  if (program === undefined) return null;
  return execute(program, x.dtype, "sum", null);
}

/** A one-element array of `dtype` holding `value` (rounded as a store rounds). */
function scalarData(dtype: DType, value: number): DataArray {
  const data = allocate(dtype, 1);
  data[0] = value;
  return data;
}

/**
 * The full sum of a pending `x`, itself pending: a scalar (of `shape`, all ones) that is computed
 * when first read, or, if a backward pass through it comes first, inside one of that pass's loops
 * over the same elements, where the gradient needs the same intermediate values anyway (see
 * `whileDifferentiating`). `null` when `x` is not pending.
 */
export function deferredSum(x: Tensor, shape: Shape, dtype: DType): Tensor | null {
  const program = x.isPending ? programs.get(x) : undefined;
  if (program === undefined || sizeOf(shape) !== 1) return null;
  const t = new Tensor(
    null,
    shape,
    dtype,
    () => {
      reductions.delete(t);
      return scalarData(dtype, execute(program, x.dtype, "sum", null));
    },
    pendingInputs(program),
  );
  reductions.set(t, program);
  return t;
}

/** Pending sums that a loop over the same elements may compute alongside its own result. */
let partners: readonly Tensor[] = [];
/** Pending results smaller than this are cheap enough to compute when a backward pass ends. */
const settleBelow = 1 << 14;

/**
 * @internal Runs `fn` (a backward pass) with the pending sums among `tensors` (its graph) open to
 * being computed inside the pass's own loops, then computes those still pending, and every small
 * pending result among `tensors` (the loss), while the arrays they read are fresh: afterwards the
 * programs let go of the arrays they captured. (Correctness does not depend on it: a pending
 * result reads the values it was made from, whatever an optimiser step writes later.)
 */
export function whileDifferentiating<T>(tensors: readonly Tensor[], fn: () => T): T {
  const before = partners;
  partners = tensors.filter((t) => t.isPending && reductions.has(t));
  try {
    const result = fn();
    for (const t of tensors)
      if (t.isPending && (reductions.has(t) || t.size < settleBelow)) t.read();
    return result;
  } finally {
    partners = before;
  }
}

/**
 * Runs `program` (see `run`), computing alongside it every open pending sum over the same shape
 * that fits into the same loop: one pass over memory instead of several.
 */
function execute(
  program: Program,
  outType: string,
  mode: Mode,
  out: DataArray | null,
  scatterRows: RowStarts | null = null,
  scatterWidth = 0,
): number {
  if (partners.length === 0) return run(program, outType, mode, out, scatterRows, scatterWidth);
  const builder = new ProgramBuilder(program.shape);
  const result = builder.inline(program);
  const taken: Tensor[] = [];
  const names: string[] = [];
  for (const t of partners) {
    const other = t.isPending ? reductions.get(t) : undefined;
    if (other === undefined || other === program || !shapesEqual(other.shape, program.shape))
      continue;
    // Never read the array this loop writes, nor an input still to compute (it may be the very
    // tensor this loop is computing).
    if (other.inputs.some((input) => input.data === null || input.data === out)) continue;
    if (!builder.fits(other, 2)) continue;
    taken.push(t);
    names.push(builder.inline(other));
  }
  if (taken.length === 0) return run(program, outType, mode, out, scatterRows, scatterWidth);
  const sums = new Float64Array(taken.length);
  const merged = builder.program(result, names);
  // Taken: a loop that runs while this one gathers its inputs must not take them too.
  const programsOf = taken.map((t) => reductions.get(t)!);
  for (const t of taken) reductions.delete(t);
  let total: number;
  try {
    total = run(merged, outType, mode, out, scatterRows, scatterWidth, sums);
  } catch (error) {
    taken.forEach((t, k) => {
      reductions.set(t, programsOf[k]);
    });
    throw error;
  }
  taken.forEach((t, k) => {
    if (t.isPending) t.resolve(scalarData(t.dtype, sums[k]));
  });
  return total;
}

/**
 * A lazy view of `x` read with `strides` from `offset` over `shape` (a slice); `null` when the view
 * is too small to fuse, so that the caller copies it at once.
 */
export function lazyView(
  x: Tensor,
  shape: Shape,
  strides: readonly number[],
  offset: number,
): Tensor | null {
  if (!fuses(sizeOf(shape))) return null;
  const builder = new ProgramBuilder(shape);
  const name = builder.direct({ kind: "strided", tensor: x, data: x.capture(), strides, offset });
  return pendingTensor(builder.program(builder.op("a", [name], x.dtype, [x.dtype])), x.dtype);
}

/**
 * How a pending view (a lazy `slice`) reads the tensor it views: element `i` (a multi-index over
 * the view's shape) is `tensor.data[offset + Σ i[d] · strides[d]]`. `null` when `x` is not a pending
 * view, so that a gather from it can read the viewed tensor directly.
 */
export function viewOf(x: Tensor): ViewSource | null {
  const program = x.isPending ? programs.get(x) : undefined;
  if (program === undefined || program.steps.length !== 0 || program.inputs.length !== 1)
    return null;
  const input = program.inputs[0];
  if (input.kind !== "strided") return null;
  return { tensor: input.tensor, data: input.data, strides: input.strides, offset: input.offset };
}

/** What a pending view reads: the viewed tensor, the array it captured, and its layout. */
export interface ViewSource {
  readonly tensor: Tensor;
  readonly data: DataArray | null;
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * A lazy gather of rows (gatherNd): element (r, j) of the result, of `shape`, is
 * `x.data[start(r) + j · colStride]` for the row starts `rows`, rows of `width` elements. `null`
 * when too small to fuse.
 */
export function lazyGatherRows(
  x: Tensor | ViewSource,
  rows: RowStarts,
  width: number,
  colStride: number,
  shape: Shape,
): Tensor | null {
  if (!fuses(sizeOf(shape))) return null;
  const builder = new ProgramBuilder(shape);
  // Through a pending view: the array the view captured, whatever was written since.
  const [tensor, data] = x instanceof Tensor ? [x, x.capture()] : [x.tensor, x.data];
  const name = builder.direct({
    kind: "rows",
    tensor,
    data,
    rows,
    width,
    colStride,
  });
  return pendingTensor(
    builder.program(builder.op("a", [name], tensor.dtype, [tensor.dtype])),
    tensor.dtype,
  );
}

/**
 * Adds pending `updates` into `dest` at the row starts `rows`, rows of `width` elements, running the
 * updates' program inside the scatter loop; `false` (nothing done) when `updates` is not pending.
 * With `overwrite`, the caller knows that the rows are disjoint and `dest` is zero there, so the
 * loop stores instead of adding (it never reads `dest`).
 */
export function scatterPendingRows(
  updates: Tensor,
  rows: RowStarts,
  width: number,
  dest: DataArray,
  overwrite = false,
): boolean {
  const program = updates.isPending ? programs.get(updates) : undefined;
  if (program === undefined || width === 0) return false;
  execute(program, updates.dtype, overwrite ? "place" : "scatter", dest, rows, width);
  return true;
}

/**
 * Evaluates `expr` (in terms of `a` … `e`) over strided operands laid over `shape`, writing `out`
 * in row-major order, at once. The building block of copies: broadcasts, slices, permutes.
 */
export function strided(
  expr: string,
  out: DataArray,
  shape: Shape,
  operands: readonly StridedOperand[],
): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  const names = operands.map((_, i) => `v${i}`);
  const step = expr.replace(operandLetter, (_, letter: string) => names[letter.charCodeAt(0) - 97]);
  const inputs: ProgramInput[] = operands.map((o) => ({
    kind: "strided",
    tensor: new Tensor(o.data, [o.data.length], dtypeOfArray(o.data) ?? "float32"),
    data: o.data,
    strides: o.strides,
    offset: o.offset,
  }));
  const program: Program = {
    shape,
    inputs,
    steps: [step],
    raw: [false],
    result: "t0",
    sums: [],
    heavy: false,
  };
  run(program, out.constructor.name, "store", out);
}

/** `target += g`, in place (a write: see `Tensor.write`); `g` may broadcast to it. */
export function addInPlace(target: Tensor, g: Tensor): void {
  const src = g.read();
  target.write((out) => {
    if (shapesEqual(target.shape, g.shape)) {
      for (let i = 0; i < out.length; i++) out[i] += src[i];
      return;
    }
    strided("a + b", out, target.shape, [
      { data: out, strides: broadcastStrides(target.shape, target.shape), offset: 0 },
      { data: src, strides: broadcastStrides(g.shape, target.shape), offset: 0 },
    ]);
  });
}
