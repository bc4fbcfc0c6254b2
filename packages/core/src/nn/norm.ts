/** Normalisation layers: GroupNorm (batch-independent, the usual choice in detector heads), BatchNorm1d/2d with running statistics, and LayerNorm. */

import { allocate } from "../dtype.js";
import { add, div, mul, square, sub } from "../ops/arithmetic.js";
import { sqrt } from "../ops/math.js";
import { mean } from "../ops/reduce.js";
import { reshape } from "../ops/shape.js";
import { checkFloat, checkOptions } from "../ops/util.js";
import { formatShape, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";
import { writeInPlace } from "./inplace.js";
import { Module } from "./module.js";

/** Options of the normalisation layers: epsilon, the learned affine transform, the dtype. */
export interface NormOptions {
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Learn a scale (weight, starting at 1) and shift (bias, starting at 0) per channel. Default true. */
  affine?: boolean;
  /** Default float32. */
  dtype?: "float32" | "float64";
}

const normOptions = { eps: "number", affine: "boolean", dtype: "floatDtype" } as const;

function filled(n: number, value: number, dtype: "float32" | "float64"): Tensor {
  const data = allocate(dtype, n);
  data.fill(value);
  return new Tensor(data, [n], dtype);
}

function checkChannels(op: string, x: Tensor, channels: number): void {
  checkFloat(op, "x", x);
  if (x.rank < 2 || x.shape[1] !== channels) {
    throw new Error(
      `${op}: x of shape ${formatShape(x.shape)} must be [batch, ${channels}, ...] (${channels} channels)`,
    );
  }
}

/** weight and bias [C] as [1, C, 1, …] so they broadcast over x. */
function channelView(t: Tensor, rank: number): Tensor {
  return reshape(t, [1, t.size, ...new Array<number>(rank - 2).fill(1)]);
}

/**
 * Group normalisation (Wu and He, 2018): x [B, C, …] is normalised by the mean and (biased)
 * variance of each of `numGroups` channel groups of each sample, then scaled and shifted per
 * channel. Independent of the batch, so train and eval behave the same.
 *
 * @example
 * const gn = new GroupNorm(4, 16);
 * gn.forward(uniform([2, 16, 8, 8], { seed: 0 })).shape; // [2, 16, 8, 8]
 */
export class GroupNorm extends Module {
  /** The learned scale per channel, [numChannels] (starts at 1), or null without `affine`. */
  readonly weight: Tensor | null;
  /** The learned shift per channel, [numChannels] (starts at 0), or null without `affine`. */
  readonly bias: Tensor | null;
  /** Added to the variance before the square root. */
  readonly eps: number;

  /** Normalisation of `numChannels` channels in `numGroups` groups (which must divide them). */
  constructor(
    /** How many groups the channels are split into. */
    readonly numGroups: number,
    /** Channels of the input, C (axis 1). */
    readonly numChannels: number,
    options: NormOptions = {},
  ) {
    super();
    checkOptions("GroupNorm", options, normOptions);
    if (!Number.isInteger(numGroups) || numGroups < 1 || numChannels % numGroups !== 0) {
      throw new Error(
        `GroupNorm: numGroups (${numGroups}) must be an integer >= 1 that divides numChannels (${numChannels})`,
      );
    }
    this.eps = options.eps ?? 1e-5;
    const dtype = options.dtype ?? "float32";
    const affine = options.affine ?? true;
    this.weight = affine ? this.addParameter("weight", filled(numChannels, 1, dtype)) : null;
    this.bias = affine ? this.addParameter("bias", filled(numChannels, 0, dtype)) : null;
  }

  forward(x: Tensor): Tensor {
    checkChannels("GroupNorm", x, this.numChannels);
    // The group size is spelt out: a -1 cannot be inferred from an empty batch.
    const groupSize = (this.numChannels / this.numGroups) * sizeOf(x.shape.slice(2));
    const grouped = reshape(x, [x.shape[0], this.numGroups, groupSize]);
    const mu = mean(grouped, { axis: 2, keepdims: true });
    const centred = sub(grouped, mu);
    const variance = mean(square(centred), { axis: 2, keepdims: true });
    let y = reshape(div(centred, sqrt(add(variance, this.eps))), x.shape);
    if (this.weight !== null) y = mul(y, channelView(this.weight, x.rank));
    if (this.bias !== null) y = add(y, channelView(this.bias, x.rank));
    return y;
  }
}

/** Options of `BatchNorm2d`: those of every norm, and the running averages' momentum. */
export interface BatchNormOptions extends NormOptions {
  /** Weight of the new batch in the running averages. Default 0.1 (PyTorch's). */
  momentum?: number;
}

/**
 * Batch normalisation over NCHW input. In training mode each channel is normalised by the batch's
 * mean and biased variance, and the running averages (buffers `running_mean`, `running_var` with
 * the unbiased variance, and `num_batches_tracked`, PyTorch's names) are updated; in eval mode
 * the running averages are used instead.
 *
 * @example
 * const bn = new BatchNorm2d(8);
 * bn.forward(uniform([4, 8, 5, 5], { seed: 0 })); // updates bn.runningMean
 * bn.eval().forward(uniform([1, 8, 5, 5], { seed: 1 }));
 */
export class BatchNorm2d extends Module {
  /** @internal The input ranks this layer accepts, and how it names them in errors. */
  protected readonly layout: { ranks: readonly number[]; text: string } = {
    ranks: [4],
    text: "rank 4 [batch, channels, height, width]",
  };

  /** The learned scale per channel, [numFeatures] (starts at 1), or null without `affine`. */
  readonly weight: Tensor | null;
  /** The learned shift per channel, [numFeatures] (starts at 0), or null without `affine`. */
  readonly bias: Tensor | null;
  /** The running mean per channel (buffer `running_mean`), used in eval mode. */
  readonly runningMean: Tensor;
  /** The running unbiased variance per channel (buffer `running_var`), used in eval mode. */
  readonly runningVar: Tensor;
  /** How many training batches updated the running averages (buffer `num_batches_tracked`). */
  readonly numBatchesTracked: Tensor;
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Weight of the new batch in the running averages. */
  readonly momentum: number;

  /** Batch normalisation of `numFeatures` channels. */
  constructor(
    /** Channels of the input, C (axis 1). */
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    checkOptions("BatchNorm2d", options, { ...normOptions, momentum: "number" });
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(
        `${this.constructor.name}: numFeatures must be an integer >= 1, got ${numFeatures}`,
      );
    }
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new Error(`${this.constructor.name}: momentum must be in [0, 1], got ${this.momentum}`);
    }
    const dtype = options.dtype ?? "float32";
    const affine = options.affine ?? true;
    this.weight = affine ? this.addParameter("weight", filled(numFeatures, 1, dtype)) : null;
    this.bias = affine ? this.addParameter("bias", filled(numFeatures, 0, dtype)) : null;
    this.runningMean = this.addBuffer("running_mean", filled(numFeatures, 0, dtype));
    this.runningVar = this.addBuffer("running_var", filled(numFeatures, 1, dtype));
    // PyTorch stores an int64 here; int32 loads into it (load_state_dict copies across dtypes).
    this.numBatchesTracked = this.addBuffer(
      "num_batches_tracked",
      new Tensor(new Int32Array(1), [], "int32"),
    );
  }

  forward(x: Tensor): Tensor {
    const op = this.constructor.name;
    checkChannels(op, x, this.numFeatures);
    if (!this.layout.ranks.includes(x.rank)) {
      throw new Error(`${op}: x must have ${this.layout.text}, got shape ${formatShape(x.shape)}`);
    }
    const axes = x.shape.map((_, axis) => axis).filter((axis) => axis !== 1);
    let y: Tensor;
    // An empty batch has no statistics: like PyTorch, the result is empty and nothing is updated.
    if (this.training && x.size > 0) {
      const count = x.size / this.numFeatures;
      if (count < 2) {
        throw new Error(
          `${op}: training needs more than one value per channel, got x of shape ${formatShape(x.shape)}`,
        );
      }
      const mu = mean(x, { axis: axes, keepdims: true });
      const centred = sub(x, mu);
      const variance = mean(square(centred), { axis: axes, keepdims: true });
      y = div(centred, sqrt(add(variance, this.eps)));
      writeInPlace([this.runningMean, this.runningVar, this.numBatchesTracked], () => {
        const m = this.momentum;
        const runningMean = this.runningMean.writable();
        const runningVar = this.runningVar.writable();
        const unbiased = count / (count - 1);
        for (let c = 0; c < this.numFeatures; c++) {
          runningMean[c] = (1 - m) * runningMean[c] + m * mu.read()[c];
          runningVar[c] = (1 - m) * runningVar[c] + m * variance.read()[c] * unbiased;
        }
        this.numBatchesTracked.writable()[0] += 1;
      });
    } else {
      const mu = channelView(this.runningMean, x.rank);
      y = div(sub(x, mu), sqrt(add(channelView(this.runningVar, x.rank), this.eps)));
    }
    if (this.weight !== null) y = mul(y, channelView(this.weight, x.rank));
    if (this.bias !== null) y = add(y, channelView(this.bias, x.rank));
    return y;
  }
}

