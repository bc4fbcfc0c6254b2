/** Normalisation layers: GroupNorm (batch-independent, the usual choice in detector heads) and BatchNorm2d with running statistics. */

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
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(
    readonly numGroups: number,
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
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  readonly eps: number;
  readonly momentum: number;

  constructor(
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    checkOptions("BatchNorm2d", options, { ...normOptions, momentum: "number" });
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new Error(`BatchNorm2d: numFeatures must be an integer >= 1, got ${numFeatures}`);
    }
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    if (!(this.momentum >= 0 && this.momentum <= 1)) {
      throw new Error(`BatchNorm2d: momentum must be in [0, 1], got ${this.momentum}`);
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
    checkChannels("BatchNorm2d", x, this.numFeatures);
    if (x.rank !== 4) {
      throw new Error(
        `BatchNorm2d: x must have rank 4 [batch, channels, height, width], got shape ${formatShape(x.shape)}`,
      );
    }
    const axes = [0, 2, 3];
    let y: Tensor;
    // An empty batch has no statistics: like PyTorch, the result is empty and nothing is updated.
    if (this.training && x.size > 0) {
      const count = x.size / this.numFeatures;
      if (count < 2) {
        throw new Error(
          `BatchNorm2d: training needs more than one value per channel, got x of shape ${formatShape(x.shape)}`,
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
      const mu = channelView(this.runningMean, 4);
      y = div(sub(x, mu), sqrt(add(channelView(this.runningVar, 4), this.eps)));
    }
    if (this.weight !== null) y = mul(y, channelView(this.weight, 4));
    if (this.bias !== null) y = add(y, channelView(this.bias, 4));
    return y;
  }
}
