/** Weight initialisers (He/Kaiming, Xavier/Glorot, normal, the focal-loss prior bias), drawing from a seeded generator so that a run is reproducible bit for bit. */

import { isFloat } from "../dtype.js";
import { checkOptions } from "../ops/util.js";
import { Generator } from "../random.js";
import { formatShape } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { writeInPlace } from "./inplace.js";

/** Where random numbers come from: a generator (advanced by the draw) or a seed for a fresh one. */
export interface RandomSource {
  generator?: Generator;
  seed?: number;
}

/**
 * @internal The generator of `source`, or an error naming `op` when there is none.
 *
 * @example
 * generatorOf("Linear", { seed: 0 }).uniform();
 */
export function generatorOf(op: string, source: RandomSource | undefined): Generator {
  if (source?.generator !== undefined) {
    if (!(source.generator instanceof Generator)) {
      throw new Error(`${op}: generator must be a Generator, got ${typeof source.generator}`);
    }
    return source.generator;
  }
  if (source?.seed !== undefined) return new Generator(source.seed);
  throw new Error(
    `${op}: pass { generator } or { seed }, so that the initial weights are reproducible`,
  );
}

function checkTarget(op: string, t: Tensor): void {
  if (t === null || typeof t !== "object" || !("data" in t) || !isFloat(t.dtype)) {
    throw new Error(`${op}: the tensor to fill must be float32 or float64`);
  }
}

/**
 * (fanIn, fanOut) as PyTorch computes them: weight [out, in, ...kernel] has fanIn = in · kernel
 * size and fanOut = out · kernel size.
 *
 * @example
 * fans(zeros([16, 3, 3, 3])); // [27, 144]
 */
export function fans(t: Tensor): [fanIn: number, fanOut: number] {
  if (t.rank < 2) {
    throw new Error(
      `fans: fan in and fan out need a tensor of rank >= 2 ([out, in, ...kernel]), got shape ${formatShape(t.shape)}`,
    );
  }
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1] * receptive, t.shape[0] * receptive];
}

function fill(t: Tensor, draw: () => number): Tensor {
  writeInPlace([t], () => {
    const data = t.writable();
    for (let i = 0; i < data.length; i++) data[i] = draw();
  });
  return t;
}

export type Nonlinearity = "relu" | "leakyRelu" | "linear" | "sigmoid" | "tanh";

/**
 * The gain PyTorch's `calculate_gain` gives: √2 for relu, √(2 / (1 + a²)) for leaky relu with
 * slope a, 5/3 for tanh, 1 for linear and sigmoid.
 *
 * @example
 * gain("relu"); // 1.414…
 */
export function gain(nonlinearity: Nonlinearity, negativeSlope = 0.01): number {
  switch (nonlinearity) {
    case "relu":
      return Math.SQRT2;
    case "leakyRelu":
      return Math.sqrt(2 / (1 + negativeSlope * negativeSlope));
    case "tanh":
      return 5 / 3;
    case "linear":
    case "sigmoid":
      return 1;
    default:
      nonlinearity satisfies never;
      throw new Error(
        `gain: unknown nonlinearity ${JSON.stringify(nonlinearity)} (expected relu, leakyRelu, linear, sigmoid or tanh)`,
      );
  }
}

export interface KaimingOptions extends RandomSource {
  /** Default "relu". */
  nonlinearity?: Nonlinearity;
  /** The negative slope of a leaky relu. Default 0 with relu, 0.01 with leakyRelu. */
  a?: number;
  /** Preserve the variance of activations ("fanIn", default) or of gradients ("fanOut"). */
  mode?: "fanIn" | "fanOut";
}

const sourceOptions = { generator: "generator", seed: "integer" } as const;

function kaimingStd(op: string, t: Tensor, options: KaimingOptions): number {
  checkOptions(op, options, {
    ...sourceOptions,
    nonlinearity: "string",
    a: "number",
    mode: "string",
  });
  const nonlinearity = options.nonlinearity ?? "relu";
  const mode = options.mode ?? "fanIn";
  if (mode !== "fanIn" && mode !== "fanOut") {
    throw new Error(`${op}: mode must be "fanIn" or "fanOut", got ${JSON.stringify(mode)}`);
  }
  const [fanIn, fanOut] = fans(t);
  return gain(nonlinearity, options.a ?? 0.01) / Math.sqrt(mode === "fanIn" ? fanIn : fanOut);
}

/**
 * He et al. (2015): fills `t` in place from U(−b, b) with b = gain · √(3 / fan), so that
 * activations keep their variance through relu layers. Returns `t`.
 *
 * @example
 * kaimingUniform(conv.weight, { generator: new Generator(0) });
 */
export function kaimingUniform(t: Tensor, options: KaimingOptions = {}): Tensor {
  checkTarget("kaimingUniform", t);
  const bound = Math.sqrt(3) * kaimingStd("kaimingUniform", t, options);
  const gen = generatorOf("kaimingUniform", options);
  return fill(t, () => gen.uniform(-bound, bound));
}

