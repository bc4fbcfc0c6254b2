/** The layers of a small conv net: Linear, Conv2d, ReLU, MaxPool2d, Upsample, Flatten. */

import { allocate, type DType } from "../dtype.js";
import { add } from "../ops/arithmetic.js";
import {
  type Conv2dOptions,
  conv2d,
  maxPool2d,
  type Pair,
  type Pool2dOptions,
  upsampleNearest2d,
} from "../ops/conv.js";
import { relu } from "../ops/math.js";
import { matmulTransposed } from "../ops/matmul.js";
import { reshape } from "../ops/shape.js";
import { checkOptions, checkTensor } from "../ops/util.js";
import type { Generator } from "../random.js";
import { formatShape } from "../shape.js";
import { Tensor } from "../tensor.js";
import { generatorOf, type RandomSource } from "./init.js";
import { Module } from "./module.js";

const layerOptions = {
  bias: "boolean",
  dtype: "floatDtype",
  generator: "generator",
  seed: "integer",
} as const;

export interface LayerOptions extends RandomSource {
  /** Whether the layer adds a learned bias. Default true. */
  bias?: boolean;
  /** Default float32. */
  dtype?: "float32" | "float64";
}

function checkDtype(op: string, dtype: DType): "float32" | "float64" {
  if (dtype !== "float32" && dtype !== "float64") {
    throw new Error(`${op}: dtype must be float32 or float64, got ${dtype}`);
  }
  return dtype;
}

