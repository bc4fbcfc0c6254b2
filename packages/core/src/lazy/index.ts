/**
 * Lazy fusion as the ops see it: elementwise results of large tensors stay pending (a program),
 * full sums of them stay pending while they are differentiated (a deferred sum), and both are
 * realised when read, or inside a backward pass's own loops (`differentiating`, the one entry point
 * of the engine). Kernels are run by the renderer of `fusion.renderer`, else by the current
 * backend's (WebAssembly SIMD on the wasm backend), where it supports them, else by the
 * JavaScript renderer.
 *
 * A later elementwise op on a pending operand of the same shape moves the operand's expression
 * into its own program instead of reading a materialised array, so a chain such as
 * `mul(0.75, pow(p, 2))` runs as one pass, and a full `sum` of a pending tensor runs its program
 * inside the reduction loop. Every step rounds to its op's dtype, so fused results are those of
 * op-by-op evaluation (see `fusion.exact`): bit for bit on the JavaScript renderer, within float32
 * rounding on WebAssembly's (its `log`, `exp`, `log1p` are within 2 ulp of `Math`'s).
 */

import { allocate, type DataArray, type DType, dtypeOfArray } from "../dtype.js";
import { getBackend } from "../kernels/backend.js";
import { type Expr, input, ir } from "../kernels/ir.js";
import { javascript } from "../kernels/javascript.js";
import type {
  InputAccess,
  Kernel,
  KernelArrays,
  KernelOutput,
  RowStarts,
} from "../kernels/kernel.js";
import { broadcastStrides, type Shape, shapesEqual, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import {
  accessOf,
  applyTemplate,
  broadcastInput,
  fusion,
  inputArray,
  type Program,
  ProgramBuilder,
  type Template,
} from "./program.js";

export type { RowStarts } from "../kernels/kernel.js";
export { configureFusion, type FusionSettings, type Template } from "./program.js";

/**
 * The deferred sums of one backward pass that a loop over the same elements may compute alongside
 * its own value. Pending tensors of the pass's graph belong to it, and so does every program made
 * from them during the pass (a gradient of the same elements).
 */
interface SumGroup {
  readonly open: Set<Tensor>;
}

/** What a pending tensor is waiting for: its elements (`program`), or their full sum (`sum`). */
interface Pending {
  readonly kind: "program" | "sum";
  readonly program: Program;
  group: SumGroup | null;
}

/** The pending tensors: removed when realised. */
const pendingTensors = new WeakMap<Tensor, Pending>();

/** The program of `t` while `t` is a pending elementwise result. */
function programOf(t: Tensor): Program | undefined {
  const state = t.isPending ? pendingTensors.get(t) : undefined;
  return state?.kind === "program" ? state.program : undefined;
}

/** The pending tensors a program reads (not inlined): they compute before it runs. */
function pendingInputs(program: Program): Tensor[] {
  return program.inputs.filter((input) => input.data === null).map((input) => input.tensor);
}

/** The group of the first pending tensor among `tensors` that has one. */
function groupOf(tensors: readonly Tensor[]): SumGroup | null {
  for (const t of tensors) {
    const group = t.isPending ? pendingTensors.get(t)?.group : undefined;
    if (group !== undefined && group !== null) return group;
  }
  return null;
}

/** A one-element array of `dtype` holding `value` (rounded as a store rounds). */
function scalarData(dtype: DType, value: number): DataArray {
  const data = allocate(dtype, 1);
  data[0] = value;
  return data;
}

/** A pending tensor of `kind` for `program`, realised on first read. */
function pendingTensor(
  kind: Pending["kind"],
  program: Program,
  shape: Shape,
  dtype: DType,
  sources: readonly Tensor[],
): Tensor {
  const state: Pending = { kind, program, group: groupOf(sources) };
  const t = new Tensor(
    null,
    shape,
    dtype,
    () => {
      pendingTensors.delete(t);
      if (kind === "sum") return scalarData(dtype, realise(program, { kind: "sum" }, null, state));
      // A store writes every element.
      const out = allocate(dtype, sizeOf(program.shape), false);
      realise(program, { kind: "store", dtype }, out, state);
      return out;
    },
    pendingInputs(program),
  );
  pendingTensors.set(t, state);
  return t;
}

function fuses(n: number): boolean {
  return fusion.enabled && n >= fusion.minSize;
}

/**
 * Runs `kernel` on the configured renderer (`fusion.renderer`, else the backend's) where it
 * supports the kernel, else on JavaScript's.
 */
function render(kernel: Kernel, arrays: KernelArrays): number {
  const preferred = fusion.renderer ?? getBackend().renderer ?? javascript;
  const renderer = preferred.supports(kernel) ? preferred : javascript;
  return renderer.run(kernel, arrays);
}

/** Runs `program`'s value (observed: a float32 value rounded where it is summed or scattered) into `output`. */
function run(
  program: Program,
  value: Expr,
  output: KernelOutput,
  out: DataArray | null,
  sums: readonly Expr[] = [],
  sumsOut: Float64Array | null = null,
): number {
  const observed = (x: Expr) => (x.dtype === "float32" ? ir.convert(x, "float32") : x);
  const kernel = {
    shape: program.shape,
    inputs: program.inputs.map((i) => i.access),
    value: output.kind === "store" || output.kind === "place" ? value : observed(value),
    output,
    sums: sums.map(observed),
  };
  return render(kernel, {
    inputs: program.inputs.map(inputArray),
    out,
    sums: sumsOut,
  });
}

/**
 * Runs `program` into `output`, computing alongside it every open deferred sum of its group over
 * the same shape that fits into the same loop: one pass over memory instead of several.
 */
function realise(
  program: Program,
  output: KernelOutput,
  out: DataArray | null,
  state: { group: SumGroup | null } | null,
): number {
  const group = state?.group ?? null;
  if (group === null || group.open.size === 0) return run(program, program.value, output, out);
  const builder = new ProgramBuilder(program.shape);
  const value = builder.inline(program);
  const taken: Tensor[] = [];
  const sums: Expr[] = [];
  for (const t of group.open) {
    const other = t.isPending ? pendingTensors.get(t) : undefined;
    if (other === undefined || other.kind !== "sum") continue;
    const sum = other.program;
    if (sum === program || !shapesEqual(sum.shape, program.shape)) continue;
    // Never read the array this loop writes, nor an input still to compute (it may be the very
    // tensor this loop is computing).
    if (sum.inputs.some((input) => input.data === null || input.data === out)) continue;
    if (!builder.fits(sum, 2)) continue;
    taken.push(t);
    sums.push(builder.inline(sum));
  }
  if (taken.length === 0) return run(program, program.value, output, out);
  // Taken: a loop that runs while this one gathers its inputs must not take them too.
  for (const t of taken) group.open.delete(t);
  const totals = new Float64Array(taken.length);
  let total: number;
  try {
    total = run(builder.program(value), value, output, out, sums, totals);
  } catch (error) {
    for (const t of taken) group.open.add(t);
    throw error;
  }
  taken.forEach((t, k) => {
    if (t.isPending) {
      pendingTensors.delete(t);
      t.resolve(scalarData(t.dtype, totals[k]));
    }
  });
  return total;
}

/** Applies `template` to `operands` at once (small tensors): no program kept. */
function eager(
  template: Template,
  operands: readonly Tensor[],
  shape: Shape,
  dtype: DType,
): Tensor {
  const inputs = operands.map((t) => broadcastInput(t, shape, true));
  const value = applyTemplate(
    template,
    operands.map((t, k) => input(k, t.dtype)),
    dtype,
  );
  const out = allocate(dtype, sizeOf(shape), false);
  run({ shape, inputs, value, steps: 1 }, value, { kind: "store", dtype }, out);
  return new Tensor(out, shape, dtype);
}

/**
 * Evaluates `template` (an IR expression of the operands' values, see `kernels/ir.ts`) elementwise
 * over `operands` broadcast to `shape`, into a new tensor of `dtype`: at once for small tensors, as
 * a pending fused program for large ones and for any result of a pending operand (such as a
 * deferred sum), so that a loss made of deferred sums stays deferred. The caller has already
 * checked that the shapes broadcast. The result is rounded to `dtype` as a store would.
 *
 * @example
 * elementwise((a, b) => ir.select(ir.eq(a, 0), 0, ir.mul(a, b)), [g, d], shape, "float32");
 */
export function elementwise(
  template: Template,
  operands: readonly Tensor[],
  shape: Shape,
  dtype: DType,
): Tensor {
  const n = sizeOf(shape);
  if (!fuses(n) && !(fusion.enabled && operands.some((t) => t.isPending))) {
    return eager(template, operands, shape, dtype);
  }
  const builder = new ProgramBuilder(shape);
  const values = operands.map((t) => builder.operand(t, programOf(t)));
  const value = builder.op(template, values, dtype);
  return pendingTensor("program", builder.program(value), shape, dtype, operands);
}

/**
 * The sum of all elements of `x` in double precision, running a pending program inside the
 * reduction loop (no intermediate array); `null` when `x` is not pending.
 */
export function sumPending(x: Tensor): number | null {
  const program = programOf(x);
  if (program === undefined) return null;
  return realise(program, { kind: "sum" }, null, pendingTensors.get(x)!);
}

/**
 * The full sum of a pending `x`, itself pending: a scalar (of `shape`, all ones) that is computed
 * when first read, or, if a backward pass through it comes first, inside one of that pass's loops
 * over the same elements, where the gradient needs the same intermediate values anyway (see
 * `differentiating`). `null` when `x` is not pending.
 */
export function deferredSum(x: Tensor, shape: Shape, dtype: DType): Tensor | null {
  const program = programOf(x);
  if (program === undefined || sizeOf(shape) !== 1) return null;
  return pendingTensor("sum", program, shape, dtype, [x]);
}

/** Pending results smaller than this are cheap enough to compute when a backward pass ends. */
const settleBelow = 1 << 14;

/**
 * @internal Runs `fn` (a backward pass over `graph`) with the deferred sums of `graph` open to
 * being computed inside the pass's own loops, then computes those still pending, and every small
 * pending result of `graph` (the loss), while the arrays they read are fresh: afterwards the
 * programs let go of the arrays they captured. (Correctness does not depend on it: a pending result
 * reads the values it was made from, whatever an optimiser step writes later.)
 */
export function differentiating<T>(graph: readonly Tensor[], fn: () => T): T {
  const group: SumGroup = { open: new Set() };
  const members: [Pending, SumGroup | null][] = [];
  for (const t of graph) {
    const state = t.isPending ? pendingTensors.get(t) : undefined;
    if (state === undefined) continue;
    members.push([state, state.group]);
    state.group = group;
    if (state.kind === "sum") group.open.add(t);
  }
  try {
    const result = fn();
    for (const t of graph) {
      if (t.isPending && (pendingTensors.get(t)?.kind === "sum" || t.size < settleBelow)) t.read();
    }
    return result;
  } finally {
    group.open.clear();
    for (const [state, before] of members) state.group = before;
  }
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
  const value = builder.direct({
    access: accessOf(x, strides, offset),
    tensor: x,
    data: x.capture(),
  });
  return pendingTensor("program", builder.program(value), shape, x.dtype, [x]);
}

/** What a pending view reads: the viewed tensor, the array it captured, and its layout. */
export interface ViewSource {
  readonly tensor: Tensor;
  readonly data: DataArray | null;
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * How a pending view (a lazy `slice`) reads the tensor it views: element `i` (a multi-index over
 * the view's shape) is `tensor.data[offset + Σ i[d] · strides[d]]`. `null` when `x` is not a pending
 * view, so that a gather from it can read the viewed tensor directly.
 */
export function viewOf(x: Tensor): ViewSource | null {
  const program = programOf(x);
  if (program === undefined || program.value.op !== "input" || program.inputs.length !== 1)
    return null;
  const { access, tensor, data } = program.inputs[0];
  if (access.kind !== "strided") return null;
  return { tensor, data, strides: access.strides, offset: access.offset };
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
  const access: InputAccess = { kind: "rows", dtype: tensor.dtype, rows, width, colStride };
  const value = builder.direct({ access, tensor, data });
  return pendingTensor("program", builder.program(value), shape, tensor.dtype, [tensor]);
}

/**
 * Adds pending `updates` into `dest` at the row starts `rows`, rows of `width` elements, running the
 * updates' program inside the scatter loop; `false` (nothing done) when `updates` is not pending.
 * `disjoint`: no two rows overlap. With `overwrite` as well, the caller knows that `dest` is zero
 * there, so the loop stores instead of adding (it never reads `dest`).
 */
export function scatterPendingRows(
  updates: Tensor,
  rows: RowStarts,
  width: number,
  dest: DataArray,
  { disjoint = false, overwrite = false }: { disjoint?: boolean; overwrite?: boolean } = {},
): boolean {
  const program = programOf(updates);
  if (program === undefined || width === 0) return false;
  if (overwrite && !disjoint) {
    throw new Error("scatterPendingRows: overwrite needs disjoint rows (a zero buffer per row)");
  }
  const kind = overwrite ? "place" : "scatter";
  realise(
    program,
    { kind, dtype: updates.dtype, rows, width, disjoint },
    dest,
    pendingTensors.get(updates)!,
  );
  return true;
}

/** One input of a strided loop: its elements, its stride per axis (0 to broadcast), its first element. */
export interface StridedOperand {
  data: DataArray;
  strides: readonly number[];
  offset: number;
}

/**
 * Evaluates `template` over strided operands laid over `shape`, writing `out` in row-major order,
 * at once (a store rounds to `out`'s dtype). The building block of copies: broadcasts, slices,
 * permutes.
 */
export function strided(
  template: Template,
  out: DataArray,
  shape: Shape,
  operands: readonly StridedOperand[],
): void {
  const dtypes = operands.map((o) => dtypeOfArray(o.data) ?? "float64");
  const value = template(...dtypes.map((dtype, k) => input(k, dtype)));
  render(
    {
      shape,
      inputs: operands.map((o, k) => ({
        kind: "strided",
        dtype: dtypes[k],
        strides: o.strides,
        offset: o.offset,
      })),
      value,
      output: { kind: "store", dtype: dtypeOfArray(out) ?? "float64" },
      sums: [],
    },
    { inputs: operands.map((o) => o.data), out, sums: null },
  );
}

/** `target += g`, in place (a write: see `Tensor.write`); `g` may broadcast to it. */
export function addInPlace(target: Tensor, g: Tensor): void {
  const src = g.read();
  target.write((out) => {
    if (shapesEqual(target.shape, g.shape)) {
      for (let i = 0; i < out.length; i++) out[i] += src[i];
      return;
    }
    strided(ir.add, out, target.shape, [
      { data: out, strides: broadcastStrides(target.shape, target.shape), offset: 0 },
      { data: src, strides: broadcastStrides(g.shape, target.shape), offset: 0 },
    ]);
  });
}
