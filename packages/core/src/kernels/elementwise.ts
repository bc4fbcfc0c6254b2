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

import { allocate, type DataArray, type DType, dtypeOfArray } from "../dtype.js";
import { broadcastStrides, type Shape, shapesEqual, sizeOf, stridesOf } from "../shape.js";
import { Tensor } from "../tensor.js";

/** One input of a strided loop: its elements, its stride per axis (0 to broadcast), its first element. */
export interface StridedOperand {
  data: DataArray;
  strides: readonly number[];
  offset: number;
}

/**
 * How a program reads one of its inputs, element by element in the program's row-major order:
 * with strides over the program's shape (broadcasts and views such as slices), or as rows
 * gathered through a table of row offsets (a lazy `gatherNd`).
 */
type ProgramInput = (
  | { readonly kind: "strided"; readonly strides: readonly number[]; readonly offset: number }
  | {
      readonly kind: "rows";
      readonly rowOffsets: Int32Array;
      readonly width: number;
      readonly colStride: number;
    }
) & {
  readonly tensor: Tensor;
  /** The tensor's version when the program was made: a later in-place write must not be read. */
  readonly version: number;
};

/** A fused elementwise computation over inputs `v0 … vk`, steps `t0 … tm`, over `shape`. */
interface Program {
  readonly shape: Shape;
  readonly inputs: readonly ProgramInput[];
  readonly steps: readonly string[];
  /** The name holding the result: a step `tN` or an input `vN`. */
  readonly result: string;
  /** Whether a step calls a transcendental function (log, exp, …). */
  readonly heavy: boolean;
}

const fusion = {
  enabled: true,
  /** Below this many elements ops run at once: fusion pays off only on large tensors. */
  minSize: 1 << 14,
  /**
   * Whether transcendental steps are recomputed in each consumer rather than stored. On machines
   * where fresh memory is expensive (a first touch of a new page costs more than a logarithm, as
   * on the VMs this project is benchmarked on), recomputing wins.
   */
  recompute: true,
  maxInputs: 16,
  maxSteps: 64,
};

/**
 * @internal Tunes lazy fusion (tests force it on small tensors; `enabled: false` evaluates every
 * op at once). Returns the previous settings.
 */
export function configureFusion(
  settings: Partial<{ enabled: boolean; minSize: number; recompute: boolean }>,
): {
  enabled: boolean;
  minSize: number;
  recompute: boolean;
} {
  const before = { enabled: fusion.enabled, minSize: fusion.minSize, recompute: fusion.recompute };
  Object.assign(fusion, settings);
  return before;
}

const programs = new WeakMap<Tensor, Program>();

const heavyCall = /Math\.(log|log1p|exp|expm1|pow|sqrt|tanh|sin|cos|atan)/;
const operandLetter = /(?<![\w.$])([a-e])(?![\w$])/g;
const stepName = /\b([vt])(\d+)\b/g;

type Mode = "store" | "sum" | "scatter";
type Kernel = (
  out: DataArray | null,
  n: number,
  shape: Int32Array,
  rank: number,
  ...args: unknown[]
) => number;
const kernels = new Map<string, Kernel>();

/**
 * The loop for a program. Strided inputs advance by their innermost stride and an odometer over the
 * outer axes; row inputs follow the element order through their row-offset table. The result is
 * stored in `out` (`store`), summed in double precision and returned (`sum`), or added into `out` at
 * rows given by a row-offset table (`scatter`, the adjoint of a gather).
 */
