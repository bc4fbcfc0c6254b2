/** Optimisers (SGD with momentum and Nesterov, Adam, AdamW, RMSprop) that update parameters in place from their `.grad`, with state per parameter that can be saved and restored. */

import { isFloat } from "../dtype.js";
import { writeInPlace } from "../nn/inplace.js";
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

/** An optimiser's `stateDict()`: plain numbers and arrays, safe to `JSON.stringify`. */
export interface OptimizerState {
  /** Which optimiser made it ("SGD", "Adam", …). */
  name: string;
  /** The learning rate at the time. */
  lr: number;
  /** How many steps had run. */
  stepCount: number;
  /** Each parameter's buffers, by the parameter's index in `params` (absent: no step yet). */
  state: Record<number, number[][]>;
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
  /** The parameters this optimiser updates, in the order given. */
  readonly params: readonly Tensor[];
  /** The learning rate of the next step; schedules set it. */
  lr: number;
  /** How many times `step()` has run. */
  stepCount = 0;
  /** The per-parameter buffers of a subclass (momentum, moments), made by `initialState` on first use. */
  protected readonly state = new Map<Tensor, Float64Array[]>();

  /**
   * Checks `params` (float leaves that require gradients, each once) and `lr` (>= 0); `name`
   * prefixes every error message.
   */
  constructor(
    /** The optimiser's name, as errors show it ("SGD", "Adam", …). */
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

  /**
   * The optimiser's state as plain data (PyTorch's `optimizer.state_dict()`): the learning rate,
   * the step count, and each parameter's buffers by its index in `params`, copied. JSON-safe.
   *
   * @example
   * const saved = JSON.stringify(opt.stateDict());
   * fresh.loadStateDict(JSON.parse(saved)); // resumes where opt stopped
   */
  stateDict(): OptimizerState {
    const state: OptimizerState["state"] = {};
    this.params.forEach((p, i) => {
      const slots = this.state.get(p);
      if (slots !== undefined) state[i] = slots.map((slot) => Array.from(slot));
    });
    return { name: this.name, lr: this.lr, stepCount: this.stepCount, state };
  }

  /**
   * Restores a `stateDict()` of an optimiser of the same kind over parameters of the same shapes,
   * in the same order; checks everything before changing anything.
   */
  loadStateDict(saved: OptimizerState): void {
    const op = `${this.name}.loadStateDict`;
    if (saved === null || typeof saved !== "object" || saved.name !== this.name) {
      throw new Error(
        `${op}: expected the state of a ${this.name} optimiser, got ${saved === null || typeof saved !== "object" ? String(saved) : `one of ${JSON.stringify(saved.name)}`}`,
      );
    }
    checkNumber(op, "lr", saved.lr, (v) => v >= 0, "a number >= 0");
    checkNumber(
      op,
      "stepCount",
      saved.stepCount,
      (v) => Number.isInteger(v) && v >= 0,
      "an integer >= 0",
    );
    const restored = new Map<Tensor, Float64Array[]>();
    for (const [key, slots] of Object.entries(saved.state ?? {})) {
      const index = Number(key);
      const p = this.params[index];
      if (p === undefined) {
        throw new Error(
          `${op}: the state has buffers for parameter ${key}, but the optimiser has ${this.params.length} parameters`,
        );
      }
      const expected = this.initialState(p).map((slot) => slot.length);
      const lengths = Array.isArray(slots) ? slots.map((slot) => slot.length) : [];
      if (lengths.join() !== expected.join()) {
        throw new Error(
          `${op}: the buffers of parameter ${key} have lengths [${lengths.join(", ")}], expected [${expected.join(", ")}] for a parameter of shape ${formatShape(p.shape)}`,
        );
      }
      restored.set(
        p,
        slots.map((slot) => Float64Array.from(slot)),
      );
    }
    this.lr = saved.lr;
    this.stepCount = saved.stepCount;
    this.state.clear();
    for (const [p, slots] of restored) this.state.set(p, slots);
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
        this.update(p.data, p.grad!.data, slots);
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

/** Options of `SGD`: the learning rate (required, as in PyTorch), momentum, decay. */
export interface SGDOptions {
  /** The learning rate, >= 0. */
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
  /** The momentum factor μ (0: plain SGD). */
  readonly momentum: number;
  /** The dampening of the new gradient in the momentum buffer. */
  readonly dampening: number;
  /** Whether the step uses Nesterov momentum. */
  readonly nesterov: boolean;
  /** The L2 penalty λ added to the gradient. */
  readonly weightDecay: number;

  /** SGD over `params` (usually `module.parameters()`). */
  constructor(params: Iterable<Tensor>, options: SGDOptions) {
    super("SGD", params, options?.lr);
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

  /** With momentum: the buffer, and a flag (1 once started). */
  protected initialState(p: Tensor): Float64Array[] {
    return this.momentum === 0 ? [] : [new Float64Array(p.size), new Float64Array(1)];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: Float64Array[]): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = this;
    // PyTorch starts the momentum buffer at the first gradient, not at zero.
    const [buffer, started] = slots;
    const first = momentum !== 0 && started[0] === 0;
    if (momentum !== 0) started[0] = 1;
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

/** Options of `Adam` and `AdamW`: learning rate, moment decay rates, epsilon, weight decay. */
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
  /** Decay rate β₁ of the first-moment average. */
  readonly beta1: number;
  /** Decay rate β₂ of the second-moment average. */
  readonly beta2: number;
  /** Added to √v̂ in the denominator. */
  readonly eps: number;
  /** The weight decay λ (an L2 term for Adam, decoupled for AdamW). */
  readonly weightDecay: number;
  /** Decoupled weight decay (AdamW) instead of an L2 term in the gradient. */
  protected readonly decoupled: boolean = false;

  /** Adam over `params`; `name` and `defaultDecay` are how `AdamW` reuses it. */
  constructor(
    params: Iterable<Tensor>,
    options: AdamOptions = {},
    name = "Adam",
    defaultDecay = 0,
  ) {
    super(name, params, options.lr ?? 1e-3);
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

  /** The first and second moments, and this parameter's step count t. */
  protected initialState(p: Tensor): Float64Array[] {
    return [new Float64Array(p.size), new Float64Array(p.size), new Float64Array(1)];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: Float64Array[]): void {
    const [m, v, steps] = slots;
    const t = ++steps[0];
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

  /** AdamW over `params`. */
  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    super(params, options, "AdamW", 0.01);
  }
}

/** Options of `RMSprop`, as PyTorch's: rate, smoothing, epsilon, decay, momentum, centring. */
export interface RMSpropOptions {
  /** Default 1e-2 (PyTorch's). */
  lr?: number;
  /** Smoothing constant of the squared-gradient average, in [0, 1). Default 0.99. */
  alpha?: number;
  /** Added to the root mean square in the denominator. Default 1e-8. */
  eps?: number;
  /** L2 penalty added to the gradient. Default 0. */
  weightDecay?: number;
  /** Momentum of the scaled step. Default 0. */
  momentum?: number;
  /** Divide by an estimate of the gradient's variance instead of its second moment. Default false. */
  centered?: boolean;
}

/**
 * RMSprop (Hinton's lecture notes) as PyTorch implements it: g ← ∇ + λp, v ← αv + (1 − α)g²;
 * centred, m ← αm + (1 − α)g and v̄ = v − m², else v̄ = v; with momentum μ, b ← μb + g / (√v̄ + ε)
 * and p ← p − lr · b, else p ← p − lr · g / (√v̄ + ε).
 *
 * @example
 * const opt = new RMSprop(model.parameters(), { lr: 1e-3, momentum: 0.9 });
 */
export class RMSprop extends Optimizer {
  /** Smoothing constant α of the squared-gradient average. */
  readonly alpha: number;
  /** Added to the root mean square in the denominator. */
  readonly eps: number;
  /** The L2 penalty λ added to the gradient. */
  readonly weightDecay: number;
  /** The momentum μ of the scaled step (0: none). */
  readonly momentum: number;
  /** Whether the denominator uses the gradient's variance. */
  readonly centered: boolean;

  /** RMSprop over `params`. */
  constructor(params: Iterable<Tensor>, options: RMSpropOptions = {}) {
    super("RMSprop", params, options.lr ?? 1e-2);
    this.alpha = options.alpha ?? 0.99;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.momentum = options.momentum ?? 0;
    this.centered = options.centered ?? false;
    checkNumber("RMSprop", "alpha", this.alpha, (v) => v >= 0 && v < 1, "in [0, 1)");
    checkNumber("RMSprop", "eps", this.eps, (v) => v >= 0, "a number >= 0");
    checkNumber("RMSprop", "weightDecay", this.weightDecay, (v) => v >= 0, "a number >= 0");
    checkNumber("RMSprop", "momentum", this.momentum, (v) => v >= 0, "a number >= 0");
  }

  /** The squared-gradient average, the gradient average (centred) and the momentum buffer. */
  protected initialState(p: Tensor): Float64Array[] {
    return [new Float64Array(p.size), new Float64Array(p.size), new Float64Array(p.size)];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: Float64Array[]): void {
    const [square, average, buffer] = slots;
    const { lr, alpha, eps, weightDecay, momentum, centered } = this;
    for (let i = 0; i < param.length; i++) {
      const g = grad[i] + weightDecay * param[i];
      square[i] = alpha * square[i] + (1 - alpha) * g * g;
      let variance = square[i];
      if (centered) {
        average[i] = alpha * average[i] + (1 - alpha) * g;
        variance -= average[i] * average[i];
      }
      const scaled = g / (Math.sqrt(variance) + eps);
      if (momentum > 0) {
        buffer[i] = momentum * buffer[i] + scaled;
        param[i] -= lr * buffer[i];
      } else {
        param[i] -= lr * scaled;
      }
    }
  }
}
