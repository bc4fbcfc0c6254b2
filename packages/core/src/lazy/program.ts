/**
 * Fused elementwise programs: what a pending result computes (an IR expression over captured
 * inputs), the settings of lazy fusion, and the builder that inlines pending operands and rounds
 * each op's result to its dtype.
 */

import type { DataArray, DType } from "../dtype.js";
import { type Expr, input, ir, isComparison, substitute, topological } from "../kernels/ir.js";
import { javascriptChunk } from "../kernels/javascript.js";
import type { InputAccess, Renderer } from "../kernels/kernel.js";
import { broadcastStrides, type Shape, shapesEqual } from "../shape.js";
import type { Tensor } from "../tensor.js";

/**
 * One input of a program: how the kernel reads it (`access`), the tensor, and the array read,
 * captured when the program was made (see `Tensor.capture`): a later write into the tensor goes to
 * a fresh copy, so the program reads the values it was made from. `data` is `null` for a tensor
 * still pending then: the program reads its result.
 */
export interface ProgramInput {
  readonly access: InputAccess;
  readonly tensor: Tensor;
  readonly data: DataArray | null;
}

/** The array a program reads for `input` (see `ProgramInput.data`). */
export function inputArray(input: ProgramInput): DataArray {
  return input.data ?? input.tensor.captured();
}

/**
 * A fused elementwise computation over `shape`: `value` is an IR expression over `input(k)`, k
 * indexing `inputs`; `steps` counts the ops fused into it (a bound on the size of its loop).
 */
export interface Program {
  readonly shape: Shape;
  readonly inputs: readonly ProgramInput[];
  readonly value: Expr;
  readonly steps: number;
}

/** An op's elementwise expression over its operands' values (see `elementwise`). */
export type Template = (...operands: Expr[]) => Expr;

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
  /** The renderer that runs the kernels; null: the current backend's (`DenseBackend.renderer`). */
  renderer: null as Renderer | null,
  maxInputs: 16,
  maxSteps: 64,
};

/** @internal The settings `configureFusion` changes (see `fusion`; `chunk`: elements per call of a JavaScript loop). */
export interface FusionSettings {
  enabled: boolean;
  minSize: number;
  recompute: boolean;
  exact: boolean;
  chunk: number;
  renderer: Renderer | null;
}

/**
 * @internal Tunes lazy fusion (tests force it on small tensors; `enabled: false` evaluates every
 * op at once). Returns the previous settings.
 */
export function configureFusion(settings: Partial<FusionSettings>): FusionSettings {
  const before: FusionSettings = {
    enabled: fusion.enabled,
    minSize: fusion.minSize,
    recompute: fusion.recompute,
    exact: fusion.exact,
    chunk: javascriptChunk.size,
    renderer: fusion.renderer,
  };
  const { chunk, ...rest } = settings;
  Object.assign(fusion, rest);
  if (chunk !== undefined) javascriptChunk.size = chunk;
  return before;
}

/** How a loop over `shape` reads `t` with `strides` from `offset`: one element read once for a scalar. */
export function accessOf(t: Tensor, strides: readonly number[], offset: number): InputAccess {
  return t.size === 1
    ? { kind: "scalar", dtype: t.dtype, offset }
    : { kind: "strided", dtype: t.dtype, strides, offset };
}

/** How a loop over `shape` reads `t` broadcast; `now` for a loop that runs at once (nothing to capture). */
export function broadcastInput(t: Tensor, shape: Shape, now = false): ProgramInput {
  return {
    access: accessOf(t, broadcastStrides(t.shape, shape), 0),
    tensor: t,
    data: now ? t.read() : t.capture(),
  };
}

/** Whether two program inputs read the same elements of the same array in the same way. */
function sameInput(a: ProgramInput, b: ProgramInput): boolean {
  if (a === b) return true;
  if (a.tensor !== b.tensor || a.data !== b.data) return false;
  const [x, y] = [a.access, b.access];
  if (x.kind === "scalar" && y.kind === "scalar") return x.offset === y.offset;
  if (x.kind === "strided" && y.kind === "strided") {
    return x.offset === y.offset && x.strides.every((s, d) => s === y.strides[d]);
  }
  if (x.kind === "rows" && y.kind === "rows") {
    return (
      x.rows.index === y.rows.index &&
      x.rows.scale === y.rows.scale &&
      x.rows.start === y.rows.start &&
      x.width === y.width &&
      x.colStride === y.colStride
    );
  }
  return false;
}

/** The operands (by position) that `template` compares directly: their exact values decide. */
function comparedOperands(template: Template, operands: readonly Expr[]): Set<number> {
  const holes = operands.map((x, k) => input(k, x.dtype));
  const compared = new Set<number>();
  for (const x of topological([template(...holes)])) {
    if (!isComparison(x)) continue;
    for (const a of x.args) if (holes.includes(a)) compared.add(a.attr);
  }
  return compared;
}

