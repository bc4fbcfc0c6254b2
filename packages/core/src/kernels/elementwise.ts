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
 * anything reads `.data`. Steps round to the dtype of the op they come from (`Math.fround` for
 * float32), so fused results are bit for bit those of op-by-op evaluation. Transcendental steps
 * (log, exp, …) are never copied into a consumer, so they are computed once, not once per consumer.
 */

import { allocate, type DataArray, type DType } from "../dtype.js";
import { broadcastStrides, type Shape, shapesEqual, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";

/** One input of a strided loop: its elements, its stride per axis (0 to broadcast), its first element. */
export interface StridedOperand {
  data: DataArray;
  strides: readonly number[];
  offset: number;
}

/** A fused elementwise computation over concrete inputs `v0 … vk`, steps `t0 … tm`. */
interface Program {
  readonly inputs: readonly Tensor[];
  readonly steps: readonly string[];
  /** The name holding the result: a step `tN` or an input `vN`. */
  readonly result: string;
  /** Whether a step calls a transcendental function: such programs are not copied into consumers. */
  readonly heavy: boolean;
}

const fusion = {
  enabled: true,
  /** Below this many elements ops run at once: fusion pays off only on large tensors. */
  minSize: 1 << 14,
  maxInputs: 12,
  maxSteps: 24,
};

/**
 * @internal Tunes lazy fusion (tests force it on small tensors; `enabled: false` evaluates every
 * op at once). Returns the previous settings.
 */
export function configureFusion(settings: Partial<{ enabled: boolean; minSize: number }>): {
  enabled: boolean;
  minSize: number;
} {
  const before = { enabled: fusion.enabled, minSize: fusion.minSize };
  Object.assign(fusion, settings);
  return before;
}

const programs = new WeakMap<Tensor, Program>();
let pending: WeakRef<Tensor>[] = [];

/**
 * Computes every pending (lazily fused) tensor that is still alive. Call it before writing into a
 * tensor's `data` in place (optimisers do), so that no pending result reads the new values.
 */
export function realizePending(): void {
  const list = pending;
  pending = [];
  for (const ref of list) ref.deref()?.data;
}

const heavyCall = /Math\.(log|log1p|exp|expm1|pow|sqrt|tanh|sin|cos|atan)/;
const operandLetter = /(?<![\w.$])([a-e])(?![\w$])/g;
const stepName = /\b([vt])(\d+)\b/g;

type Kernel = (
  out: DataArray | null,
  n: number,
  shape: Int32Array,
  rank: number,
  ...args: unknown[]
) => number;
const kernels = new Map<string, Kernel>();

/**
 * The loop for a program: reads every input with its (coalesced) strides, runs the steps, and
 * either stores the result in `out` or, with `reduce`, returns the double-precision sum.
 */
function compile(program: Program, outType: string, reduce: boolean): Kernel {
  const inputTypes = program.inputs.map((t) => t.dtype).join(",");
  const key = `${reduce ? "sum" : outType}|${inputTypes}|${program.steps.join("")}|${program.result}`;
  const cached = kernels.get(key);
  if (cached !== undefined) return cached;
  const k = program.inputs.length;
  const each = (f: (i: number) => string) => Array.from({ length: k }, (_, i) => f(i)).join("\n");
  const source = `
    const inner = shape[rank - 1];
    ${each((i) => `const step${i} = s${i}[rank - 1]; let base${i} = o${i};`)}
    const index = new Int32Array(rank);
    let o = 0;
    let acc = 0;
    while (o < n) {
      ${each((i) => `let i${i} = base${i};`)}
      for (let j = 0; j < inner; j++) {
        ${each((i) => `const v${i} = d${i}[i${i}]; i${i} += step${i};`)}
        ${program.steps.join("\n        ")}
        ${reduce ? `acc += ${program.result}; o++;` : `out[o++] = ${program.result};`}
      }
      for (let d = rank - 2; d >= 0; d--) {
        ${each((i) => `base${i} += s${i}[d];`)}
        if (++index[d] < shape[d]) break;
        index[d] = 0;
        ${each((i) => `base${i} -= s${i}[d] * shape[d];`)}
      }
    }
    return acc;`;
  const params = [
    "out",
    "n",
    "shape",
    "rank",
    ...Array.from({ length: k }, (_, i) => [`d${i}`, `s${i}`, `o${i}`]).flat(),
  ];
  const kernel = new Function(...params, source) as Kernel;
  kernels.set(key, kernel);
  return kernel;
}

/**
 * Drops size-1 axes and merges neighbours that every operand reads contiguously, so that the
 * common cases (same shapes, a scalar, a trailing row) become a single flat inner loop.
 */
function coalesce(
  shape: Shape,
  strides: readonly (readonly number[])[],
): { shape: Int32Array; strides: Int32Array[] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => {
        outStrides[k][last] = s[d];
      });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => {
        outStrides[k].push(s[d]);
      });
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => {
      s.push(0);
    });
  }
  return { shape: Int32Array.from(outShape), strides: outStrides.map((s) => Int32Array.from(s)) };
}