/**
 * Batch normalisation over `[N, C]` or `[N, C, L]` input (PyTorch's `nn.BatchNorm1d`): the same
 * statistics, buffers and train/eval behaviour as `BatchNorm2d`, per channel C over every other
 * axis.
 *
 * @example
 * const bn = new BatchNorm1d(3);
 * bn.forward(uniform([8, 3], { seed: 0 })).shape; // [8, 3]
 */
export class BatchNorm1d extends BatchNorm2d {
  /** @internal */
  protected override readonly layout = {
    ranks: [2, 3],
    text: "rank 2 [batch, channels] or 3 [batch, channels, length]",
  };
}

/** Options of `LayerNorm`: epsilon, the learned affine transform, the dtype. */
export interface LayerNormOptions {
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
  /** Learn a scale (starting at 1) and shift (starting at 0) of `normalizedShape`. Default true. */
  elementwiseAffine?: boolean;
  /** Default float32. */
  dtype?: "float32" | "float64";
}

/**
 * Layer normalisation (Ba et al., 2016; PyTorch's `nn.LayerNorm`): each sample is normalised by
 * the mean and biased variance of its last `normalizedShape.length` axes, which must equal
 * `normalizedShape`, then scaled and shifted elementwise. The same in train and eval mode.
 *
 * @example
 * const ln = new LayerNorm([4]);
 * ln.forward(tensor([[1, 2, 3, 4]])); // [[-1.3416…, -0.4472…, 0.4472…, 1.3416…]]
 */