/**
 * The op's result `body` (over `operands`) rounded to `dtype`, as a store into its typed array
 * would: float32 only in exact mode or from float64 (see `fusion.exact`), int32 wrapped. An op that
 * returns one of its operands unchanged (a copy) adds nothing.
 */
export function rounded(body: Expr, operands: readonly Expr[], dtype: DType, exact: boolean): Expr {
  if (body.dtype === dtype && operands.includes(body)) return body;
  if (dtype === "bool") return body;
  if (dtype !== "float32" || body.dtype !== "float32") return ir.convert(body, dtype);
  return exact || operands.some((x) => x.dtype === "float64") ? ir.convert(body, dtype) : body;
}

/**
 * Applies an op's `template` to `operands` inside a program: unrounded float32 operands (see
 * `fusion.exact`) are rounded where their exact value matters, when the op compares them and when
 * its result is not float32 (a conversion, a mask, an integer); the result is `rounded`.
 */
export function applyTemplate(template: Template, operands: readonly Expr[], dtype: DType): Expr {
  let args = operands;
  if (!fusion.exact && operands.some((x) => x.dtype === "float32")) {
    const compared = comparedOperands(template, operands);
    args = operands.map((x, k) =>
      x.dtype === "float32" && (dtype !== "float32" || compared.has(k))
        ? ir.convert(x, "float32")
        : x,
    );
  }
  return rounded(template(...args), args, dtype, fusion.exact);
}

/**
 * Accumulates a program: inputs deduplicated, pending operands of the output's shape inlined (their
 * expressions moved onto this program's inputs, where hash-consing makes a subexpression they
 * share one node), so that a chain and its gradient, fused into one loop, share their logarithms.
 */
export class ProgramBuilder {
  readonly inputs: ProgramInput[] = [];
  steps = 0;
  /** The node that reads each input: its own, or that of an equal constant read before. */
  private readonly leaves: Expr[] = [];
  private readonly constants = new Map<string, Expr>();
  private readonly inlined = new Map<Tensor, Expr>();

  constructor(readonly shape: Shape) {}

  /** The node of an input; an input read the same way before, or an equal constant, is read once. */
  private input(added: ProgramInput): Expr {
    for (let i = 0; i < this.inputs.length; i++) {
      if (sameInput(this.inputs[i], added)) return this.leaves[i];
    }
    const { access } = added;
    let key: string | null = null;
    if (access.kind === "scalar" && added.data !== null) {
      const value = added.data[access.offset];
      key = `${access.dtype}:${Object.is(value, -0) ? "-0" : value}`;
      const known = this.constants.get(key);
      if (known !== undefined) return known;
    }
    const leaf = input(this.inputs.length, access.dtype);
    this.inputs.push(added);
    this.leaves.push(leaf);
    if (key !== null) this.constants.set(key, leaf);
    return leaf;
  }

  /** Moves `program`'s expression onto this program's inputs; returns it. */
  inline(program: Program): Expr {
    this.steps += program.steps;
    const leaves = program.inputs.map((input) => this.input(input));
    // Inputs that keep their numbers (the first operand of a new program): nothing to rebuild.
    if (leaves.every((leaf, k) => leaf.attr === k)) return program.value;
    return substitute(program.value, (x) => (x.op === "input" ? leaves[x.attr] : x));
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
      this.steps + program.steps <= fusion.maxSteps * scale &&
      this.inputs.length + added <= fusion.maxInputs * scale
    );
  }

  /** The node of `t`'s value inside the loop: its program inlined when `program` is given and fits. */
  operand(t: Tensor, program: Program | undefined): Expr {
    const fits =
      program !== undefined &&
      (fusion.recompute || !program.value.heavy) &&
      shapesEqual(t.shape, this.shape) &&
      this.fits(program);
    if (!fits) return this.input(broadcastInput(t, this.shape));
    let known = this.inlined.get(t);
    if (known === undefined) {
      known = this.inline(program);
      this.inlined.set(t, known);
    }
    return known;
  }

  /** Reads `input` directly (a view or gathered rows of a concrete tensor). */
  direct(input: ProgramInput): Expr {
    return this.input(input);
  }

  /** Applies an op (see `applyTemplate`) as one more step. */
  op(template: Template, operands: readonly Expr[], dtype: DType): Expr {
    this.steps++;
    return applyTemplate(template, operands, dtype);
  }

  program(value: Expr): Program {
    return { shape: this.shape, inputs: this.inputs, value, steps: this.steps };
  }
}