function compile(program: Program, outType: string, mode: Mode): Kernel {
  const constant = (input: ProgramInput) => input.kind === "strided" && input.tensor.size === 1;
  const layout = program.inputs
    .map((input) => `${constant(input) ? "k" : input.kind[0]}${input.tensor.dtype}`)
    .join(",");
  const key = `${mode}:${outType}|${layout}|${program.steps.join("")}|${program.result}`;
  const cached = kernels.get(key);
  if (cached !== undefined) return cached;
  const lines = (f: (input: ProgramInput, i: number) => string) =>
    program.inputs.map((input, i) => f(input, i)).join("\n");
  // Scalars are read once; strided inputs step through memory; row inputs follow their offsets.
  const prologue = lines((input, i) =>
    constant(input)
      ? `const v${i} = d${i}[o${i}];`
      : input.kind === "strided"
        ? `const st${i} = s${i}[rank - 1]; let base${i} = o${i};`
        : `let r${i} = 0, c${i} = 0; const nr${i} = ro${i}.length; let p${i} = nr${i} > 0 ? ro${i}[0] : 0;`,
  );
  const streamed = (input: ProgramInput) => input.kind === "strided" && !constant(input);
  const rowStart = lines((input, i) => (streamed(input) ? `let i${i} = base${i};` : ""));
  const load = lines((input, i) =>
    constant(input)
      ? ""
      : input.kind === "strided"
        ? `const v${i} = d${i}[i${i}]; i${i} += st${i};`
        : `const v${i} = d${i}[p${i}]; p${i} += cs${i}; if (++c${i} === w${i}) { c${i} = 0; p${i} = ++r${i} < nr${i} ? ro${i}[r${i}] : 0; }`,
  );
  const advance = lines((input, i) => (streamed(input) ? `base${i} += s${i}[d];` : ""));
  const rewind = lines((input, i) => (streamed(input) ? `base${i} -= s${i}[d] * shape[d];` : ""));
  const write =
    mode === "store"
      ? `out[o++] = ${program.result};`
      : mode === "sum"
        ? `acc += ${program.result}; o++;`
        : `out[op] += ${program.result}; op++; o++; if (++oc === ow) { oc = 0; op = ++orr < onr ? oro[orr] : 0; }`;
  const source = `
    const inner = shape[rank - 1];
    ${prologue}
    let orr = 0, oc = 0; const onr = oro === null ? 0 : oro.length; let op = onr > 0 ? oro[0] : 0;
    const index = new Int32Array(rank);
    let o = 0;
    let acc = 0;
    while (o < n) {
      ${rowStart}
      for (let j = 0; j < inner; j++) {
        ${load}
        ${program.steps.join("\n        ")}
        ${write}
      }
      for (let d = rank - 2; d >= 0; d--) {
        ${advance}
        if (++index[d] < shape[d]) break;
        index[d] = 0;
        ${rewind}
      }
    }
    return acc;`;
  const params = [
    "out",
    "n",
    "shape",
    "rank",
    "oro",
    "ow",
    ...program.inputs.flatMap((input, i) =>
      input.kind === "strided"
        ? [`d${i}`, `s${i}`, `o${i}`]
        : [`d${i}`, `ro${i}`, `w${i}`, `cs${i}`],
    ),
  ];
  const kernel = new Function(...params, source) as Kernel;
  kernels.set(key, kernel);
  return kernel;
}

/**
 * Drops size-1 axes and merges neighbours that every strided input reads contiguously, so that the
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

/** Runs `program` with `kernel`; `target` is the output array (store, scatter) or null (sum). */
function run(
  kernel: Kernel,
  program: Pick<Program, "inputs" | "shape">,
  out: DataArray | null,
  scatterRows: Int32Array | null = null,
  scatterWidth = 0,
): number {
  const n = sizeOf(program.shape);
  if (n === 0) return 0;
  const strided = program.inputs.filter((input) => input.kind === "strided");
  const c = coalesce(
    program.shape,
    strided.map((input) => input.strides),
  );
  const args: unknown[] = [];
  let k = 0;
  for (const input of program.inputs) {
    if (input.tensor.version !== input.version) {
      throw new Error(
        "a lazily computed result reads a tensor that was modified in place after the result was made " +
          "(an optimiser step?); read the result (e.g. its .data) before modifying what it was computed from",
      );
    }
    if (input.kind === "strided") args.push(input.tensor.data, c.strides[k++], input.offset);
    else args.push(input.tensor.data, input.rowOffsets, input.width, input.colStride);
  }
  return kernel(out, n, c.shape, c.shape.length, scatterRows, scatterWidth, ...args);
}

