/** `nn`: modules with named parameters, the layers of a small conv net, and weight initialisers. */

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
export { BatchNorm2d, type BatchNormOptions, GroupNorm, type NormOptions } from "./norm.js";
