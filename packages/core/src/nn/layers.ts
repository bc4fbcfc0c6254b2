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
import { type InterpolateOptions, interpolate } from "../ops/interpolate.js";
import { relu } from "../ops/math.js";
import { matmulTransposed } from "../ops/matmul.js";
import { reshape } from "../ops/shape.js";
import { checkOptions, checkTensor } from "../ops/util.js";
import { type Generator, generatorOf, type RandomSource } from "../random.js";
import { formatShape } from "../shape.js";
import { Tensor } from "../tensor.js";
import { Module } from "./module.js";

const layerOptions = {
  bias: "boolean",
  dtype: "floatDtype",
  generator: "generator",
  seed: "integer",
} as const;

/** Options of the layers with weights: bias, dtype, and where the initial weights are drawn from. */
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
  /** The learned weight, [outFeatures, inFeatures]. */
  readonly weight: Tensor;
  /** The learned bias, [outFeatures], or null when made with `bias: false`. */
  readonly bias: Tensor | null;

  /**
   * A layer from `inFeatures` to `outFeatures` values, its weights drawn from `options.generator`,
   * a fresh generator of `options.seed`, or the default generator (`manualSeed`).
   */
  constructor(
    /** Size of the last axis of the input. */
    readonly inFeatures: number,
    /** Size of the last axis of the output. */
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

/** Options of the `Conv2d` layer: those of `conv2d` (without the bias tensor) and of every layer. */
export interface Conv2dLayerOptions extends LayerOptions {
  /** Step of the window, [h, w] or one for both. Default 1. */
  stride?: Pair;
  /** Zero padding, [h, w], one for both, or "same" / "valid" (see `conv2d`). Default 0. */
  padding?: Conv2dOptions["padding"];
  /** Spacing of the kernel's taps, [h, w] or one for both. Default 1. */
  dilation?: Pair;
  /** Channel groups; must divide both channel counts. Default 1. */
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
  /** The learned kernels, [outChannels, inChannels / groups, kh, kw]. */
  readonly weight: Tensor;
  /** The learned bias, [outChannels], or null when made with `bias: false`. */
  readonly bias: Tensor | null;
  /** The stride, padding, dilation and groups every forward pass uses. */
  readonly options: Conv2dOptions;

  /**
   * A convolution from `inChannels` to `outChannels` with a `kernelSize` window ([kh, kw] or one
   * size for both); weights drawn as `Linear`'s.
   */
  constructor(
    /** Channels of the input, Cin. */
    readonly inChannels: number,
    /** Channels of the output, Cout. */
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
 * Max pooling over NCHW input; see `maxPool2d` for the tie rule. Made as PyTorch's
 * `nn.MaxPool2d(kernel_size, stride, padding)` is, or from a `Pool2dOptions` object.
 *
 * @example
 * new MaxPool2d(2).forward(zeros([1, 3, 8, 8])).shape; // [1, 3, 4, 4]
 * new MaxPool2d(3, { stride: 2, padding: 1 });
 * new MaxPool2d({ kernelSize: 2 });
 */
export class MaxPool2d extends Module {
  /** The window, its stride and padding. */
  readonly options: Pool2dOptions;

  /**
   * Pooling with a `kernelSize` window ([h, w] or one size for both; stride defaults to the window,
   * padding to 0), or with every setting of `options` in one object.
   */
  constructor(kernelSize: Pair | Pool2dOptions, options: Omit<Pool2dOptions, "kernelSize"> = {}) {
    super();
    const window = { stride: "pair", padding: "pair" } as const;
    this.options =
      typeof kernelSize === "number" || Array.isArray(kernelSize)
        ? { ...checkOptions("MaxPool2d", options, window), kernelSize: kernelSize as Pair }
        : checkOptions("MaxPool2d", kernelSize as Pool2dOptions, { ...window, kernelSize: "pair" });
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.options);
  }
}

/**
 * Upsampling (PyTorch's `nn.Upsample`): "nearest" (the default) or "bilinear", to a `size` or by a
 * `scaleFactor`, with `alignCorners` for bilinear; see `interpolate` for the index rules.
 *
 * @example
 * new Upsample({ scaleFactor: 2 }).forward(zeros([1, 8, 4, 4])).shape; // [1, 8, 8, 8]
 * new Upsample({ size: [7, 7], mode: "bilinear" }).forward(zeros([1, 8, 4, 4])).shape; // [1, 8, 7, 7]
 */
export class Upsample extends Module {
  /** Upsampling with the size or factor, mode and corner convention of `options`. */
  constructor(
    /** As `interpolate`'s options: `size` or `scaleFactor`, `mode`, `alignCorners`. */
    readonly options: InterpolateOptions,
  ) {
    super();
    checkOptions("Upsample", options, {
      size: "pair",
      scaleFactor: "pair",
      mode: "string",
      alignCorners: "boolean",
    });
    const mode = options?.mode;
    if (mode !== undefined && mode !== "nearest" && mode !== "bilinear") {
      throw new Error(
        `Upsample: mode must be "nearest" or "bilinear", got ${JSON.stringify(mode)}`,
      );
    }
  }

  forward(x: Tensor): Tensor {
    const { scaleFactor, size, mode = "nearest" } = this.options;
    // Integer factors in nearest mode are block copies: the dedicated kernel does them directly.
    const integral =
      size === undefined &&
      (typeof scaleFactor === "number" ? [scaleFactor] : (scaleFactor ?? [0.5])).every((f) =>
        Number.isInteger(f),
      );
    if (mode === "nearest" && integral) {
      return upsampleNearest2d(x, { scaleFactor: scaleFactor as Pair });
    }
    return interpolate(x, this.options);
  }
}

/**
 * Flattens every axis from `startAxis` (default 1, keeping the batch axis) into one.
 *
 * @example
 * new Flatten().forward(zeros([2, 3, 4, 4])).shape; // [2, 48]
 */
export class Flatten extends Module {
  /** Flattening from `startAxis` on. */
  constructor(
    /** The first axis folded into the last one. Default 1. */
    readonly startAxis = 1,
  ) {
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