const unitStride = new Int32Array([1]);
const flatShape = new Int32Array(1);

/** Runs `kernel` over `inputs` broadcast to `shape`; returns the sum when `out` is null. */
function run(
  kernel: Kernel,
  inputs: readonly Tensor[],
  shape: Shape,
  out: DataArray | null,
): number {
  const n = sizeOf(shape);
  if (n === 0) return 0;
  const args: unknown[] = [];
  let flat = true;
  for (const t of inputs) if (t.size !== n) flat = false;
  if (flat) {
    // Kernels never call back into JavaScript, so one shared shape array is safe.
    flatShape[0] = n;
    for (const t of inputs) args.push(t.data, unitStride, 0);
    return kernel(out, n, flatShape, 1, ...args);
  }
  const c = coalesce(
    shape,
    inputs.map((t) => broadcastStrides(t.shape, shape)),
  );
  inputs.forEach((t, i) => {
    args.push(t.data, c.strides[i], 0);
  });
  return kernel(out, n, c.shape, c.shape.length, ...args);
}

function runProgram(
  program: Program,
  shape: Shape,
  out: DataArray | null,
  outType: string,
): number {
  return run(compile(program, outType, out === null), program.inputs, shape, out);
}

/** Accumulates a program: inputs deduplicated, pending operands of the output's shape inlined. */
class ProgramBuilder {
  readonly inputs: Tensor[] = [];
  readonly steps: string[] = [];
  heavy = false;
  private readonly inputNames = new Map<Tensor, string>();
  private readonly inlined = new Map<Tensor, string>();

  constructor(private readonly shape: Shape) {}

  private input(t: Tensor): string {
    let name = this.inputNames.get(t);
    if (name === undefined) {
      name = `v${this.inputs.length}`;
      this.inputs.push(t);
      this.inputNames.set(t, name);
    }
    return name;
  }

  /** The name under which `t`'s value is available inside the loop. */
  operand(t: Tensor, fuse: boolean): string {
    const program = fuse && t.isPending ? programs.get(t) : undefined;
    const fits =
      program !== undefined &&
      !program.heavy &&
      shapesEqual(t.shape, this.shape) &&
      this.steps.length + program.steps.length < fusion.maxSteps &&
      this.inputs.length + program.inputs.length <= fusion.maxInputs;
    if (!fits) return this.input(t);
    const known = this.inlined.get(t);
    if (known !== undefined) return known;
    const rename = new Map<string, string>();
    program.inputs.forEach((input, i) => {
      rename.set(`v${i}`, this.input(input));
    });
    const offset = this.steps.length;
    program.steps.forEach((_, i) => {
      rename.set(`t${i}`, `t${offset + i}`);
    });
    for (const step of program.steps)
      this.steps.push(step.replace(stepName, (m) => rename.get(m) ?? m));
    const name = rename.get(program.result) ?? program.result;
    this.inlined.set(t, name);
    return name;
  }

