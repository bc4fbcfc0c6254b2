/** `nn`: modules with named parameters, the layers of a small conv net, and weight initialisers. */

export {
  Dropout,
  type DropoutOptions,
  GELU,
  Identity,
  LeakyReLU,
  Sigmoid,
  SiLU,
  Softmax,
  Tanh,
} from "./activations.js";
export { ModuleDict } from "./containers.js";
export type { RandomSource } from "./init.js";
export * as init from "./init.js";
export {
  Conv2d,
  type Conv2dLayerOptions,
  Flatten,
  type LayerOptions,
  Linear,
  MaxPool2d,
  ReLU,
  Upsample,
} from "./layers.js";
export { type AnyModule, type Layer, Module, ModuleList, Sequential } from "./module.js";
export {
  BatchNorm1d,
  BatchNorm2d,
  type BatchNormOptions,
  GroupNorm,
  LayerNorm,
  type LayerNormOptions,
  type NormOptions,
} from "./norm.js";
export { parameterCount, summary } from "./summary.js";
