/** Multi-class losses on class indices, as PyTorch's `nll_loss` and `cross_entropy`. */

import { formatShape } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { add, div, mul, neg } from "./arithmetic.js";
import { tensor } from "./creation.js";
import { logSoftmax, sum } from "./reduce.js";
import { gather, gatherNd, scatterNd } from "./selection.js";
import { permute, reshape } from "./shape.js";
import { checkFloat, checkTensor } from "./util.js";

/** Options of `nllLoss`: class weights, the ignored target value and the reduction. */
export interface NllLossOptions {
  /** A weight per class, float `[C]`: a sample's loss is scaled by the weight of its class. */
  weight?: Tensor;
  /** Samples whose target is this value contribute nothing, not even to the mean's count. Default -100. */
  ignoreIndex?: number;
  /** `'mean'` (default: weighted by the classes' weights), `'sum'`, or `'none'` (shape of the target). */
  reduction?: "none" | "mean" | "sum";
}

/** Options of `crossEntropy`: those of `nllLoss`, and label smoothing. */
export interface CrossEntropyOptions extends NllLossOptions {
  /** Mixes the target with the uniform distribution over the C classes, in [0, 1]. Default 0. */
  labelSmoothing?: number;
}

/** The class axis moved last and every other axis folded into one: `[M, C]`, and targets `[M]`. */
interface Rows {
  scores: Tensor;
  targetShape: readonly number[];
  classes: number;
  /** Rows whose target is not ignored, and their classes. */
  kept: Int32Array;
  keptClasses: Int32Array;
  rows: number;
}