  /** Appends the op's own step, rounding to its dtype as a store into its typed array would. */
  op(expr: string, names: readonly string[], dtype: DType): string {
    const body = expr.replace(
      operandLetter,
      (_, letter: string) => names[letter.charCodeAt(0) - 97],
    );
    const rounded =
      dtype === "float32"
        ? `Math.fround(${body})`
        : dtype === "int32"
          ? `((${body}) | 0)`
          : `(${body})`;
    const name = `t${this.steps.length}`;
    this.steps.push(`const ${name} = ${rounded};`);
    if (heavyCall.test(expr)) this.heavy = true;
    return name;
  }
}

/**
 * Evaluates `expr` (in terms of `a` … `e`) elementwise over `operands` broadcast to `shape`, into a
 * new tensor of `dtype`: at once for small tensors, as a pending fused program for large ones. The
 * caller has already checked that the shapes broadcast.
 */
export function elementwise(
  expr: string,
  operands: readonly Tensor[],
  shape: Shape,
  dtype: DType,
): Tensor {
  const n = sizeOf(shape);
  const lazy = fusion.enabled && n >= fusion.minSize;
  if (!lazy) return eager(expr, operands, shape, dtype, n);
  const builder = new ProgramBuilder(shape);
  const names = operands.map((t) => builder.operand(t, lazy));
  const result = builder.op(expr, names, dtype);
  const program: Program = {
    inputs: builder.inputs,
    steps: builder.steps,
    result,
    heavy: builder.heavy,
  };
  const t = new Tensor(null, shape, dtype, () => {
    programs.delete(t);
    const out = allocate(dtype, n);
    runProgram(program, shape, out, dtype);
    return out;
  });
  programs.set(t, program);
  pending.push(new WeakRef(t));
  if (pending.length > 4096) pending = pending.filter((ref) => ref.deref()?.isPending);
  return t;
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
  let key = `${expr}|${dtype}`;
  for (const t of operands) key += t.dtype;
  let kernel = singleOps.get(key);
  if (kernel === undefined) {
    const builder = new ProgramBuilder(shape);
    const result = builder.op(
      expr,
      operands.map((_, i) => `v${i}`),
      dtype,
    );
    kernel = compile(
      { inputs: operands, steps: builder.steps, result, heavy: builder.heavy },
      dtype,
      false,
    );
    singleOps.set(key, kernel);
  }
  const out = allocate(dtype, n);
  run(kernel, operands, shape, out);
  return new Tensor(out, shape, dtype);
}

/**
 * The sum of all elements of `x` in double precision, running a pending program inside the
 * reduction loop (no intermediate array); `null` when `x` is not pending.
 */
export function sumPending(x: Tensor): number | null {
  const program = x.isPending ? programs.get(x) : undefined;
  if (program === undefined) return null;
  return runProgram(program, x.shape, null, x.dtype);
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
  const step = `const t0 = ${expr.replace(operandLetter, (_, letter: string) => names[letter.charCodeAt(0) - 97])};`;
  const program: Program = { inputs: [], steps: [step], result: "t0", heavy: false };
  const kernel = compile(
    {
      ...program,
      inputs: operands.map((o) => new Tensor(o.data, [o.data.length], dtypeOf(o.data))),
    },
    out.constructor.name,
    false,
  );
  const c = coalesce(
    shape,
    operands.map((o) => o.strides),
  );
  kernel(
    out,
    n,
    c.shape,
    c.shape.length,
    ...operands.flatMap((o, k) => [o.data, c.strides[k], o.offset]),
  );
}

function dtypeOf(data: DataArray): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  return "bool";
}

/** `target += g`, in place, for a gradient buffer the engine owns; `g` may broadcast to it. */
export function addInPlace(target: Tensor, g: Tensor): void {
  const out = target.data;
  if (shapesEqual(target.shape, g.shape)) {
    const src = g.data;
    for (let i = 0; i < out.length; i++) out[i] += src[i];
    return;
  }
  strided("a + b", out, target.shape, [
    { data: out, strides: broadcastStrides(target.shape, target.shape), offset: 0 },
    { data: g.data, strides: broadcastStrides(g.shape, target.shape), offset: 0 },
  ]);
}
