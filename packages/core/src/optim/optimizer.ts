/** Optimisers (SGD with momentum and Nesterov, Adam, AdamW) that update parameters in place from their `.grad`, with state per parameter. */

import { isFloat } from "../dtype.js";
import { writeInPlace } from "../nn/inplace.js";
import { checkOptions } from "../ops/util.js";
import { formatShape, shapesEqual } from "../shape.js";
import { Tensor } from "../tensor.js";

function checkNumber(
  op: string,
  name: string,
  value: number,
  ok: (v: number) => boolean,
  expected: string,
): void {
  if (typeof value !== "number" || !Number.isFinite(value) || !ok(value)) {
    throw new Error(`${op}: ${name} must be ${expected}, got ${value}`);
  }
}

/**
 * What every optimiser shares: the parameters, a learning rate that schedules may change
 * between steps, state per parameter, and `zeroGrad()`. Steps write straight into each
 * parameter's `data`, so no op is recorded and views of a parameter (from `reshape`) see the
 * update, as in PyTorch.
 *
 * @example
 * const opt: Optimizer = new SGD(model.parameters(), { lr: 0.1 });
 * for (const { x, y } of batches) {
 *   opt.zeroGrad();
 *   mean(bceWithLogits(model.forward(x), y)).backward();
 *   opt.step();
 * }
 */
export abstract class Optimizer {
  readonly params: readonly Tensor[];
  /** The learning rate of the next step; schedules set it. */
  lr: number;
  /** How many times `step()` has run. */
  stepCount = 0;
  protected readonly state = new Map<Tensor, Float64Array[]>();

  constructor(
    readonly name: string,
    params: Iterable<Tensor>,
    lr: number,
  ) {
    const list = [...params];
    if (list.length === 0) throw new Error(`${name}: got an empty list of parameters`);
    list.forEach((p, i) => {
      if (!(p instanceof Tensor) || !isFloat(p.dtype) || !p.requiresGrad || !p.isLeaf) {
        throw new Error(
          `${name}: params[${i}] must be a float leaf tensor that requires gradients (pass module.parameters())`,
        );
      }
    });
    if (new Set(list).size !== list.length) {
      throw new Error(`${name}: a parameter appears more than once in params`);
    }
    checkNumber(name, "lr", lr, (v) => v >= 0, "a number >= 0");
    this.params = list;
    this.lr = lr;
  }

  /** Clears every parameter's `.grad` (PyTorch's `set_to_none`), ready for the next backward pass. */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** Applies one update to every parameter that has a gradient; the others are left alone. */
  step(): void {
    checkNumber(this.name, "lr", this.lr, (v) => v >= 0, "a number >= 0");
    const stepped = this.params.filter((p) => p.grad !== null);
    for (const p of stepped) {
      const g = p.grad!;
      if (!shapesEqual(g.shape, p.shape)) {
        throw new Error(
          `${this.name}: the gradient of shape ${formatShape(g.shape)} does not match its parameter's shape ${formatShape(p.shape)}`,
        );
      }
    }
    this.stepCount++;
    writeInPlace(stepped, () => {
      for (const p of stepped) {
        let slots = this.state.get(p);
        if (slots === undefined) {
          slots = this.initialState(p);
          this.state.set(p, slots);
        }
        this.update(p.writable(), p.grad!.read(), slots);
      }
    });
  }

  /** Fresh per-parameter state (buffers of the parameter's size). */
  protected abstract initialState(p: Tensor): Float64Array[];

  /** Updates `param` in place from `grad`, with this parameter's state `slots`. */
  protected abstract update(
    param: Tensor["data"],
    grad: Tensor["data"],
    slots: Float64Array[],
  ): void;
}

