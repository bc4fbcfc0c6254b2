/** The keras-retinanet target layout `[B, N, C + 1]` (labels, then the anchor state): checks and normalisers. */

import {
  broadcastTo,
  cast,
  equal,
  greaterEqual,
  isFloat,
  lessEqual,
  logicalAnd,
  logicalNot,
  logicalOr,
  maximum,
  notEqual,
  reshape,
  slice,
  sum,
  type Tensor,
} from "@focalgrad/core";
import { checkFloatArg, checkNumericArg, checkRank, checkTensorArg } from "./common.js";

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** `yTrue [B, N, C + 1]` checked and split: its first C columns, its anchor state, and C. */
export interface AnchorTargets {
  /** The first C columns (labels or regression targets), `[B, N, C]`. */
  values: Tensor;
  /** The anchor state column, `[B, N]`. */
  anchorState: Tensor;
  /** The number of columns C of the predictions. */
  columns: number;
}

/**
 * Checks `yTrue [B, N, C + 1]` against `yPred [B, N, C]` and, in one pass over `yTrue`, that
 * every anchor state is -1, 0 or 1 and (with `labelsInUnitInterval`) that the labels of every
 * anchor that is not ignored lie in [0, 1]. Labels of ignored anchors are never read, so they may
 * hold anything. Returns `yTrue` split (`splitAnchorTargets`) and the number of columns `C`.
 */
export function checkAnchorTargets(
  op: string,
  yTrue: unknown,
  yPred: unknown,
  options: { predName?: string; predWhat: string; labelsInUnitInterval: boolean },
): AnchorTargets {
  const { predName = "yPred", predWhat, labelsInUnitInterval } = options;
  const pred = checkFloatArg(op, predName, yPred, predWhat);
  const target = checkNumericArg(op, "yTrue", yTrue);
  checkRank(op, predName, pred, 3, "[batch, anchors, columns]");
  checkRank(op, "yTrue", target, 3, "[batch, anchors, columns + 1 (anchor state)]");
  const [batch, anchors, columns] = pred.shape;
  if (columns < 1) {
    throw new Error(
      `${op}: ${predName} must have at least 1 column, got shape ${shapeText(pred.shape)}`,
    );
  }
  if (target.shape[0] !== batch) {
    throw new Error(
      `${op}: yTrue and ${predName} must have the same batch size, got ${target.shape[0]} ` +
        `(yTrue ${shapeText(target.shape)}) and ${batch} (${predName} ${shapeText(pred.shape)})`,
    );
  }
  if (target.shape[1] !== anchors) {
    throw new Error(
      `${op}: yTrue and ${predName} must have the same number of anchors, got ${target.shape[1]} ` +
        `(yTrue ${shapeText(target.shape)}) and ${anchors} (${predName} ${shapeText(pred.shape)})`,
    );
  }
  if (target.shape[2] !== columns + 1) {
    throw new Error(
      `${op}: the last dimension of yTrue must be C + 1 = ${columns + 1} (the ${columns} columns ` +
        `of ${predName}, then the anchor state), got ${target.shape[2]} (yTrue ${shapeText(target.shape)})`,
    );
  }
  const split = { ...splitAnchorTargets(target, columns), columns };
  // One fused pass counts what is out of place; only a bad batch is walked again to name the first.
  if (misplacedTargets(target, split, labelsInUnitInterval) === 0) return split;
  const data = target.read();
  const stride = columns + 1;
  for (let base = 0, anchor = 0; base < data.length; base += stride, anchor++) {
    const state = data[base + columns];
    if (state === -1) continue;
    if (state !== 0 && state !== 1) {
      throw new Error(
        `${op}: the anchor state (last column of yTrue) must be -1 (ignore), 0 (background) or 1 (object), ` +
          `got ${state} at [${Math.floor(anchor / anchors)}, ${anchor % anchors}]`,
      );
    }
    if (!labelsInUnitInterval) continue;
    for (let c = 0; c < columns; c++) {
      const label = data[base + c];
      if (!(label >= 0 && label <= 1)) {
        throw new Error(
          `${op}: the labels of yTrue must lie in [0, 1] for every anchor that is not ignored, ` +
            `got ${label} at [${Math.floor(anchor / anchors)}, ${anchor % anchors}, ${c}]`,
        );
      }
    }
  }
  return split;
}

/**
 * How many entries of `yTrue [B, N, C + 1]` (and `targets`, its split) break its layout: anchor states other than -1, 0 and 1
 * (counted once per column), and (with `labelsInUnitInterval`) labels outside [0, 1] or NaN of
 * anchors that are not ignored. One lazy sum of elementwise ops, so one fused kernel.
 */
