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
 * compute each logarithm once. A fused float32 chain holds its intermediates in double precision
 * and rounds where a float32 value is observed (see `fusion.exact`); float64 chains are bit for bit
 * those of op-by-op evaluation.
 *
 * A differentiated full sum of a pending tensor waits for the backward pass, which computes it in
 * the same loop as the gradient (see `deferredSum` and `whileDifferentiating`).
 */

import { allocate, type DataArray, type DType, dtypeOfArray } from "../dtype.js";
import { broadcastStrides, type Shape, shapesEqual, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";

/**
 * Where the rows of a gather start: row `r` at `start + index[r] · scale`. A table of offsets has
 * scale 1 and start 0; `argwhere`'s flat positions serve as a table for any row-major layout.
 */
export interface RowStarts {
  readonly index: Int32Array;
  readonly scale: number;
  readonly start: number;
}

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
      readonly rows: RowStarts;
      readonly width: number;
      readonly colStride: number;
    }
) & {
  readonly tensor: Tensor;
  /** The tensor's version when the program was made: a later in-place write must not be read. */
  readonly version: number;
};

/**
 * A fused elementwise computation over `shape`: inputs `v0 … vk`, then steps, where step `i` is the
 * expression that defines `ti` from inputs and earlier steps.
 */
interface Program {
  readonly shape: Shape;
  readonly inputs: readonly ProgramInput[];
  readonly steps: readonly string[];
  /** The name holding the result: a step `tN` or an input `vN`. */
  readonly result: string;
  /** Further results summed over the whole loop (reductions computed alongside the main result). */
  readonly sums: readonly string[];
  /** Per step: whether it holds a float32 value not yet rounded to float32 (see `fusion.exact`). */
  readonly raw: readonly boolean[];
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
  /**
   * Whether every float32 step of a fused program rounds to float32, so that fused results are bit
   * for bit those of op-by-op evaluation. By default (false) a fused chain holds its float32
   * intermediates in double precision, as the hand-written loop it replaces would, and rounds them
   * where a float32 value is observed: when stored or scattered, when summed, when compared (so
   * that every decision is taken on the value op-by-op evaluation would see), and when converted
   * to another dtype: decisions are taken on float32 values, as in op-by-op evaluation. The
   * results are a float64 evaluation rounded once, at least as accurate as op-by-op evaluation, and
   * may differ from it in the last bits; `exact: true` restores op-by-op rounding, step by step.
   */
  exact: false,
  /** Elements per call of a compiled loop (see `launch`); tests make it tiny. */
  chunk: 1 << 13,
  maxInputs: 16,
  maxSteps: 64,
};

/** @internal The settings `configureFusion` changes (see `fusion`). */
export interface FusionSettings {
  enabled: boolean;
  minSize: number;
  recompute: boolean;
  exact: boolean;
  chunk: number;
}

/**
 * @internal Tunes lazy fusion (tests force it on small tensors; `enabled: false` evaluates every
 * op at once). Returns the previous settings.
 */
export function configureFusion(settings: Partial<FusionSettings>): FusionSettings {
  const before = {
    enabled: fusion.enabled,
    minSize: fusion.minSize,
    recompute: fusion.recompute,
    exact: fusion.exact,
    chunk: fusion.chunk,
  };
  Object.assign(fusion, settings);
  return before;
}

/** Pending elementwise results and the programs that compute them. */
const programs = new WeakMap<Tensor, Program>();
/** Pending full sums (scalars) and the programs whose results they add up. */
const reductions = new WeakMap<Tensor, Program>();

const heavyCall = /Math\.(log|log1p|exp|expm1|pow|sqrt|tanh|sin|cos|atan)/;
const operandLetter = /(?<![\w.$])([a-e])(?![\w$])/g;
const stepName = /\b([vt])(\d+)\b/g;

type Mode = "store" | "sum" | "scatter" | "place";
/**
 * A compiled loop over elements `from` to `to` (row-major over its loop shape `shape`); `state`
 * carries its sums ([result, ...program.sums]) from one call to the next. See `compile`, `launch`.
 */
type Kernel = (
  out: DataArray | null,
  shape: Int32Array,
  rank: number,
  rows: RowStarts | null,
  width: number,
  from: number,
  to: number,
  state: Float64Array,
  ...args: unknown[]
) => void;
const kernels = new Map<string, Kernel>();

