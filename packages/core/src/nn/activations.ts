/** Parameter-free layers as PyTorch names them: Identity, the activations, Softmax and Dropout. */

import { mul } from "../ops/arithmetic.js";
import { greater } from "../ops/compare.js";
import { tensor } from "../ops/creation.js";
import { type GeluOptions, gelu, geluApproximation, sigmoid, tanh } from "../ops/math.js";
import { softmax } from "../ops/reduce.js";
import { where } from "../ops/selection.js";
import { checkFloat, checkTensor } from "../ops/util.js";
import { type Generator, generatorOf, type RandomSource } from "../random.js";
import type { Tensor } from "../tensor.js";
import { Module } from "./module.js";

/**
 * Returns its input unchanged (PyTorch's `nn.Identity`): a placeholder where a layer is optional.
 *
 * @example
 * new Identity().forward(tensor([1, 2])); // the same tensor
 */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    checkTensor("Identity", "x", x);
    return x;
  }
}

/**
 * `x` where `x > 0`, else `negativeSlope · x` (PyTorch's `nn.LeakyReLU`). The gradient at 0 is
 * `negativeSlope`, PyTorch's subgradient.
 *
 * @example
 * new LeakyReLU(0.1).forward(tensor([-2, 3])); // [-0.2, 3]
 */
export class LeakyReLU extends Module {
  /** The activation with slope `negativeSlope` (default 0.01) below 0. */
  constructor(
    /** The slope for negative inputs. */
    readonly negativeSlope = 0.01,
  ) {
    super();
    if (typeof negativeSlope !== "number" || !Number.isFinite(negativeSlope)) {
      throw new Error(`LeakyReLU: negativeSlope must be a finite number, got ${negativeSlope}`);
    }
  }

  forward(x: Tensor): Tensor {
    checkFloat("LeakyReLU", "x", x);
    return where(greater(x, 0), x, mul(x, this.negativeSlope));
  }
}

/**
 * `x · sigmoid(x)`, the sigmoid-weighted linear unit (PyTorch's `nn.SiLU`, also called swish).
 *
 * @example
 * new SiLU().forward(tensor([0, 1])); // [0, 0.7310…]
 */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    checkFloat("SiLU", "x", x);
    return mul(x, sigmoid(x));
  }
}

/**
 * The Gaussian error linear unit (PyTorch's `nn.GELU`): `x · Φ(x)` through `erf`, or with
 * `{ approximate: "tanh" }` PyTorch's tanh approximation (see {@link gelu}).
 *
 * @example
 * new GELU().forward(tensor([0, 1]));                        // [0, 0.8413]
 * new GELU({ approximate: "tanh" }).forward(tensor([0, 1])); // [0, 0.8412]
 */
export class GELU extends Module {
  /** `"none"` (exact, the default) or `"tanh"`. */
  readonly approximate: "none" | "tanh";

  /** The exact GELU, or its tanh approximation with `{ approximate: "tanh" }`. */
  constructor(options: GeluOptions = {}) {
    super();
    // Checked here, not at the first forward: a typo fails where the model is built.
    this.approximate = geluApproximation("GELU", options);
  }

  forward(x: Tensor): Tensor {
    checkFloat("GELU", "x", x);
    return gelu(x, { approximate: this.approximate });
  }
}

/**
 * The logistic function `1 / (1 + exp(−x))` elementwise (PyTorch's `nn.Sigmoid`).
 *
 * @example
 * new Sigmoid().forward(tensor([0])); // [0.5]
 */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/**
 * The hyperbolic tangent elementwise (PyTorch's `nn.Tanh`).
 *
 * @example
 * new Tanh().forward(tensor([0])); // [0]
 */
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/**
 * Softmax along `axis` (PyTorch's `nn.Softmax(dim)`): non-negative values that sum to 1 there.
 *
 * @example
 * new Softmax(-1).forward(tensor([[0, 0]])); // [[0.5, 0.5]]
 */
export class Softmax extends Module {
  /** Softmax over `axis` (default -1, the last). */
  constructor(
    /** The axis whose values sum to 1; negative counts from the end. */
    readonly axis = -1,
  ) {
    super();
    if (!Number.isInteger(axis)) {
      throw new Error(`Softmax: axis must be an integer, got ${axis}`);
    }
  }

  forward(x: Tensor): Tensor {
    return softmax(x, this.axis);
  }
}

/** Options of `Dropout`: the drop probability and where the masks are drawn from. */
export interface DropoutOptions extends RandomSource {
  /** Probability of zeroing an element, in [0, 1]. Default 0.5. */
  p?: number;
}

/**
 * Inverted dropout (PyTorch's `nn.Dropout`): in training mode each element is zeroed with
 * probability `p` and the others are scaled by `1 / (1 − p)`, so the expected value is unchanged;
 * in eval mode it is the identity. The mask of each call is drawn from the layer's generator (the
 * default one unless `generator` or `seed` is given); `p = 1` zeroes everything.
 *
 * @example
 * const drop = new Dropout({ p: 0.2, seed: 0 });
 * drop.forward(ones([2, 4]));        // entries 0 or 1.25
 * drop.eval().forward(ones([2, 4])); // ones
 */
export class Dropout extends Module {
  /** The probability of zeroing an element. */
  readonly p: number;
  readonly #generator: Generator;

  /** Dropout with probability `options.p` (default 0.5). */
  constructor(options: DropoutOptions = {}) {
    super();
    this.p = options.p ?? 0.5;
    if (typeof this.p !== "number" || !(this.p >= 0 && this.p <= 1)) {
      throw new Error(`Dropout: p must be a probability in [0, 1], got ${String(this.p)}`);
    }
    this.#generator = generatorOf("Dropout", options);
  }

  forward(x: Tensor): Tensor {
    checkFloat("Dropout", "x", x);
    if (!this.training || this.p === 0) return x;
    const keep = this.p === 1 ? 0 : 1 / (1 - this.p);
    const mask = new (x.dtype === "float64" ? Float64Array : Float32Array)(x.size);
    for (let i = 0; i < mask.length; i++) mask[i] = this.#generator.uniform() < this.p ? 0 : keep;
    return mul(x, tensor(mask, { shape: x.shape }));
  }
}