function rowsOf(op: string, input: Tensor, target: Tensor, ignoreIndex: number): Rows {
  checkFloat(op, "input", input);
  checkTensor(op, "target", target);
  if (input.rank < 2) {
    throw new Error(
      `${op}: input must have shape [N, C] or [N, C, d1, …] (class scores on axis 1), got ${formatShape(input.shape)}`,
    );
  }
  const classes = input.shape[1];
  const targetShape = [input.shape[0], ...input.shape.slice(2)];
  if (target.dtype !== "int32" || formatShape(target.shape) !== formatShape(targetShape)) {
    throw new Error(
      `${op}: target must be an int32 tensor of class indices of shape ${formatShape(targetShape)} ` +
        `(input ${formatShape(input.shape)} without its class axis), got ${target.dtype} ${formatShape(target.shape)}`,
    );
  }
  if (!Number.isInteger(ignoreIndex)) {
    throw new Error(`${op}: ignoreIndex must be an integer, got ${ignoreIndex}`);
  }
  const labels = target.read();
  const kept: number[] = [];
  const keptClasses: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const k = labels[i];
    if (k === ignoreIndex) continue;
    if (!(k >= 0 && k < classes)) {
      throw new Error(
        `${op}: target must hold class indices in [0, ${classes - 1}] or ignoreIndex (${ignoreIndex}), got ${k} at flat index ${i}`,
      );
    }
    kept.push(i);
    keptClasses.push(k);
  }
  const rank = input.rank;
  const classLast = rank === 2 ? input : permute(input, [0, ...range(2, rank), 1]);
  return {
    scores: reshape(classLast, [-1, classes]),
    targetShape,
    classes,
    kept: Int32Array.from(kept),
    keptClasses: Int32Array.from(keptClasses),
    rows: labels.length,
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function checkWeight(op: string, weight: Tensor | undefined, classes: number, input: Tensor) {
  if (weight === undefined) return;
  checkFloat(op, "weight", weight);
  if (weight.rank !== 1 || weight.shape[0] !== classes || weight.dtype !== input.dtype) {
    throw new Error(
      `${op}: weight must be a ${input.dtype} tensor of shape [${classes}] (one per class), got ${weight.dtype} ${formatShape(weight.shape)}`,
    );
  }
}

function checkReduction(op: string, reduction: unknown): "none" | "mean" | "sum" {
  if (reduction !== "none" && reduction !== "mean" && reduction !== "sum") {
    throw new Error(
      `${op}: reduction must be 'none', 'mean' or 'sum', got ${JSON.stringify(reduction)}`,
    );
  }
  return reduction;
}

/** The rows whose target is not ignored, `[K, C]`: ignored rows are never read. */
function keptRows(r: Rows): Tensor {
  return gather(r.scores, tensor(r.kept, { shape: [r.kept.length] }));
}

/**
 * Per kept row `-w[y] · score[y]` (weights optional) from the kept rows' scores `[K, C]`, and the
 * weight of each kept row.
 */
function pickedTerms(
  r: Rows,
  scores: Tensor,
  weight: Tensor | undefined,
): { terms: Tensor; rowWeight: Tensor | null } {
  const pairs = new Int32Array(2 * r.kept.length);
  for (let i = 0; i < r.kept.length; i++) {
    pairs[2 * i] = i;
    pairs[2 * i + 1] = r.keptClasses[i];
  }
  const picked = gatherNd(scores, tensor(pairs, { shape: [r.kept.length, 2], dtype: "int32" }));
  if (weight === undefined) return { terms: neg(picked), rowWeight: null };
  const rowWeight = gather(weight, tensor(r.keptClasses, { shape: [r.kept.length] }));
  return { terms: neg(mul(picked, rowWeight)), rowWeight };
}

/** Per-row terms of the kept rows, reduced: 'none' places them back (0 where ignored). */
function reduceRows(
  r: Rows,
  terms: Tensor,
  rowWeight: Tensor | null,
  reduction: "none" | "mean" | "sum",
): Tensor {
  if (reduction === "sum") return sum(terms);
  if (reduction === "mean") {
    const total = rowWeight === null ? r.kept.length : sum(rowWeight);
    return div(
      sum(terms),
      typeof total === "number" ? tensor(total, { dtype: terms.dtype }) : total,
    );
  }
  const positions = tensor(r.kept, { shape: [r.kept.length, 1] });
  return reshape(scatterNd(positions, terms, [r.rows]), r.targetShape);
}

/**
 * The negative log-likelihood loss of PyTorch's `nll_loss`: `input [N, C]` (or `[N, C, d1, …]`)
 * holds log-probabilities, `target` int32 class indices of shape `[N]` (or `[N, d1, …]`):
 *
 * ```
 * loss_n = −weight[y_n] · input[n, y_n]          (weight 1 without `weight`)
 * 'mean' = Σ loss_n / Σ weight[y_n],  'sum' = Σ loss_n    (over samples whose target ≠ ignoreIndex)
 * ```
 *
 * Ignored samples are never read (a NaN there changes nothing) and get gradient 0; with every
 * target ignored, 'mean' is 0 / 0 = NaN, as in PyTorch. A target outside [0, C) that is not
 * `ignoreIndex` is an error.
 *
 * @example
 * const logProbs = logSoftmax(tensor([[2, 0, -1], [0, 1, 0]]), 1);
 * nllLoss(logProbs, tensor([0, -100], { dtype: "int32" })); // the first row only
 */
export function nllLoss(input: Tensor, target: Tensor, options: NllLossOptions = {}): Tensor {
  const op = "nllLoss";
  const reduction = checkReduction(op, options.reduction ?? "mean");
  const r = rowsOf(op, input, target, options.ignoreIndex ?? -100);
  checkWeight(op, options.weight, r.classes, input);
  const { terms, rowWeight } = pickedTerms(r, keptRows(r), options.weight);
  return reduceRows(r, terms, rowWeight, reduction);
}

/**
 * The cross-entropy of PyTorch's `cross_entropy` on class indices: `logSoftmax` over axis 1 of
 * `input` (logits `[N, C]` or `[N, C, d1, …]`), then `nllLoss`, with optional label smoothing ε:
 *
 * ```
 * smooth_n = −Σ_c weight[c] · logp[n, c]
 * loss = (1 − ε) · nll + (ε / C) · smooth      ('mean' divides smooth by Σ weight[y_n] too)
 * ```
 *
 * Finite for logits of any magnitude (the log-softmax is max-shifted). Ignored samples are
 * excluded from both terms and from the mean's denominator.
 *
 * @example
 * const logits = tensor([[2, 0, -1], [0.5, 1, 0]], { requiresGrad: true });
 * crossEntropy(logits, tensor([0, 1], { dtype: "int32" }), { labelSmoothing: 0.1 }).backward();
 */
export function crossEntropy(
  input: Tensor,
  target: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  const op = "crossEntropy";
  const reduction = checkReduction(op, options.reduction ?? "mean");
  const smoothing = options.labelSmoothing ?? 0;
  if (typeof smoothing !== "number" || !(smoothing >= 0 && smoothing <= 1)) {
    throw new Error(`${op}: labelSmoothing must be in [0, 1], got ${String(smoothing)}`);
  }
  const r = rowsOf(op, input, target, options.ignoreIndex ?? -100);
  checkWeight(op, options.weight, r.classes, input);
  // The softmax of the kept rows only: an ignored row (even NaN) reaches neither value nor gradient.
  const logp = logSoftmax(keptRows(r), 1);
  const { terms, rowWeight } = pickedTerms(r, logp, options.weight);
  const nll = reduceRows(r, terms, rowWeight, reduction);
  if (smoothing === 0) return nll;
  const weighted = options.weight === undefined ? logp : mul(logp, options.weight);
  const smooth = reduceRows(r, neg(sum(weighted, { axis: 1 })), rowWeight, reduction);
  return add(mul(nll, 1 - smoothing), mul(smooth, smoothing / r.classes));
}