/** Whether `name` is a step of `program` holding a float32 value not yet rounded. */
function isRaw(program: Program, name: string): boolean {
  return name.startsWith("t") && program.raw[Number(name.slice(1))] === true;
}

/** The operands (by index) that `expr` compares: their values decide, so they must be exact. */
const comparedCache = new Map<string, Set<number>>();
const comparison =
  /(?<![\w.$])([a-e])\s*(?:===|!==|<=|>=|<|>)|(?:===|!==|<=|>=|<|>)\s*([a-e])(?![\w$])/g;
function comparedOperands(expr: string): Set<number> {
  let known = comparedCache.get(expr);
  if (known === undefined) {
    known = new Set();
    for (const m of expr.matchAll(comparison)) known.add((m[1] ?? m[2]).charCodeAt(0) - 97);
    comparedCache.set(expr, known);
  }
  return known;
}

/** Whether an input is a single element read once (a scalar operand). */
function isConstant(input: ProgramInput): boolean {
  return input.kind === "strided" && input.tensor.size === 1;
}

/**
 * The loop for a program. The result is stored in `out` (`store`), summed in double precision and
 * returned (`sum`), or added into `out` at rows given by a row-offset table (`scatter`, the adjoint
 * of a gather), or stored there (`place`: disjoint rows of a zero buffer); each of `program.sums`
 * is summed too, into `sums`.
 *
 * Strided inputs advance by their innermost stride and an odometer over the outer axes. When the
 * row inputs (gathered rows) and the scattered output all have rows of the loop's innermost length
 * (`rowwise`), each inner loop is one row: row offsets are looked up once per row. Otherwise row
 * inputs follow the element order with a counter each.
 */