function checkCount(op: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${op}: ${name} must be an integer >= 1, got ${value}`);
  }
}

/** U(−1/√fanIn, 1/√fanIn): PyTorch's default for both weights (kaiming uniform, a = √5) and biases. */
function defaultInit(shape: number[], fanIn: number, dtype: DType, gen: Generator): Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  const data = allocate(
    dtype,
    shape.reduce((a, b) => a * b, 1),
  );
  for (let i = 0; i < data.length; i++) data[i] = gen.uniform(-bound, bound);
  return new Tensor(data, shape, dtype);
}

/**
 * y = x · weightᵀ + bias over the last axis of x; weight is [outFeatures, inFeatures] (PyTorch's
 * layout). Weights and bias start from U(−1/√in, 1/√in), PyTorch's default.
 *
 * @example
 * const fc = new Linear(4, 2, { seed: 0 });
 * fc.forward(zeros([8, 4])).shape; // [8, 2]
 */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LayerOptions = {},
  ) {
    checkOptions("Linear", options, layerOptions);
    super();
    checkCount("Linear", "inFeatures", inFeatures);
    checkCount("Linear", "outFeatures", outFeatures);
    const dtype = checkDtype("Linear", options.dtype ?? "float32");
    const gen = generatorOf("Linear", options);
    this.weight = this.addParameter(
      "weight",
      defaultInit([outFeatures, inFeatures], inFeatures, dtype, gen),
    );
    this.bias =
      options.bias === false
        ? null
        : this.addParameter("bias", defaultInit([outFeatures], inFeatures, dtype, gen));
  }

  forward(x: Tensor): Tensor {
    checkTensor("Linear", "x", x);
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new Error(
        `Linear: x of shape ${formatShape(x.shape)} must end in inFeatures = ${this.inFeatures} (weight ${formatShape(this.weight.shape)})`,
      );
    }
    const rows = x.rank === 1 ? reshape(x, [1, this.inFeatures]) : x;
    // x · weightᵀ without a transpose copy, in either direction of the pass.
    let y = matmulTransposed("Linear", rows, this.weight, false, true);
    if (this.bias !== null) y = add(y, this.bias);
    return x.rank === 1 ? reshape(y, [this.outFeatures]) : y;
  }
}

export interface Conv2dLayerOptions extends LayerOptions {
  stride?: Pair;
  padding?: Conv2dOptions["padding"];
  dilation?: Pair;
  groups?: number;
}

/**
 * A 2-D convolution layer over NCHW input with weight [out, in / groups, kh, kw] (PyTorch's
 * layout) and a bias per output channel; see `conv2d`. Initialised as PyTorch does,
 * U(−1/√fanIn, 1/√fanIn).
 *
 * @example
 * const conv = new Conv2d(3, 16, 3, { padding: "same", seed: 0 });
 * conv.forward(zeros([2, 3, 32, 32])).shape; // [2, 16, 32, 32]
 */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: Conv2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: Conv2dLayerOptions = {},
  ) {
    checkOptions("Conv2d", options, {
      ...layerOptions,
      stride: "pair",
      padding: "any", // checked by conv2d, which says what it accepts
      dilation: "pair",
      groups: "number",
    });
    super();
    checkCount("Conv2d", "inChannels", inChannels);
    checkCount("Conv2d", "outChannels", outChannels);
    const [kh, kw] = typeof kernelSize === "number" ? [kernelSize, kernelSize] : kernelSize;
    checkCount("Conv2d", "kernelSize", kh);
    checkCount("Conv2d", "kernelSize", kw);
    const groups = options.groups ?? 1;
    checkCount("Conv2d", "groups", groups);
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(
        `Conv2d: groups (${groups}) must divide inChannels (${inChannels}) and outChannels (${outChannels})`,
      );
    }
    const dtype = checkDtype("Conv2d", options.dtype ?? "float32");
    const gen = generatorOf("Conv2d", options);
    const fanIn = (inChannels / groups) * kh * kw;
    this.weight = this.addParameter(
      "weight",
      defaultInit([outChannels, inChannels / groups, kh, kw], fanIn, dtype, gen),
    );
    this.bias =
      options.bias === false
        ? null
        : this.addParameter("bias", defaultInit([outChannels], fanIn, dtype, gen));
    this.options = {
      stride: options.stride,
      padding: options.padding,
      dilation: options.dilation,
      groups,
    };
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, {
      ...this.options,
      ...(this.bias === null ? {} : { bias: this.bias }),
    });
  }
}

/**
 * max(x, 0) elementwise.
 *
 * @example
 * new ReLU().forward(tensor([-1, 2])); // [0, 2]
 */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/**
 * Max pooling over NCHW input; see `maxPool2d` for the tie rule.
 *
 * @example
 * new MaxPool2d({ kernelSize: 2 }).forward(zeros([1, 3, 8, 8])).shape; // [1, 3, 4, 4]
 */
export class MaxPool2d extends Module {
  constructor(readonly options: Pool2dOptions) {
    checkOptions("MaxPool2d", options, { kernelSize: "pair", stride: "pair", padding: "pair" });
    super();
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.options);
  }
}

/**
 * Nearest-neighbour upsampling by integer factors (the "nearest" mode of PyTorch's `Upsample`).
 *
 * @example
 * new Upsample({ scaleFactor: 2 }).forward(zeros([1, 8, 4, 4])).shape; // [1, 8, 8, 8]
 */
export class Upsample extends Module {
  constructor(readonly options: { scaleFactor: Pair; mode?: "nearest" }) {
    checkOptions("Upsample", options, { scaleFactor: "pair", mode: "string" });
    super();
    if (options?.mode !== undefined && options.mode !== "nearest") {
      throw new Error(
        `Upsample: only mode "nearest" is supported, got ${JSON.stringify(options.mode)}`,
      );
    }
  }

  forward(x: Tensor): Tensor {
    return upsampleNearest2d(x, { scaleFactor: this.options.scaleFactor });
  }
}

/**
 * Flattens every axis from `startAxis` (default 1, keeping the batch axis) into one.
 *
 * @example
 * new Flatten().forward(zeros([2, 3, 4, 4])).shape; // [2, 48]
 */
export class Flatten extends Module {
  constructor(readonly startAxis = 1) {
    super();
  }

  forward(x: Tensor): Tensor {
    checkTensor("Flatten", "x", x);
    if (this.startAxis < 0 || this.startAxis >= Math.max(1, x.rank)) {
      throw new Error(
        `Flatten: startAxis ${this.startAxis} is out of range for x of shape ${formatShape(x.shape)}`,
      );
    }
    return reshape(x, [...x.shape.slice(0, this.startAxis), -1]);
  }
}