export interface SGDOptions {
  lr: number;
  /** Default 0. */
  momentum?: number;
  /** Scales the new gradient into the momentum buffer by 1 − dampening. Default 0. */
  dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov?: boolean;
  /** L2 penalty added to the gradient: g + weightDecay · p. Default 0. */
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with PyTorch's update: g ← ∇ + λp; with momentum μ,
 * b ← μb + (1 − dampening)g (b = g on the first step) and g ← b, or g ← g + μb for Nesterov;
 * then p ← p − lr · g.
 *
 * @example
 * const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true });
 * opt.zeroGrad(); loss.backward(); opt.step();
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;

  constructor(params: Iterable<Tensor>, options: SGDOptions) {
    super(
      "SGD",
      params,
      checkOptions("SGD", options, {
        lr: "number",
        momentum: "number",
        dampening: "number",
        nesterov: "boolean",
        weightDecay: "number",
      }).lr,
    );
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    this.weightDecay = options.weightDecay ?? 0;
    checkNumber("SGD", "momentum", this.momentum, (v) => v >= 0, "a number >= 0");
    checkNumber("SGD", "dampening", this.dampening, () => true, "a finite number");
    checkNumber("SGD", "weightDecay", this.weightDecay, (v) => v >= 0, "a number >= 0");
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error(
        `SGD: nesterov needs momentum > 0 and dampening 0, got momentum ${this.momentum} and dampening ${this.dampening}`,
      );
    }
  }

  protected initialState(): Float64Array[] {
    return [];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: Float64Array[]): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = this;
    // PyTorch starts the momentum buffer at the first gradient, not at zero.
    const first = momentum !== 0 && slots.length === 0;
    if (first) slots.push(new Float64Array(param.length));
    const buffer = slots[0];
    for (let i = 0; i < param.length; i++) {
      let g = grad[i] + weightDecay * param[i];
      if (momentum !== 0) {
        buffer[i] = first ? g : momentum * buffer[i] + (1 - dampening) * g;
        g = nesterov ? g + momentum * buffer[i] : buffer[i];
      }
      param[i] -= lr * g;
    }
  }
}

const adamOptions = {
  lr: "number",
  betas: "numberPair",
  eps: "number",
  weightDecay: "number",
} as const;

export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Decay rates of the first and second moment averages. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to √v̂ in the denominator. Default 1e-8. */
  eps?: number;
  /** For Adam: an L2 penalty added to the gradient. For AdamW: decoupled decay. */
  weightDecay?: number;
}

/**
 * Adam (Kingma and Ba, 2015) as PyTorch implements it: g ← ∇ + λp, m ← β₁m + (1 − β₁)g,
 * v ← β₂v + (1 − β₂)g², p ← p − lr · m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ).
 * t counts the steps this parameter has taken.
 *
 * @example
 * const opt = new Adam(model.parameters(), { lr: 1e-3 });
 */
export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Decoupled weight decay (AdamW) instead of an L2 term in the gradient. */
  protected readonly decoupled: boolean = false;
  private readonly steps = new WeakMap<Float64Array, number>();

  constructor(
    params: Iterable<Tensor>,
    options: AdamOptions = {},
    name = "Adam",
    defaultDecay = 0,
  ) {
    super(name, params, checkOptions(name, options, adamOptions).lr ?? 1e-3);
    const [beta1, beta2] = options.betas ?? [0.9, 0.999];
    checkNumber(name, "betas[0]", beta1, (v) => v >= 0 && v < 1, "in [0, 1)");
    checkNumber(name, "betas[1]", beta2, (v) => v >= 0 && v < 1, "in [0, 1)");
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = options.eps ?? 1e-8;
    checkNumber(name, "eps", this.eps, (v) => v >= 0, "a number >= 0");
    this.weightDecay = options.weightDecay ?? defaultDecay;
    checkNumber(name, "weightDecay", this.weightDecay, (v) => v >= 0, "a number >= 0");
  }

  protected initialState(p: Tensor): Float64Array[] {
    return [new Float64Array(p.size), new Float64Array(p.size)];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: Float64Array[]): void {
    const [m, v] = slots;
    const t = (this.steps.get(m) ?? 0) + 1;
    this.steps.set(m, t);
    const { lr, beta1, beta2, eps, weightDecay } = this;
    const correction1 = 1 - beta1 ** t;
    const correction2 = 1 - beta2 ** t;
    const decay = this.decoupled ? 1 - lr * weightDecay : 1;
    const l2 = this.decoupled ? 0 : weightDecay;
    for (let i = 0; i < param.length; i++) {
      const p = param[i] * decay;
      const g = grad[i] + l2 * param[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      param[i] = p - (lr * (m[i] / correction1)) / (Math.sqrt(v[i] / correction2) + eps);
    }
  }
}

/**
 * AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay, p ← p(1 − lr · λ)
 * before the Adam step, instead of an L2 term in the gradient. Default λ = 0.01 (PyTorch's).
 *
 * @example
 * const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 1e-4 });
 */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    super(params, options, "AdamW", 0.01);
  }
}