function compile(program: Program, outType: string, mode: Mode, rowwise: boolean): Kernel {
  const layout = program.inputs
    .map((input) => `${isConstant(input) ? "k" : input.kind[0]}${input.tensor.dtype}`)
    .join(",");
  const rawFlags = program.raw.map((r) => (r ? 1 : 0)).join("");
  const key = `${mode}:${outType}:${rowwise ? "r" : "e"}|${layout}|${program.steps.join(";")}|${rawFlags}|${program.result}|${program.sums.join(",")}`;
  const cached = kernels.get(key);
  if (cached !== undefined) return cached;
  const lines = (f: (input: ProgramInput, i: number) => string) =>
    program.inputs.map((input, i) => f(input, i)).join("\n");
  const streamed = (input: ProgramInput) => input.kind === "strided" && !isConstant(input);
  const rows = (input: ProgramInput) => input.kind === "rows";
  const scatters = mode === "scatter" || mode === "place";
  // The loop runs elements `from` to `to` (row-major over the loop shape), a row (one pass of the
  // innermost axis) or part of one at a time; what it carries from row to row is worked out from
  // `from` first. Scalars are read once; strided inputs step through memory; row inputs follow
  // their row starts.
  const prologue = lines((input, i) =>
    isConstant(input)
      ? `const v${i} = d${i}[o${i}];`
      : streamed(input)
        ? `const st${i} = s${i}[rank - 1]; let base${i} = o${i}; for (let d = 0; d < rank - 1; d++) base${i} += index[d] * s${i}[d];`
        : rowwise
          ? ""
          : `const nr${i} = ro${i}.length; let r${i} = Math.floor(o / w${i}), c${i} = o - r${i} * w${i}; let p${i} = r${i} < nr${i} ? rs${i} + ro${i}[r${i}] * ru${i} + c${i} * cs${i} : 0;`,
  );
  const rowStart = lines((input, i) =>
    streamed(input)
      ? `let i${i} = base${i} + j0 * st${i};`
      : rowwise && rows(input)
        ? `const p${i} = rs${i} + ro${i}[row] * ru${i};`
        : "",
  );
  const load = lines((input, i) =>
    isConstant(input)
      ? ""
      : streamed(input)
        ? `const v${i} = d${i}[i${i}]; i${i} += st${i};`
        : rowwise
          ? `const v${i} = d${i}[p${i} + j * cs${i}];`
          : `const v${i} = d${i}[p${i}]; p${i} += cs${i}; if (++c${i} === w${i}) { c${i} = 0; p${i} = ++r${i} < nr${i} ? rs${i} + ro${i}[r${i}] * ru${i} : 0; }`,
  );
  const advance = lines((input, i) => (streamed(input) ? `base${i} += s${i}[d];` : ""));
  const rewind = lines((input, i) => (streamed(input) ? `base${i} -= s${i}[d] * shape[d];` : ""));
  // A value added up is the float32 value the tensor would hold; a store rounds by itself.
  const rounded = (name: string) => (isRaw(program, name) ? `Math.fround(${name})` : name);
  const result = mode === "store" || mode === "place" ? program.result : rounded(program.result);
  const update = mode === "place" ? "=" : "+=";
  let write: string;
  if (mode === "store") write = `out[first + j] = ${result};`;
  else if (mode === "sum") write = `acc += ${result};`;
  else if (rowwise) write = `out[op + j] ${update} ${result};`;
  else
    write = `out[op] ${update} ${result}; op++; if (++oc === ow) { oc = 0; op = ++orr < onr ? os + oro[orr] * ou : 0; }`;
  const sums = program.sums;
  // A float32 store rounds as Math.fround does: the step that is only stored needs no rounding.
  const last = program.steps.length - 1;
  const steps = program.steps.map((step, i) =>
    i === last &&
    (mode === "store" || mode === "place") &&
    outType === "float32" &&
    program.result === `t${last}` &&
    !sums.includes(program.result) &&
    step.startsWith("Math.fround(")
      ? step.slice("Math.fround(".length, -1)
      : step,
  );
  const source = `
    const inner = shape[rank - 1];
    const index = new Int32Array(rank);
    let row = Math.floor(from / inner);
    let j0 = from - row * inner;
    for (let d = rank - 2, rest = row; d >= 0; d--) {
      index[d] = rest % shape[d];
      rest = (rest - index[d]) / shape[d];
    }
    let o = from;
    ${prologue}
    const onr = orows === null ? 0 : orows.index.length;
    const oro = orows === null ? null : orows.index, ou = orows === null ? 0 : orows.scale, os = orows === null ? 0 : orows.start;
    ${scatters && !rowwise ? "let orr = Math.floor(o / ow), oc = o - orr * ow; let op = orr < onr ? os + oro[orr] * ou + oc : 0;" : ""}
    let acc = state[0]${sums.map((_, k) => `, acc${k} = state[${k + 1}]`).join("")};
    while (o < to) {
      const j1 = Math.min(inner, j0 + (to - o));
      const first = o - j0;
      ${rowStart}
      ${rowwise && scatters ? "const op = os + oro[row] * ou;" : ""}
      for (let j = j0; j < j1; j++) {
        ${load}
        ${steps.map((step, i) => `const t${i} = ${step};`).join("\n        ")}
        ${write}
        ${sums.map((name, k) => `acc${k} += ${rounded(name)};`).join(" ")}
      }
      o += j1 - j0;
      j0 = 0;
      if (j1 < inner) break;
      row++;
      for (let d = rank - 2; d >= 0; d--) {
        ${advance}
        if (++index[d] < shape[d]) break;
        index[d] = 0;
        ${rewind}
      }
    }
    state[0] = acc;${sums.map((_, k) => ` state[${k + 1}] = acc${k};`).join("")}`;
  const params = [
    "out",
    "shape",
    "rank",
    "orows",
    "ow",
    "from",
    "to",
    "state",
    ...program.inputs.flatMap((input, i) =>
      input.kind === "strided"
        ? [`d${i}`, `s${i}`, `o${i}`]
        : [`d${i}`, `ro${i}`, `ru${i}`, `rs${i}`, `w${i}`, `cs${i}`],
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

/**
 * Runs `program` in `mode` (see `compile`): `out` is the output array (store, scatter) or null
 * (sum); a scatter adds row `r` of the result at row start `r` of `scatterRows` in `out`. The sums of
 * `program.sums` land in `sums`. Returns the sum of the result in `sum` mode.
 */
function run(
  program: Program,
  outType: string,
  mode: Mode,
  out: DataArray | null,
  scatterRows: RowStarts | null = null,
  scatterWidth = 0,
  sums: Float64Array | null = null,
): number {
  const plan = layout(program, mode === "scatter" || mode === "place" ? scatterWidth : 0);
  const kernel = compile(program, outType, mode, plan.rowwise);
  return launch(kernel, program, plan, out, scatterRows, scatterWidth, sums);
}

/** How a program's loop walks memory: its (coalesced) loop shape and each strided input's strides. */
interface Layout {
  readonly shape: Int32Array;
  readonly strides: readonly Int32Array[];
  readonly rowwise: boolean;
}

/**
 * The loop shape of `program`: axes coalesced, and the innermost one split at the rows' width when
 * every row input (and the scattered output, of `scatterWidth`) has rows of one width.
 */
function layout(program: Program, scatterWidth: number): Layout {
  const strided = program.inputs.filter((input) => input.kind === "strided");
  const c = coalesce(
    program.shape,
    strided.map((input) => input.strides),
  );
  let width = scatterWidth;
  let rowwise = true;
  for (const input of program.inputs) {
    if (input.kind !== "rows") continue;
    if (width === 0) width = input.width;
    else if (input.width !== width) rowwise = false;
  }
  const rank = c.shape.length;
  const last = c.shape[rank - 1];
  if (width === 0 || last % width !== 0)
    return { shape: c.shape, strides: c.strides, rowwise: false };
  if (!rowwise || last === width) return { shape: c.shape, strides: c.strides, rowwise };
  return {
    shape: Int32Array.from([...c.shape.subarray(0, rank - 1), last / width, width]),
    strides: c.strides.map((s) =>
      Int32Array.from([...s.subarray(0, rank - 1), s[rank - 1] * width, s[rank - 1]]),
    ),
    rowwise,
  };
}

/** Calls `kernel` on the program's inputs, after checking that none was modified in place since. */
function launch(
  kernel: Kernel,
  program: Pick<Program, "inputs" | "shape" | "sums">,
  plan: Layout,
  out: DataArray | null,
  scatterRows: RowStarts | null,
  scatterWidth: number,
  sums: Float64Array | null,
): number {
  const n = sizeOf(program.shape);
  if (n === 0) {
    sums?.fill(0);
    return 0;
  }
  const args: unknown[] = [];
  let k = 0;
  for (const input of program.inputs) {
    if (input.tensor.version !== input.version) {
      throw new Error(
        "a lazily computed result reads a tensor that was modified in place after the result was made " +
          "(an optimiser step?); read the result (e.g. its .data) before modifying what it was computed from",
      );
    }
    if (input.kind === "strided") args.push(input.tensor.data, plan.strides[k++], input.offset);
    else {
      const { index, scale, start } = input.rows;
      args.push(input.tensor.data, index, scale, start, input.width, input.colStride);
    }
  }
  // In chunks of elements: a loop that starts cold (its optimised code dropped by the garbage
  // collector, as happens between iterations of a training step) then runs its optimised code
  // after a few chunks, where one long call would stay in on-stack-replaced code, ~1.5 × slower.
  const { shape } = plan;
  const rank = shape.length;
  const step = Math.max(1, fusion.chunk);
  const state = new Float64Array(1 + program.sums.length);
  for (let from = 0; from < n; from += step) {
    const to = Math.min(n, from + step);
    kernel(out, shape, rank, scatterRows, scatterWidth, from, to, state, ...args);
  }
  sums?.set(state.subarray(1));
  return state[0];
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

/** Whether two program inputs read the same elements of the same tensor in the same way. */
function sameInput(a: ProgramInput, b: ProgramInput): boolean {
  if (a === b) return true;
  if (a.tensor !== b.tensor || a.version !== b.version) return false;
  if (a.kind === "strided" && b.kind === "strided") {
    return a.offset === b.offset && a.strides.every((s, d) => s === b.strides[d]);
  }
  if (a.kind === "rows" && b.kind === "rows") {
    return (
      a.rows.index === b.rows.index &&
      a.rows.scale === b.rows.scale &&
      a.rows.start === b.rows.start &&
      a.width === b.width &&
      a.colStride === b.colStride
    );
  }
  return false;
}

/**
 * Accumulates a program: inputs deduplicated, pending operands of the output's shape inlined, and
 * common subexpressions computed once (value numbering on the steps' text: two steps that read the
 * same inputs through the same expression are one step), so that a chain and its gradient, fused
 * into one loop, share their logarithms.
 */
class ProgramBuilder {
  readonly inputs: ProgramInput[] = [];
  readonly steps: string[] = [];
  readonly raw: boolean[] = [];
  heavy = false;
  /** The name under which each input is read: its own, or that of an equal constant. */
  private readonly inputNames: string[] = [];
  private readonly constants = new Map<string, string>();
  private readonly byExpression = new Map<string, string>();
  private readonly inlined = new Map<Tensor, string>();

  constructor(private readonly shape: Shape) {}

  /** The name of an input; an input read the same way before, or an equal constant, is read once. */
  private input(input: ProgramInput): string {
    for (let i = 0; i < this.inputs.length; i++) {
      if (sameInput(this.inputs[i], input)) return this.inputNames[i];
    }
    let name = `v${this.inputs.length}`;
    if (input.kind === "strided" && input.tensor.size === 1 && !input.tensor.isPending) {
      // Kept as an input (its version is still checked), but named as the equal constant before it.
      const value = input.tensor.data[input.offset];
      const key = `${input.tensor.dtype}:${Object.is(value, -0) ? "-0" : value}`;
      const known = this.constants.get(key);
      if (known === undefined) this.constants.set(key, name);
      else name = known;
    }
    this.inputs.push(input);
    this.inputNames.push(name);
    return name;
  }

  /**
   * Adds a step (an expression over known names), or finds the same one already there. `raw` marks
   * a float32 value held in double precision.
   */
  private step(expression: string, raw: boolean): string {
    const key = raw ? `raw:${expression}` : expression;
    const known = this.byExpression.get(key);
    if (known !== undefined) return known;
    const name = `t${this.steps.length}`;
    this.steps.push(expression);
    this.raw.push(raw);
    this.byExpression.set(key, name);
    return name;
  }

  private isRaw(name: string): boolean {
    return name.startsWith("t") && this.raw[Number(name.slice(1))];
  }

  /** Copies `program`'s inputs and steps in; returns the name of its result. */
  inline(program: Program): string {
    const rename = new Map<string, string>();
    program.inputs.forEach((input, i) => {
      rename.set(`v${i}`, this.input(input));
    });
    program.steps.forEach((step, i) => {
      const renamed = step.replace(stepName, (m) => rename.get(m) ?? m);
      rename.set(`t${i}`, this.step(renamed, program.raw[i]));
    });
    if (program.heavy) this.heavy = true;
    return rename.get(program.result) ?? program.result;
  }

  /**
   * Whether `program` can be copied in without exceeding the limits of one loop: inputs it shares
   * with this one do not count (constants and gathered rows usually are shared); its steps all do.
   */
  fits(program: Program, scale = 1): boolean {
    let added = 0;
    for (const input of program.inputs) {
      if (!this.inputs.some((known) => sameInput(known, input))) added++;
    }
    return (
      this.steps.length + program.steps.length <= fusion.maxSteps * scale &&
      this.inputs.length + added <= fusion.maxInputs * scale
    );
  }

  /** The name under which `t`'s value is available inside the loop. */
  operand(t: Tensor, fuse: boolean): string {
    const program = fuse && t.isPending ? programs.get(t) : undefined;
    const fits =
      program !== undefined &&
      (fusion.recompute || !program.heavy) &&
      shapesEqual(t.shape, this.shape) &&
      this.fits(program);
    if (!fits) return this.input(broadcastInput(t, this.shape));
    const known = this.inlined.get(t);
    if (known !== undefined) return known;
    const name = this.inline(program);
    this.inlined.set(t, name);
    return name;
  }

  /** Reads `input` directly (a view or gathered rows of a concrete tensor). */
  direct(input: ProgramInput): string {
    return this.input(input);
  }

  /**
   * Appends the op's own step, rounding to its dtype as a store into its typed array would (float32
   * only in exact mode or from float64; see `fusion.exact`). A plain copy of an operand of the same
   * dtype adds no step: the result is the operand's name.
   */
  op(
    expr: string,
    names: readonly string[],
    dtype: DType,
    operandDtypes: readonly DType[] = [],
  ): string {
    if (expr === "a" && operandDtypes[0] === dtype) return names[0];
    // Unrounded float32 operands are rounded where their exact float32 value matters: when the op
    // compares them, and when its result is not float32 (a conversion, a mask, an integer).
    const compared = comparedOperands(expr);
    const operands = names.map((name, k) =>
      this.isRaw(name) && (dtype !== "float32" || compared.has(k))
        ? this.step(`Math.fround(${name})`, false)
        : name,
    );
    const body = expr.replace(
      operandLetter,
      (_, letter: string) => operands[letter.charCodeAt(0) - 97],
    );
    if (heavyCall.test(expr)) this.heavy = true;
    if (dtype === "int32") return this.step(`((${body}) | 0)`, false);
    if (dtype !== "float32") return this.step(`(${body})`, false);
    if (fusion.exact || operandDtypes.includes("float64"))
      return this.step(`Math.fround(${body})`, false);
    return this.step(`(${body})`, true);
  }

  program(result: string, sums: readonly string[] = []): Program {
    return {
      shape: this.shape,
      inputs: this.inputs,
      steps: this.steps,
      raw: this.raw,
      result,
      sums,
      heavy: this.heavy,
    };
  }
}

/** A pending tensor that computes `program` when first read. */
function pendingTensor(program: Program, dtype: DType): Tensor {
  const t = new Tensor(null, program.shape, dtype, () => {
    programs.delete(t);
    const out = allocate(dtype, sizeOf(program.shape));
    execute(program, dtype, "store", out);
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
  const program: Program = {
    shape,
    inputs,
    steps: [],
    raw: [],
    result: "",
    sums: [],
    heavy: false,
  };
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
  launch(kernel, program, layout(program, 0), out, null, 0, null);
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
function scalarData(dtype: DType, value: number, size: number): DataArray {
  const data = allocate(dtype, size);
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
  const t = new Tensor(null, shape, dtype, () => {
    reductions.delete(t);
    return scalarData(dtype, execute(program, x.dtype, "sum", null), 1);
  });
  reductions.set(t, program);
  return t;
}

/** Pending sums that a loop over the same elements may compute alongside its own result. */
let partners: readonly Tensor[] = [];

/**
 * @internal Runs `fn` (a backward pass) with the pending sums among `tensors` (its graph) open to
 * being computed inside the pass's own loops, then computes those still pending, and every small
 * pending result among `tensors`, so that nothing of the graph is left to read values that an
 * optimiser step may change afterwards.
 */
export function whileDifferentiating<T>(tensors: readonly Tensor[], fn: () => T): T {
  const before = partners;
  partners = tensors.filter((t) => t.isPending && reductions.has(t));
  try {
    const result = fn();
    for (const t of tensors) if (t.isPending && (reductions.has(t) || t.size < 1 << 14)) t.data;
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
    if (other.inputs.some((input) => input.tensor.isPending || input.tensor.data === out)) continue;
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
    if (t.isPending) t.resolve(scalarData(t.dtype, sums[k], t.size));
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
  const name = builder.direct({ kind: "strided", tensor: x, version: x.version, strides, offset });
  return pendingTensor(builder.program(builder.op("a", [name], x.dtype, [x.dtype])), x.dtype);
}

/**
 * How a pending view (a lazy `slice`) reads the tensor it views: element `i` (a multi-index over
 * the view's shape) is `tensor.data[offset + Σ i[d] · strides[d]]`. `null` when `x` is not a pending
 * view, so that a gather from it can read the viewed tensor directly.
 */
export function viewOf(
  x: Tensor,
): { tensor: Tensor; strides: readonly number[]; offset: number } | null {
  const program = x.isPending ? programs.get(x) : undefined;
  if (program === undefined || program.steps.length !== 0 || program.inputs.length !== 1)
    return null;
  const input = program.inputs[0];
  if (input.kind !== "strided" || input.tensor.version !== input.version) return null;
  return { tensor: input.tensor, strides: input.strides, offset: input.offset };
}

/**
 * A lazy gather of rows (gatherNd): element (r, j) of the result, of `shape`, is
 * `x.data[start(r) + j · colStride]` for the row starts `rows`, rows of `width` elements. `null`
 * when too small to fuse.
 */
export function lazyGatherRows(
  x: Tensor,
  rows: RowStarts,
  width: number,
  colStride: number,
  shape: Shape,
): Tensor | null {
  if (!fuses(sizeOf(shape))) return null;
  const builder = new ProgramBuilder(shape);
  const name = builder.direct({
    kind: "rows",
    tensor: x,
    version: x.version,
    rows,
    width,
    colStride,
  });
  return pendingTensor(builder.program(builder.op("a", [name], x.dtype, [x.dtype])), x.dtype);
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
    version: 0,
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
