/**
 * The tape: what an op records for the backward pass (its inputs, gradient rules and saved tensors)
 * and whether recording is on. Below the ops, so that ops record without importing the engine.
 */

import type { DataArray, DType } from "./dtype.js";
import type { Shape } from "./shape.js";
import type { Tensor } from "./tensor.js";

/**
 * Maps the gradient of an op's output to the gradient of one of its inputs; `null` for an input
 * that takes no gradient (indices, conditions). Written with the library's own ops, so that it can
 * itself be differentiated. The engine calls a rule only when its input needs a gradient, and it,
 * not the rule, sums the result back to the shape of a broadcast input.
 */
export type GradientRule = ((upstream: Tensor) => Tensor | ScatteredGradient) | null;

/**
 * The gradient of a gather: zero except where the gather read, kept as a scatter-add still to do
 * (TensorFlow's IndexedSlices). The engine adds every scattered contribution of a tensor into one
 * buffer, instead of materialising a zero tensor per gather and adding those up.
 */
export class ScatteredGradient {
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    /**
     * Adds the updates into `dest`, a buffer of `shape` and `dtype`; repeated indices accumulate.
     * `zero` says that `dest` is all zeros, so that updates to distinct elements may be stored.
     */
    readonly addInto: (dest: DataArray, zero: boolean) => void,
    /** The same gradient as a dense tensor, made by a differentiable op (for `createGraph`). */
    readonly densify: () => Tensor,
    /** How many updates there are: the engine scatters the largest first, into a zero buffer. */
    readonly updates = 0,
  ) {}
}

/** @internal A recorded op: its inputs and its gradient rule. */
export interface GraphNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** One rule per input; `null` once the graph has been released. */
  rules: readonly GradientRule[] | null;
  /** The tensors whose values the rules that will run read, and their versions when recorded. */
  readonly saved: readonly Tensor[];
  readonly versions: readonly number[];
  /**
   * What the forward computation depended on beyond the inputs' values and shapes (a convolution's
   * stride and padding, a permutation, an axis), for tools that read the graph back as a program,
   * such as an ONNX exporter. Absent where the inputs and the output's shape say everything.
   */
  readonly attributes?: OpAttributes;
}

/** The attributes of a recorded op: named numbers, flags and lists of numbers. */
export type OpAttributes = Readonly<Record<string, number | boolean | readonly number[]>>;

/** Whether ops are recorded: off inside `noGrad` and during a backward pass without `createGraph`. */
let recording = true;

/** Whether ops are recorded right now (false inside `noGrad` and in a plain backward pass). */
export function isGradEnabled(): boolean {
  return recording;
}

/** @internal Runs `fn` with recording switched on or off, restoring it afterwards. */
export function withRecording<T>(enabled: boolean, fn: () => T): T {
  const before = recording;
  recording = enabled;
  try {
    return fn();
  } finally {
    recording = before;
  }
}

/**
 * Runs `fn` without recording any op: nothing computed inside needs or gets a gradient.
 *
 * @example
 * const y = noGrad(() => mul(w, 2)); // y.requiresGrad === false
 */
export function noGrad<T>(fn: () => T): T {
  return withRecording(false, fn);
}

/**
 * @internal Attaches `rules` to `out` when recording is on and some input requires gradients.
 * Every differentiable op ends with this call, right beside its forward code. `needs[i]` lists
 * the tensors whose values rule `i` reads (not its upstream): backward refuses to run a rule whose
 * tensors were modified in place since (see `Tensor.markModified`). Without `needs`, every rule is
 * taken to read every input and the output. `attributes` keeps what the forward code used besides
 * its inputs (see `GraphNode.attributes`); the engine itself never reads them.
 */
export function record<T extends Tensor>(
  op: string,
  out: T,
  inputs: readonly Tensor[],
  rules: readonly GradientRule[],
  needs?: readonly (readonly Tensor[])[],
  attributes?: OpAttributes,
): T {
  if (!recording) return out;
  let saved: Tensor[] | null = null;
  for (let i = 0; i < inputs.length; i++) {
    if (!inputs[i].requiresGrad || rules[i] === null) continue;
    saved ??= [];
    for (const t of needs?.[i] ?? [...inputs, out]) if (!saved.includes(t)) saved.push(t);
  }
  if (saved === null) return out;
  const versions = saved.map((t) => t.version);
  out.node = { op, inputs, rules, saved, versions, ...(attributes && { attributes }) };
  out.requiresGrad = true;
  return out;
}

/** The op that made a tensor, as the recording saw it: what `recordedOp` returns. */
export interface RecordedOp {
  /** The op's name, as it records itself (`"conv2d"`, `"add"`, …). */
  readonly op: string;
  /** Its tensor inputs, in order (a plain-number operand appears as the scalar tensor it became). */
  readonly inputs: readonly Tensor[];
  /** What the forward code used besides the inputs (stride, padding, axes, permutation), if anything. */
  readonly attributes: OpAttributes;
}

/**
 * The recorded op that made `t`, or null for a leaf (a tensor made directly, or computed where
 * nothing required a gradient, or inside `noGrad`). Walking it from an output back to the inputs
 * reads a traced forward pass as a program, which is how an exporter (ONNX) sees a model.
 *
 * @example
 * const x = tensor([1, 2], { requiresGrad: true });
 * const y = mul(x, 3);
 * recordedOp(y)?.op;                  // "mul"
 * recordedOp(y)?.inputs[0] === x;     // true
 * recordedOp(x);                      // null
 */
export function recordedOp(t: Tensor): RecordedOp | null {
  const node = t.node;
  if (node === null) return null;
  return { op: node.op, inputs: node.inputs, attributes: node.attributes ?? {} };
}
