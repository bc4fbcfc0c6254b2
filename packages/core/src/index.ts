/**
 * `@focalgrad/core`: tensors, reverse-mode autodiff, and the ops that focal losses and small conv
 * nets are made of.
 *
 * @packageDocumentation
 */

export { DataLoader, type DataLoaderOptions } from "./data.js";
export {
  type DataArray,
  DTYPES,
  type DType,
  isFloat,
  type Placement,
  promoteTypes,
} from "./dtype.js";
export { grad, valueAndGrad } from "./engine.js";
export {
  type BackendMemory,
  type BackendName,
  type ConvGeometry,
  type DenseBackend,
  type Gemm,
  getBackend,
  javascriptBackend,
  type PoolGeometry,
  setBackend,
} from "./kernels/backend.js";
export { createWasmBackend, type WasmBackendOptions } from "./kernels/wasm/backend.js";
export { getNumThreads, setNumThreads } from "./kernels/wasm/runtime.js";
// Installs the op methods on Tensor.prototype (a side effect, listed in package.json's sideEffects).
export { methodNames, type TensorMethods } from "./methods.js";
export * as nn from "./nn/index.js";
export { add, div, maximum, minimum, mul, neg, pow, square, sub } from "./ops/arithmetic.js";
export {
  batchedNms,
  boxArea,
  boxIou,
  clipBoxes,
  generalizedBoxIou,
  nms,
} from "./ops/boxes.js";
export { cast } from "./ops/cast.js";
export {
  type CrossEntropyOptions,
  crossEntropy,
  type NllLossOptions,
  nllLoss,
} from "./ops/classification.js";
export {
  equal,
  greater,
  greaterEqual,
  less,
  lessEqual,
  logicalAnd,
  logicalNot,
  logicalOr,
  notEqual,
} from "./ops/compare.js";
export {
  avgPool2d,
  type Conv2dOptions,
  conv2d,
  maxPool2d,
  type Pair,
  type Pool2dOptions,
  type UpsampleOptions,
  upsampleNearest2d,
} from "./ops/conv.js";
export {
  arange,
  type CreationOptions,
  full,
  linspace,
  normal,
  ones,
  onesLike,
  type RandomOptions,
  randperm,
  type TensorOptions,
  tensor,
  uniform,
  zeros,
  zerosLike,
} from "./ops/creation.js";
export { bceWithLogits, binaryCrossEntropy } from "./ops/crossentropy.js";
export { type InterpolateOptions, interpolate } from "./ops/interpolate.js";
export {
  abs,
  ceil,
  clip,
  erf,
  exp,
  floor,
  type GeluOptions,
  gelu,
  log,
  log1p,
  logSigmoid,
  relu,
  round,
  sigmoid,
  sign,
  softplus,
  sqrt,
  tanh,
} from "./ops/math.js";
export { matmul } from "./ops/matmul.js";
export {
  type ArgReduceOptions,
  argmax,
  argmin,
  cumsum,
  logSoftmax,
  logSumExp,
  max,
  mean,
  min,
  type ReduceOptions,
  softmax,
  sum,
} from "./ops/reduce.js";
export {
  argwhere,
  gather,
  gatherNd,
  oneHot,
  scatterAdd,
  scatterAlongAxis,
  scatterNd,
  takeAlongAxis,
  where,
} from "./ops/selection.js";
export {
  broadcastTo,
  concat,
  expandDims,
  meshgrid,
  pad,
  permute,
  reshape,
  slice,
  squeeze,
  stack,
  tile,
  transpose,
} from "./ops/shape.js";
export {
  argsort,
  type SortOptions,
  type SortResult,
  sort,
  type TopkOptions,
  topk,
} from "./ops/sorting.js";
export { checkOptions, type OptionKind, type TensorLike } from "./ops/util.js";
export * as optim from "./optim/index.js";
export { Generator, getDefaultGenerator, manualSeed, type RandomSource } from "./random.js";
export type { Shape } from "./shape.js";
export {
  type GradientRule,
  isGradEnabled,
  noGrad,
  type OpAttributes,
  type RecordedOp,
  recordedOp,
} from "./tape.js";
export { type NestedArray, Tensor } from "./tensor.js";