function broadcastInput(t: Tensor, shape: Shape): ProgramInput {
  return {
    kind: "strided",
    tensor: t,
    version: t.version,
    strides: broadcastStrides(t.shape, shape),
    offset: 0,
  };
}

/** Accumulates a program: inputs deduplicated, pending operands of the output's shape inlined. */
class ProgramBuilder {
  readonly inputs: ProgramInput[] = [];
  readonly steps: string[] = [];
  heavy = false;
  private readonly inputNames = new Map<ProgramInput | Tensor, string>();
  private readonly inlined = new Map<Tensor, string>();

  constructor(private readonly shape: Shape) {}

  /** The name of an input; the same tensor broadcast the same way, or the same record, is read once. */
  private input(input: ProgramInput, key: ProgramInput | Tensor = input): string {
    let name = this.inputNames.get(key);
    if (name === undefined) {
      name = `v${this.inputs.length}`;
      this.inputs.push(input);
      this.inputNames.set(key, name);
    }
    return name;
  }

  /** The name under which `t`'s value is available inside the loop. */
  operand(t: Tensor, fuse: boolean): string {
    const program = fuse && t.isPending ? programs.get(t) : undefined;
    const fits =
      program !== undefined &&
      (fusion.recompute || !program.heavy) &&
      shapesEqual(t.shape, this.shape) &&
      this.steps.length + program.steps.length <= fusion.maxSteps &&
      this.inputs.length + program.inputs.length <= fusion.maxInputs;
    if (!fits) {
      const broadcastKey = shapesEqual(t.shape, this.shape) ? t : undefined;
      return this.input(broadcastInput(t, this.shape), broadcastKey);
    }
    const known = this.inlined.get(t);
    if (known !== undefined) return known;
    const rename = new Map<string, string>();
    program.inputs.forEach((input, i) => {
      const plain =
        input.kind === "strided" &&
        input.offset === 0 &&
        shapesEqual(input.tensor.shape, this.shape);
      rename.set(`v${i}`, this.input(input, plain ? input.tensor : input));
    });
    const offset = this.steps.length;
    program.steps.forEach((_, i) => {
      rename.set(`t${i}`, `t${offset + i}`);
    });
    for (const step of program.steps)
      this.steps.push(step.replace(stepName, (m) => rename.get(m) ?? m));
    if (program.heavy) this.heavy = true;
    const name = rename.get(program.result) ?? program.result;
    this.inlined.set(t, name);
    return name;
  }

  /** Reads `input` directly (a view or gathered rows of a concrete tensor). */
  raw(input: ProgramInput): string {
    return this.input(input);
  }