function misplacedTargets(
  yTrue: Tensor,
  targets: AnchorTargets,
  labelsInUnitInterval: boolean,
): number {
  const { anchorState } = targets;
  const [batch, anchors, width] = yTrue.shape;
  const column = reshape(anchorState, [batch, anchors, 1]);
  const badStateOf = (state: Tensor) =>
    logicalAnd(logicalAnd(notEqual(state, -1), notEqual(state, 0)), notEqual(state, 1));
  if (!labelsInUnitInterval) return sum(cast(badStateOf(column), "float32")).item();
  // Over the whole of yTrue, read in order, with the state a broadcast view, so that every
  // comparison fuses into one kernel: the state column is in [0, 1] where it is 0 or 1.
  const state = broadcastTo(column, [batch, anchors, width]);
  const inside = logicalAnd(greaterEqual(yTrue, 0), lessEqual(yTrue, 1));
  const badLabel = logicalAnd(notEqual(state, -1), logicalNot(inside));
  return sum(cast(logicalOr(badStateOf(state), badLabel), "float32")).item();
}

/** Validates an anchor state tensor `[B, N]` holding only -1, 0 and 1. */
function checkAnchorState(op: string, anchorState: unknown): Tensor {
  const state = checkNumericArg(op, "anchorState", anchorState);
  checkRank(op, "anchorState", state, 2, "[batch, anchors]");
  const data = state.read();
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v !== -1 && v !== 0 && v !== 1) {
      throw new Error(
        `${op}: anchorState must hold only -1 (ignore), 0 (background) or 1 (object), ` +
          `got ${v} at [${Math.floor(i / state.shape[1])}, ${i % state.shape[1]}]`,
      );
    }
  }
  return state;
}

function countObjects(op: string, anchorState: unknown, axis: number[]): Tensor {
  const state = checkAnchorState(op, anchorState);
  const dtype = isFloat(state.dtype) ? state.dtype : "float32";
  return maximum(sum(cast(equal(state, 1), dtype), { axis }), 1);
}

/**
 * The seed's normaliser: `max(1, number of object anchors in the whole batch)`, a scalar.
 * Dividing a summed loss by it averages over objects rather than anchors (Lin et al. 2017, §3.3).
 * The result is float (the state's own float dtype, else float32) and carries no gradient.
 *
 * @example
 * const anchorState = tensor([[1, 0, -1], [1, 1, 0]]); // [B = 2, N = 3]
 * batchNormalizer(anchorState); // 3
 */
export function batchNormalizer(anchorState: Tensor): Tensor {
  return countObjects("batchNormalizer", anchorState, [0, 1]);
}

/**
 * torchvision's RetinaNet head normaliser: `max(1, number of object anchors)` per image, shape
 * `[B]`. The head divides each image's summed loss by its own count, then averages over images.
 *
 * @example
 * const anchorState = tensor([[1, 0, -1], [0, 0, 0]]);
 * imageNormalizer(anchorState); // [1, 1]
 * // per image: mean(div(sum(lossPerElement, { axis: [1, 2] }), imageNormalizer(anchorState)))
 */
export function imageNormalizer(anchorState: Tensor): Tensor {
  return countObjects("imageNormalizer", anchorState, [1]);
}

/**
 * The anchor state column of `yTrue [B, N, C + 1]` (keras-retinanet's layout), as `[B, N]`: the
 * input of `batchNormalizer` and `imageNormalizer`.
 *
 * @example
 * anchorStateOf(tensor([[[0, 1, 1], [1, 0, -1]]])); // [[1, -1]]
 */
export function anchorStateOf(yTrue: Tensor): Tensor {
  checkTensorArg("anchorStateOf", "yTrue", yTrue);
  checkRank("anchorStateOf", "yTrue", yTrue, 3, "[batch, anchors, columns + 1]");
  const [batch, anchors, last] = yTrue.shape;
  if (last < 1) {
    throw new Error(
      `anchorStateOf: yTrue must have a last dimension >= 1, got ${shapeText(yTrue.shape)}`,
    );
  }
  return reshape(slice(yTrue, [0, 0, last - 1], [batch, anchors, 1]), [batch, anchors]);
}

/**
 * @internal `yTrue [B, N, K + 1]` split into its first K columns (labels or regression targets,
 * `[B, N, K]`) and its anchor state (`[B, N]`). Both are slices, which stay lazy views on large
 * batches, so nothing is copied.
 */
export function splitAnchorTargets(
  yTrue: Tensor,
  columns: number,
): { values: Tensor; anchorState: Tensor } {
  const [batch, anchors] = yTrue.shape;
  return {
    values: slice(yTrue, [0, 0, 0], [batch, anchors, columns]),
    anchorState: reshape(slice(yTrue, [0, 0, columns], [batch, anchors, 1]), [batch, anchors]),
  };
}
