/** @focalgrad/examples: the toy detector (also at @focalgrad/examples/detection), synthetic anchor batches and the hand-fused focal loop shared by the loss demo, the benchmark and tests. */

export {
  type AnchorBatch,
  type AnchorBatchOptions,
  syntheticAnchorBatch,
} from "./data/anchors.js";
export * from "./detection/index.js";
export {
  type FusedFocalOptions,
  type FusedFocalResult,
  fusedFocal,
  fusedFocalInto,
} from "./fused/focal.js";
export { FusedFocalThreads } from "./fused/threads.js";
