/**
 * Fused elementwise programs: what a pending result computes (steps over inputs), the settings of
 * lazy fusion, and the builder that inlines pending operands, value-numbers steps and rounds them.
 */

import type { DataArray, DType } from "../dtype.js";
import { broadcastStrides, type Shape, shapesEqual } from "../shape.js";
import type { Tensor } from "../tensor.js";

/**
 * Where the rows of a gather start: row `r` at `start + index[r] · scale`. A table of offsets has
 * scale 1 and start 0; `argwhere`'s flat positions serve as a table for any row-major layout.
 */
export interface RowStarts {
  readonly index: Int32Array;
  readonly scale: number;
  readonly start: number;
}

/**
 * How a program reads one of its inputs, element by element in the program's row-major order:
 * with strides over the program's shape (broadcasts and views such as slices), or as rows
 * gathered through a table of row offsets (a lazy `gatherNd`).
 */
export type ProgramInput = (
  | { readonly kind: "strided"; readonly strides: readonly number[]; readonly offset: number }
  | {
      readonly kind: "rows";
      readonly rows: RowStarts;
      readonly width: number;
      readonly colStride: number;
    }
) & {
  readonly tensor: Tensor;
  /**
   * The array the program reads, captured when it was made (see `Tensor.capture`): a later write
   * into the tensor goes to a fresh copy, so the program reads the values it was made from. `null`
   * for a tensor still pending then: the program reads its result.
   */
  readonly data: DataArray | null;
};

/** The array a program reads for `input` (see `ProgramInput.data`). */
export function inputArray(input: ProgramInput): DataArray {
  return input.data ?? input.tensor.captured();
}

/**
 * A fused elementwise computation over `shape`: inputs `v0 … vk`, then steps, where step `i` is the
 * expression that defines `ti` from inputs and earlier steps.
 */
export interface Program {
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

export const fusion = {
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
   * for bit those of op-by-op evaluation (the default: laziness must not be observable, and an
   * intermediate that overflows or underflows float32 op by op must do so fused too, or
   * `log(square(3e38))` would be ∞ on small tensors and 176.9 on large ones). With `false` a fused
   * chain holds its float32 intermediates in double precision, as a hand-written loop would, and
   * rounds them where a float32 value is observed (stored, scattered, summed, compared, converted):
   * about 15 % faster on the focal loss, and observable at the edges of the float32 range.
   */
  exact: true,
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
export const programs = new WeakMap<Tensor, Program>();

export const heavyCall = /Math\.(log|log1p|exp|expm1|pow|sqrt|tanh|sin|cos|atan)/;
export const operandLetter = /(?<![\w.$])([a-e])(?![\w$])/g;
export const stepName = /\b([vt])(\d+)\b/g;

/** Whether `name` is a step whose float32 value is not yet rounded (`raw`: a program's flags). */
export function isRaw(raw: readonly boolean[], name: string): boolean {
  return name.startsWith("t") && raw[Number(name.slice(1))] === true;
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
export function isConstant(
  input: ProgramInput,
): input is ProgramInput & { readonly kind: "strided"; readonly offset: number } {
  return input.kind === "strided" && input.tensor.size === 1;
}

/** How a loop over `shape` reads `t`; `now` for a loop that runs at once (nothing to capture). */
export function broadcastInput(t: Tensor, shape: Shape, now = false): ProgramInput {
  return {
    kind: "strided",
    tensor: t,
    data: now ? t.read() : t.capture(),
    strides: broadcastStrides(t.shape, shape),
    offset: 0,
  };
}

/** Whether two program inputs read the same elements of the same tensor in the same way. */
function sameInput(a: ProgramInput, b: ProgramInput): boolean {
  if (a === b) return true;
  if (a.tensor !== b.tensor || a.data !== b.data) return false;
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
export class ProgramBuilder {
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
    if (isConstant(input) && input.data !== null) {
      // Kept as an input, but named as the equal constant before it.
      const value = input.data[input.offset];
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
      isRaw(this.raw, name) && (dtype !== "float32" || compared.has(k))
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