export class LayerNorm extends Module {
  /** The shape of the normalised trailing axes. */
  readonly normalizedShape: readonly number[];
  /** The learned scale, of `normalizedShape` (starts at 1), or null without `elementwiseAffine`. */
  readonly weight: Tensor | null;
  /** The learned shift, of `normalizedShape` (starts at 0), or null without `elementwiseAffine`. */
  readonly bias: Tensor | null;
  /** Added to the variance before the square root. */
  readonly eps: number;

  /** Normalisation over trailing axes of shape `normalizedShape` (one size for a single axis). */
  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new Error(
        `LayerNorm: normalizedShape must be one or more integers >= 1, got ${JSON.stringify(normalizedShape)}`,
      );
    }
    this.normalizedShape = Object.freeze(shape);
    this.eps = options.eps ?? 1e-5;
    const dtype = options.dtype ?? "float32";
    const size = shape.reduce((a, b) => a * b, 1);
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine
      ? this.addParameter("weight", reshape(filled(size, 1, dtype), shape))
      : null;
    this.bias = affine ? this.addParameter("bias", reshape(filled(size, 0, dtype), shape)) : null;
  }

  forward(x: Tensor): Tensor {
    checkFloat("LayerNorm", "x", x);
    const k = this.normalizedShape.length;
    const trailing = x.shape.slice(x.rank - k);
    if (x.rank < k || trailing.some((d, i) => d !== this.normalizedShape[i])) {
      throw new Error(
        `LayerNorm: x of shape ${formatShape(x.shape)} must end in normalizedShape ${formatShape(this.normalizedShape)}`,
      );
    }
    const axes = trailing.map((_, i) => x.rank - k + i);
    const mu = mean(x, { axis: axes, keepdims: true });
    const centred = sub(x, mu);
    const variance = mean(square(centred), { axis: axes, keepdims: true });
    let y = div(centred, sqrt(add(variance, this.eps)));
    if (this.weight !== null) y = mul(y, this.weight);
    if (this.bias !== null) y = add(y, this.bias);
    return y;
  }
}
