/** The common ops as `Tensor` methods (`x.add(y).relu().sum()`), made from the functions themselves. */

import type { DType } from "./dtype.js";
import { add, div, maximum, minimum, mul, neg, pow, square, sub } from "./ops/arithmetic.js";
import { cast } from "./ops/cast.js";
import {
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
import {
  abs,
  clip,
  erf,
  exp,
  log,
  log1p,
  logSigmoid,
  relu,
  sigmoid,
  sign,
  softplus,
  sqrt,
  tanh,
} from "./ops/math.js";
import { matmul } from "./ops/matmul.js";
import { logSoftmax, logSumExp, max, mean, min, softmax, sum } from "./ops/reduce.js";
import { argwhere, gather, gatherNd } from "./ops/selection.js";
import {
  broadcastTo,
  expandDims,
  pad,
  permute,
  reshape,
  slice,
  squeeze,
  transpose,
} from "./ops/shape.js";
import { Tensor } from "./tensor.js";

/**
 * Every function that becomes a method, by method name: `x.name(...rest)` is `name(x, ...rest)`.
 * The method types below are derived from this object, so a method cannot drift from its function.
 */
const functions = {
  /** `x.add(…)` is {@link add}`(x, …)`. */
  add,
  /** `x.sub(…)` is {@link sub}`(x, …)`. */
  sub,
  /** `x.mul(…)` is {@link mul}`(x, …)`. */
  mul,
  /** `x.div(…)` is {@link div}`(x, …)`. */
  div,
  /** `x.neg(…)` is {@link neg}`(x, …)`. */
  neg,
  /** `x.pow(…)` is {@link pow}`(x, …)`. */
  pow,
  /** `x.square(…)` is {@link square}`(x, …)`. */
  square,
  /** `x.maximum(…)` is {@link maximum}`(x, …)`. */
  maximum,
  /** `x.minimum(…)` is {@link minimum}`(x, …)`. */
  minimum,
  /** `x.erf(…)` is {@link erf}`(x, …)`. */
  erf,
  /** `x.exp(…)` is {@link exp}`(x, …)`. */
  exp,
  /** `x.log(…)` is {@link log}`(x, …)`. */
  log,
  /** `x.log1p(…)` is {@link log1p}`(x, …)`. */
  log1p,
  /** `x.sqrt(…)` is {@link sqrt}`(x, …)`. */
  sqrt,
  /** `x.abs(…)` is {@link abs}`(x, …)`. */
  abs,
  /** `x.sign(…)` is {@link sign}`(x, …)`. */
  sign,
  /** `x.sigmoid(…)` is {@link sigmoid}`(x, …)`. */
  sigmoid,
  /** `x.logSigmoid(…)` is {@link logSigmoid}`(x, …)`. */
  logSigmoid,
  /** `x.softplus(…)` is {@link softplus}`(x, …)`. */
  softplus,
  /** `x.tanh(…)` is {@link tanh}`(x, …)`. */
  tanh,
  /** `x.relu(…)` is {@link relu}`(x, …)`. */
  relu,
  /** `x.clip(…)` is {@link clip}`(x, …)`. */
  clip,
  /** `x.equal(…)` is {@link equal}`(x, …)`. */
  equal,
  /** `x.notEqual(…)` is {@link notEqual}`(x, …)`. */
  notEqual,
  /** `x.greater(…)` is {@link greater}`(x, …)`. */
  greater,
  /** `x.greaterEqual(…)` is {@link greaterEqual}`(x, …)`. */
  greaterEqual,
  /** `x.less(…)` is {@link less}`(x, …)`. */
  less,
  /** `x.lessEqual(…)` is {@link lessEqual}`(x, …)`. */
  lessEqual,
  /** `x.logicalAnd(…)` is {@link logicalAnd}`(x, …)`. */
  logicalAnd,
  /** `x.logicalOr(…)` is {@link logicalOr}`(x, …)`. */
  logicalOr,
  /** `x.logicalNot(…)` is {@link logicalNot}`(x, …)`. */
  logicalNot,
  /** `x.cast(…)` is {@link cast}`(x, …)`. */
  cast,
  /** `x.sum(…)` is {@link sum}`(x, …)`. */
  sum,
  /** `x.mean(…)` is {@link mean}`(x, …)`. */
  mean,
  /** `x.max(…)` is {@link max}`(x, …)`. */
  max,
  /** `x.min(…)` is {@link min}`(x, …)`. */
  min,
  /** `x.logSumExp(…)` is {@link logSumExp}`(x, …)`. */
  logSumExp,
  /** `x.softmax(…)` is {@link softmax}`(x, …)`. */
  softmax,
  /** `x.logSoftmax(…)` is {@link logSoftmax}`(x, …)`. */
  logSoftmax,
  /** `x.reshape(…)` is {@link reshape}`(x, …)`. */
  reshape,
  /** `x.permute(…)` is {@link permute}`(x, …)`. */
  permute,
  /** `x.transpose(…)` is {@link transpose}`(x, …)`. */
  transpose,
  /** `x.expandDims(…)` is {@link expandDims}`(x, …)`. */
  expandDims,
  /** `x.squeeze(…)` is {@link squeeze}`(x, …)`. */
  squeeze,
  /** `x.broadcastTo(…)` is {@link broadcastTo}`(x, …)`. */
  broadcastTo,
  /** `x.slice(…)` is {@link slice}`(x, …)`. */
  slice,
  /** `x.pad(…)` is {@link pad}`(x, …)`. */
  pad,
  /** `x.matmul(…)` is {@link matmul}`(x, …)`. */
  matmul,
  /** `x.gather(…)` is {@link gather}`(x, …)`. */
  gather,
  /** `x.gatherNd(…)` is {@link gatherNd}`(x, …)`. */
  gatherNd,
  /** `x.argwhere(…)` is {@link argwhere}`(x, …)`. */
  argwhere,
} as const;

// biome-ignore lint/suspicious/noExplicitAny: matches any function whose first argument is the tensor.
type WithoutFirst<F> = F extends (first: any, ...rest: infer R) => infer O
  ? (...rest: R) => O
  : never;

/**
 * The op methods of `Tensor`: each is the function of the same name with the tensor as its first
 * argument (`x.sum({ axis: 1 })` is `sum(x, { axis: 1 })`), and is documented there.
 */
export type TensorMethods = { [K in keyof typeof functions]: WithoutFirst<(typeof functions)[K]> };

declare module "./tensor.js" {
  // Declaration merging: the methods installed below, typed from their functions.
  interface Tensor<D extends DType = DType> extends TensorMethods {}
}

/** The names of every op method, in the order of `functions`. */
export const methodNames = Object.keys(functions) as readonly (keyof typeof functions)[];

for (const name of methodNames) {
  const fn = functions[name] as (self: Tensor, ...rest: unknown[]) => Tensor;
  if (name in Tensor.prototype) {
    throw new Error(`Tensor methods: ${name} would shadow an existing member of Tensor`);
  }
  Object.defineProperty(Tensor.prototype, name, {
    value: function (this: Tensor, ...rest: unknown[]): Tensor {
      return fn(this, ...rest);
    },
    writable: true,
    configurable: true,
  });
}
