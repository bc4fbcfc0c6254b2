/** Argument checks, the reduction switch and the NaN-safe focusing factor shared by the losses and the targets. */

import {
  checkOptions,
  greater,
  isFloat,
  mean,
  pow,
  type Shape,
  sum,
  type Tensor,
  Tensor as TensorClass,
  where,
} from "@focalgrad/core";

/** How a per-element loss becomes the result: kept as it is, averaged, or summed. */
export type Reduction = "none" | "mean" | "sum";

const reductions: readonly Reduction[] = ["none", "mean", "sum"];

function shapeText(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** "an int32 tensor of shape [2, 3]", "a float64 tensor of shape []". */
export function describeTensor(t: Tensor): string {
  const article = t.dtype === "int32" ? "an" : "a";
  return `${article} ${t.dtype} tensor of shape ${shapeText(t.shape)}`;
}

export function checkTensorArg(op: string, name: string, value: unknown): asserts value is Tensor {
  if (!(value instanceof TensorClass)) {
    const what = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new Error(`${op}: ${name} must be a Tensor, got ${what}`);
  }
}

/** Predictions and logits are differentiated, so they must be floating point. */
export function checkFloatArg(op: string, name: string, value: unknown, what: string): Tensor {
  checkTensorArg(op, name, value);
  if (!isFloat(value.dtype)) {
    throw new Error(
      `${op}: ${name} must hold float32 or float64 ${what}, got ${describeTensor(value)} ` +
        `(cast it with cast(${name}, "float32"))`,
    );
  }
  return value;
}

/** Targets may be float or int32 (hard labels); bool is not arithmetic. */
export function checkNumericArg(op: string, name: string, value: unknown): Tensor {
  checkTensorArg(op, name, value);
  if (value.dtype === "bool") {
    throw new Error(
      `${op}: ${name} must be a float32, float64 or int32 tensor, got ${describeTensor(value)}`,
    );
  }
  return value;
}

export function checkRank(op: string, name: string, t: Tensor, rank: number, layout: string): void {
  if (t.rank !== rank) {
    throw new Error(
      `${op}: ${name} must have rank ${rank} (${layout}), got shape ${shapeText(t.shape)}`,
    );
  }
}

export function checkSameShape(op: string, a: [string, Tensor], b: [string, Tensor]): void {
  const [nameA, x] = a;
  const [nameB, y] = b;
  if (x.rank !== y.rank || x.shape.some((d, i) => d !== y.shape[i])) {
    throw new Error(
      `${op}: ${nameA} and ${nameB} must have the same shape, got ${shapeText(x.shape)} and ${shapeText(y.shape)}`,
    );
  }
}

/** `alpha` in [0, 1]; with `allowOff`, any negative value too (torchvision's "no weighting"). */
export function checkAlpha(op: string, alpha: unknown, allowOff = false): number {
  if (typeof alpha !== "number" || !(alpha <= 1) || (!allowOff && !(alpha >= 0))) {
    const expected = allowOff ? "a number <= 1 (negative turns the weighting off)" : "in [0, 1]";
    throw new Error(`${op}: alpha must be ${expected}, got ${String(alpha)}`);
  }
  return alpha;
}

/** A focusing exponent: finite and >= 0 (or > 0 where the formula divides by it). */
export function checkExponent(
  op: string,
  name: string,
  value: unknown,
  strictlyPositive = false,
): number {
  const ok =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (strictlyPositive ? value > 0 : value >= 0);
  if (!ok) {
    throw new Error(
      `${op}: ${name} must be a finite number ${strictlyPositive ? "> 0" : ">= 0"}, got ${String(value)}`,
    );
  }
  return value as number;
}

export function checkFinite(op: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new Error(`${op}: ${name} must be a finite number, got ${String(value)}`);
  }
  return value;
}

export function checkReduction(op: string, reduction: unknown): Reduction {
  if (!reductions.includes(reduction as Reduction)) {
    throw new Error(
      `${op}: reduction must be 'none', 'mean' or 'sum', got ${JSON.stringify(reduction)}`,
    );
  }
  return reduction as Reduction;
}

/** 'mean' averages over every element (torchvision's convention); the mean of nothing is NaN. */
export function reduceLoss(loss: Tensor, reduction: Reduction): Tensor {
  switch (reduction) {
    case "none":
      return loss;
    case "mean":
      return mean(loss);
    case "sum":
      return sum(loss);
    default:
      return reduction satisfies never;
  }
}

/** Checks, in one loop over its data, that every element of a targets tensor lies in [0, 1]. */
export function checkUnitInterval(op: string, name: string, t: Tensor): void {
  const data = t.read();
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= 0 && v <= 1)) {
      throw new Error(
        `${op}: ${name} must lie in [0, 1], got ${v} at flat index ${i} of shape ${shapeText(t.shape)}`,
      );
    }
  }
}

/**
 * Checks a loss's options object at run time (plain-JavaScript callers): an object with only the
 * given keys, or undefined. The values are checked by the loss itself (`checkAlpha`, …), which
 * says what each accepts.
 *
 * @example
 * checkLossOptions("focal", { alpha: 0.25 }, ["alpha", "gamma"]);
 */
export function checkLossOptions(
  op: string,
  options: object | undefined,
  keys: readonly string[],
): void {
  checkOptions(
    op,
    options as Record<string, unknown> | undefined,
    Object.fromEntries(keys.map((k) => [k, "any" as const])),
  );
}

/**
 * `base ** gamma` where a saturated logit has rounded `base` to exactly 0: there the gradient is
 * taken as 0, the limit of the true derivative in the logit (`d/dx sigmoid(-x)^gamma` tends to 0),
 * instead of the `0 * inf = NaN` that `pow` alone would give for 0 < gamma < 1. A base at or below
 * 0 (only ever a rounding artefact) counts as 0. Elsewhere this is exactly `pow`.
 */
export function focusingFactor(base: Tensor, gamma: number): Tensor {
  if (gamma === 0) return pow(base, 0);
  const positive = greater(base, 0);
  // "Double where": the unselected branch's input is made safe too, so no inf reaches the graph.
  return where(positive, pow(where(positive, base, 1), gamma), 0);
}

export const isPositiveFinite = (v: number): boolean => Number.isFinite(v) && v > 0;

/**
 * Every coordinate finite and, with `positiveSize`, x2 > x1 and y2 > y1, in one loop over the
 * data. The message names the first offending box by its row.
 */
export function checkBoxValues(
  op: string,
  name: string,
  boxes: Tensor,
  positiveSize: boolean,
): void {
  const data = boxes.read();
  for (let i = 0; i < data.length; i += 4) {
    const [x1, y1, x2, y2] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    const finite =
      Number.isFinite(x1) && Number.isFinite(y1) && Number.isFinite(x2) && Number.isFinite(y2);
    if (!finite || (positiveSize && !(x2 > x1 && y2 > y1))) {
      const expected = positiveSize ? "finite with x2 > x1 and y2 > y1" : "finite";
      throw new Error(
        `${op}: every box of ${name} must be ${expected}, got [${x1}, ${y1}, ${x2}, ${y2}] ` +
          `at row ${i / 4} (flat, of shape [${boxes.shape.join(", ")}])`,
      );
    }
  }
}