/**
 * He et al. (2015): fills `t` in place from N(0, gain² / fan). Returns `t`.
 *
 * @example
 * kaimingNormal(linear.weight, { mode: "fanOut", seed: 1 });
 */
export function kaimingNormal(t: Tensor, options: KaimingOptions = {}): Tensor {
  checkTarget("kaimingNormal", t);
  const std = kaimingStd("kaimingNormal", t, options);
  const gen = generatorOf("kaimingNormal", options);
  return fill(t, () => gen.normal(0, std));
}

export interface XavierOptions extends RandomSource {
  /** Default 1. */
  gain?: number;
}

/**
 * Glorot and Bengio (2010): fills `t` in place from U(−b, b) with b = gain · √(6 / (fanIn + fanOut)).
 *
 * @example
 * xavierUniform(linear.weight, { seed: 0 });
 */
export function xavierUniform(t: Tensor, options: XavierOptions = {}): Tensor {
  checkTarget("xavierUniform", t);
  checkOptions("xavierUniform", options, { ...sourceOptions, gain: "number" });
  const [fanIn, fanOut] = fans(t);
  const bound = (options.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
  const gen = generatorOf("xavierUniform", options);
  return fill(t, () => gen.uniform(-bound, bound));
}

/**
 * Glorot and Bengio (2010): fills `t` in place from N(0, gain² · 2 / (fanIn + fanOut)).
 *
 * @example
 * xavierNormal(linear.weight, { gain: gain("tanh"), seed: 0 });
 */
export function xavierNormal(t: Tensor, options: XavierOptions = {}): Tensor {
  checkTarget("xavierNormal", t);
  checkOptions("xavierNormal", options, { ...sourceOptions, gain: "number" });
  const [fanIn, fanOut] = fans(t);
  const std = (options.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  const gen = generatorOf("xavierNormal", options);
  return fill(t, () => gen.normal(0, std));
}

/**
 * Fills `t` in place from N(mean, std²): RetinaNet initialises its head convolutions with std 0.01.
 *
 * @example
 * normal(head.weight, { std: 0.01, seed: 0 });
 */
export function normal(t: Tensor, options: RandomSource & { mean?: number; std?: number }): Tensor {
  checkTarget("normal", t);
  checkOptions("normal", options, { ...sourceOptions, mean: "number", std: "number" });
  const std = options?.std ?? 1;
  if (!(std >= 0) || !Number.isFinite(std)) {
    throw new Error(`normal: std must be a finite number >= 0, got ${std}`);
  }
  const mean = options.mean ?? 0;
  const gen = generatorOf("normal", options);
  return fill(t, () => gen.normal(mean, std));
}

/**
 * Fills `t` in place from U(low, high).
 *
 * @example
 * uniform(linear.bias, { low: -0.1, high: 0.1, seed: 0 });
 */
export function uniform(
  t: Tensor,
  options: RandomSource & { low?: number; high?: number },
): Tensor {
  checkTarget("uniform", t);
  checkOptions("uniform", options, { ...sourceOptions, low: "number", high: "number" });
  const low = options?.low ?? 0;
  const high = options?.high ?? 1;
  if (!(low <= high)) throw new Error(`uniform: low (${low}) must not exceed high (${high})`);
  const gen = generatorOf("uniform", options);
  return fill(t, () => gen.uniform(low, high));
}

/**
 * Fills `t` in place with `value`.
 *
 * @example
 * constant(norm.weight, 1);
 */
export function constant(t: Tensor, value: number): Tensor {
  checkTarget("constant", t);
  writeInPlace([t], () => t.writable().fill(value));
  return t;
}

/**
 * The bias b = −log((1 − π) / π) of the focal-loss paper (Lin et al. 2017, §4.1): with it, every
 * anchor starts out predicting foreground with probability π (sigmoid(b) = π), so the many easy
 * negatives do not swamp the first steps of training. Default π = 0.01, b ≈ −4.595.
 *
 * @example
 * priorProbabilityBias();     // -4.59511985013459
 * sigmoid(tensor(priorProbabilityBias(0.01))).item(); // 0.01
 */
export function priorProbabilityBias(pi = 0.01): number {
  if (!(pi > 0 && pi < 1)) {
    throw new Error(`priorProbabilityBias: pi must be a probability in (0, 1), got ${pi}`);
  }
  return -Math.log((1 - pi) / pi);
}

/**
 * Fills `t` in place with the prior-probability bias for π (default 0.01): the classification
 * head's bias of RetinaNet.
 *
 * @example
 * priorBias(classHead.bias!, 0.01);
 */
export function priorBias(t: Tensor, pi = 0.01): Tensor {
  return constant(t, priorProbabilityBias(pi));
}