  /**
   * Appends the op's own step, rounding to its dtype as a store into its typed array would. A plain
   * copy of an operand of the same dtype adds no step: the result is the operand's name.
   */
  op(
    expr: string,
    names: readonly string[],
    dtype: DType,
    operandDtypes: readonly DType[] = [],
  ): string {
    if (expr === "a" && operandDtypes[0] === dtype) return names[0];
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

  program(result: string): Program {
    return { shape: this.shape, inputs: this.inputs, steps: this.steps, result, heavy: this.heavy };
  }
}

/** A pending tensor that computes `program` when first read. */
function pendingTensor(program: Program, dtype: DType): Tensor {
  const t = new Tensor(null, program.shape, dtype, () => {
    programs.delete(t);
    const out = allocate(dtype, sizeOf(program.shape));
    run(compile(program, dtype, "store"), program, out);
    return out;
  });
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
  const inputs = operands.map((t) => broadcastInput(t, shape));
  let kernel = singleOps.get(key);
  if (kernel === undefined) {
    const builder = new ProgramBuilder(shape);
    const result = builder.op(
      expr,
      operands.map((_, i) => `v${i}`),
      dtype,
    );
    kernel = compile({ ...builder.program(result), inputs }, dtype, "store");
    singleOps.set(key, kernel);
  }
  const out = allocate(dtype, n);
  run(kernel, { inputs, shape }, out);
  return new Tensor(out, shape, dtype);
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
  if (!fuses(n)) return eager(expr, operands, shape, dtype, n);
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
  return run(compile(program, x.dtype, "sum"), program, null);
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
  const name = builder.raw({ kind: "strided", tensor: x, version: x.version, strides, offset });
  return pendingTensor(builder.program(builder.op("a", [name], x.dtype, [x.dtype])), x.dtype);
}

/**
 * A lazy gather of rows: element (r, j) of the result is `x[rowOffsets[r] + j]`, for rows of
 * `width` contiguous elements of `x` (gatherNd). A gather from a pending view (a slice) reads the
 * viewed tensor directly. `null` when too small to fuse.
 */
export function lazyGatherRows(
  x: Tensor,
  rowOffsets: Int32Array,
  width: number,
  shape: Shape,
): Tensor | null {
  if (!fuses(sizeOf(shape))) return null;
  const builder = new ProgramBuilder(shape);
  let input: ProgramInput = {
    kind: "rows",
    tensor: x,
    version: x.version,
    rowOffsets,
    width,
    colStride: 1,
  };
  const view = x.isPending ? programs.get(x) : undefined;
  if (
    view !== undefined &&
    view.inputs.length === 1 &&
    view.steps.length === 0 &&
    view.inputs[0].kind === "strided"
  ) {
    const source = view.inputs[0];
    // Offsets in x are row-major over x.shape; map them through the view's strides when each
    // gathered row is one run of equally spaced elements of the source.
    const xStrides = stridesOf(x.shape);
    const tail = trailingRun(x.shape, source.strides, width);
    if (tail !== null) {
      const mapped = new Int32Array(rowOffsets.length);
      for (let r = 0; r < rowOffsets.length; r++) {
        let rest = rowOffsets[r];
        let at = source.offset;
        for (let d = 0; d < x.shape.length; d++) {
          const i = Math.floor(rest / xStrides[d]);
          rest -= i * xStrides[d];
          at += i * source.strides[d];
        }
        mapped[r] = at;
      }
      input = {
        kind: "rows",
        tensor: source.tensor,
        version: source.version,
        rowOffsets: mapped,
        width,
        colStride: tail,
      };
    }
  }
  const name = builder.raw(input);
  return pendingTensor(builder.program(builder.op("a", [name], x.dtype, [x.dtype])), x.dtype);
}

/** The single stride with which the last `width` elements (row-major) of a view are spaced, if any. */
function trailingRun(shape: Shape, strides: readonly number[], width: number): number | null {
  let covered = 1;
  let step: number | null = null;
  for (let d = shape.length - 1; d >= 0 && covered < width; d--) {
    if (shape[d] === 1) continue;
    if (step === null) step = strides[d];
    else if (strides[d] !== step * covered) return null;
    covered *= shape[d];
  }
  if (covered !== width) return width === 1 ? 1 : null;
  return step ?? 1;
}

/**
 * Adds pending `updates` into `dest` at rows `rowOffsets` of `width` elements, running the updates'
 * program inside the scatter loop; `false` (nothing done) when `updates` is not pending.
 */
export function scatterPendingRows(
  updates: Tensor,
  rowOffsets: Int32Array,
  width: number,
  dest: DataArray,
): boolean {
  const program = updates.isPending ? programs.get(updates) : undefined;
  if (program === undefined || width === 0) return false;
  run(compile(program, updates.dtype, "scatter"), program, dest, rowOffsets, width);
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
  const step = `const t0 = ${expr.replace(operandLetter, (_, letter: string) => names[letter.charCodeAt(0) - 97])};`;
  const inputs: ProgramInput[] = operands.map((o) => ({
    kind: "strided",
    tensor: new Tensor(o.data, [o.data.length], dtypeOfArray(o.data) ?? "float32"),
    version: 0,
    strides: o.strides,
    offset: o.offset,
  }));
  const program: Program = { shape, inputs, steps: [step], result: "t0", heavy: false };
  run(compile(program, out.constructor.name, "store"), program, out);
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
