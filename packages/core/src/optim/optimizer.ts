/** Optimisers (SGD with momentum and Nesterov, Adam, AdamW, RMSprop) that update parameters in place from their `.grad`, with state per parameter that can be saved and restored. */

import { isFloat } from "../dtype.js";
import { getBackend } from "../kernels/backend.js";
import type { StateArray } from "../kernels/optimizers.js";
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

/** An optimiser's `stateDict()`: plain numbers and arrays, safe to `JSON.stringify`. */
export interface OptimizerState {
  /** Which optimiser made it ("SGD", "Adam", …). */
  name: string;
  /** The learning rate at the time (of the first group). */
  lr: number;
  /** Each parameter group's learning rate, in order. */
  groupLrs: number[];
  /** How many steps had run. */
  stepCount: number;
  /** Each parameter's buffers, by the parameter's index in `params` (absent: no step yet). */
  state: Record<number, number[][]>;
}

/**
 * A group of parameters with options of its own (PyTorch's parameter groups): any option of the
 * optimiser given here overrides the optimiser-wide one for these parameters.
 *
 * @example
 * new SGD([{ params: backbone.parameters(), lr: 1e-4 }, { params: head.parameters() }], { lr: 1e-2 });
 */
export type ParamGroup<O> = GroupParams & Partial<O>;

/** The parameters of a `ParamGroup`. */
export interface GroupParams {
  /** The group's parameters (for example `module.parameters()` of one part of a model). */
  params: Iterable<Tensor>;
}

/** The one option every optimiser has. */
export interface LearningRate {
  /** The learning rate, >= 0. */
  lr: number;
}

/** A parameter group as the optimiser holds it: its parameters and its resolved options. */
export interface ParamGroupState<H> {
  /** The group's parameters, in the order given. */
  readonly params: readonly Tensor[];
  /** Every option of the group, defaults filled in; `lr` may be changed between steps. */
  readonly options: H;
}

function isGroupList<O>(params: unknown): params is readonly ParamGroup<O>[] {
  return (
    Array.isArray(params) &&
    params.length > 0 &&
    params.every(
      (g) => g !== null && typeof g === "object" && !(g instanceof Tensor) && "params" in g,
    )
  );
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
export abstract class Optimizer<O extends object = object, H extends LearningRate = LearningRate> {
  /** The parameter groups: one unless the constructor was given a list of groups. */
  readonly paramGroups: readonly ParamGroupState<H>[];
  /** The optimiser-wide options, defaults filled in (what a group does not override). */
  readonly defaults: H;
  /** How many times `step()` has run. */
  stepCount = 0;
  /** The options of the group being updated, for `update` and `initialState`. */
  protected hyper!: H;
  /** The per-parameter buffers of a subclass (momentum, moments), made by `initialState` on first use. */
  protected readonly state = new Map<Tensor, StateArray[]>();

  /**
   * Checks `params` (float leaves that require gradients, each once, in one list or in groups)
   * and resolves the options of every group with `resolve`; `name` prefixes every error message.
   */
  constructor(
    /** The optimiser's name, as errors show it ("SGD", "Adam", …). */
    readonly name: string,
    params: Iterable<Tensor> | readonly ParamGroup<O>[],
    options: O,
  ) {
    this.defaults = this.resolve(options);
    const groups = isGroupList<O>(params) ? params : [{ params: params as Iterable<Tensor> }];
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((group, g) => {
      const { params: members, ...overrides } = group;
      const where = groups.length === 1 ? "params" : `paramGroups[${g}].params`;
      const list = [...(members ?? [])];
      if (list.length === 0) throw new Error(`${name}: got an empty list of parameters (${where})`);
      list.forEach((p, i) => {
        if (!(p instanceof Tensor) || !isFloat(p.dtype) || !p.requiresGrad || !p.isLeaf) {
          throw new Error(
            `${name}: ${where}[${i}] must be a float leaf tensor that requires gradients (pass module.parameters())`,
          );
        }
        if (seen.has(p)) throw new Error(`${name}: a parameter appears more than once in params`);
        seen.add(p);
      });
      return { params: list, options: this.resolve({ ...options, ...overrides }) };
    });
  }

  /** Every parameter, group after group. */
  get params(): readonly Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The learning rate of the first group; setting it sets every group's (as schedules do). */
  get lr(): number {
    return this.paramGroups[0].options.lr;
  }

  /** Sets every group's learning rate. */
  set lr(value: number) {
    for (const g of this.paramGroups) g.options.lr = value;
  }

  /** An options object with defaults filled in, checked; errors name the optimiser. */
  protected abstract resolve(options: O): H;

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
    return {
      name: this.name,
      lr: this.lr,
      groupLrs: this.paramGroups.map((g) => g.options.lr),
      stepCount: this.stepCount,
      state,
    };
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
    const lrs = saved.groupLrs ?? [saved.lr];
    if (!Array.isArray(lrs) || lrs.length !== this.paramGroups.length) {
      throw new Error(
        `${op}: the state has ${Array.isArray(lrs) ? lrs.length : 0} parameter groups, the optimiser ${this.paramGroups.length}`,
      );
    }
    for (const [g, lr] of lrs.entries()) {
      checkNumber(op, `groupLrs[${g}]`, lr, (v) => v >= 0, "a number >= 0");
    }
    checkNumber(
      op,
      "stepCount",
      saved.stepCount,
      (v) => Number.isInteger(v) && v >= 0,
      "an integer >= 0",
    );
    const restored = new Map<Tensor, StateArray[]>();
    for (const [key, slots] of Object.entries(saved.state ?? {})) {
      const index = Number(key);
      const p = this.params[index];
      if (p === undefined) {
        throw new Error(
          `${op}: the state has buffers for parameter ${key}, but the optimiser has ${this.params.length} parameters`,
        );
      }
      this.hyper = this.groupOf(p).options;
      // Fresh buffers, which live where this optimiser's kernels read them.
      const buffers = this.initialState(p);
      const expected = buffers.map((slot) => slot.length);
      const lengths = Array.isArray(slots) ? slots.map((slot) => slot.length) : [];
      if (lengths.join() !== expected.join()) {
        throw new Error(
          `${op}: the buffers of parameter ${key} have lengths [${lengths.join(", ")}], expected [${expected.join(", ")}] for a parameter of shape ${formatShape(p.shape)}`,
        );
      }
      buffers.forEach((buffer, i) => {
        buffer.set(slots[i]);
      });
      restored.set(p, buffers);
    }
    this.paramGroups.forEach((g, i) => {
      g.options.lr = lrs[i];
    });
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
    for (const g of this.paramGroups) {
      checkNumber(this.name, "lr", g.options.lr, (v) => v >= 0, "a number >= 0");
    }
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
      for (const group of this.paramGroups) {
        this.hyper = group.options;
        for (const p of group.params) {
          if (p.grad === null) continue;
          let slots = this.state.get(p);
          if (slots === undefined) {
            slots = this.initialState(p);
            this.state.set(p, slots);
          }
          this.update(p.writable(), p.grad.read(), slots);
        }
      }
    });
  }

  #groupOf = new Map<Tensor, ParamGroupState<H>>();

  /** The group that holds `p`. */
  protected groupOf(p: Tensor): ParamGroupState<H> {
    if (this.#groupOf.size === 0) {
      for (const g of this.paramGroups) for (const q of g.params) this.#groupOf.set(q, g);
    }
    return this.#groupOf.get(p)!;
  }

  /** Fresh per-parameter state (buffers of the parameter's size). */
  protected abstract initialState(p: Tensor): StateArray[];

  /** Updates `param` in place from `grad`, with this parameter's state `slots`. */
  protected abstract update(param: Tensor["data"], grad: Tensor["data"], slots: StateArray[]): void;
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
/** SGD's options with every default filled in. */
type SGDSettings = Required<SGDOptions>;

export class SGD extends Optimizer<SGDOptions, SGDSettings> {
  /** The momentum factor μ (0: plain SGD). */
  readonly momentum: number;
  /** The dampening of the new gradient in the momentum buffer. */
  readonly dampening: number;
  /** Whether the step uses Nesterov momentum. */
  readonly nesterov: boolean;
  /** The L2 penalty λ added to the gradient. */
  readonly weightDecay: number;

  /** SGD over `params` (usually `module.parameters()`). */
  constructor(params: Iterable<Tensor> | readonly ParamGroup<SGDOptions>[], options: SGDOptions) {
    super("SGD", params, options);
    ({
      momentum: this.momentum,
      dampening: this.dampening,
      nesterov: this.nesterov,
      weightDecay: this.weightDecay,
    } = this.defaults);
  }

  protected resolve(options: SGDOptions): SGDSettings {
    checkOptions("SGD", options, {
      lr: "number",
      momentum: "number",
      dampening: "number",
      nesterov: "boolean",
      weightDecay: "number",
    });
    const settings = {
      lr: options?.lr,
      momentum: options?.momentum ?? 0,
      dampening: options?.dampening ?? 0,
      nesterov: options?.nesterov ?? false,
      weightDecay: options?.weightDecay ?? 0,
    };
    checkNumber("SGD", "lr", settings.lr, (v) => v >= 0, "a number >= 0");
    checkNumber("SGD", "momentum", settings.momentum, (v) => v >= 0, "a number >= 0");
    checkNumber("SGD", "dampening", settings.dampening, () => true, "a finite number");
    checkNumber("SGD", "weightDecay", settings.weightDecay, (v) => v >= 0, "a number >= 0");
    if (settings.nesterov && (settings.momentum <= 0 || settings.dampening !== 0)) {
      throw new Error(
        `SGD: nesterov needs momentum > 0 and dampening 0, got momentum ${settings.momentum} and dampening ${settings.dampening}`,
      );
    }
    return settings;
  }

  /** With momentum: the buffer, and a flag (1 once started). */
  protected initialState(p: Tensor): Float64Array[] {
    return this.hyper.momentum === 0 ? [] : [new Float64Array(p.size), new Float64Array(1)];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: Float64Array[]): void {
    const { lr, momentum, dampening, nesterov, weightDecay } = this.hyper;
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

/** Adam's options with every default filled in. */
interface AdamSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * Adam (Kingma and Ba, 2015) as PyTorch implements it: g ← ∇ + λp, m ← β₁m + (1 − β₁)g,
 * v ← β₂v + (1 − β₂)g², p ← p − lr · m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ).
 * t counts the steps this parameter has taken.
 *
 * @example
 * const opt = new Adam(model.parameters(), { lr: 1e-3 });
 */
export class Adam extends Optimizer<AdamOptions, AdamSettings> {
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

  /** Adam over `params` (one list, or parameter groups); `name` is how `AdamW` reuses it. */
  constructor(
    params: Iterable<Tensor> | readonly ParamGroup<AdamOptions>[],
    options: AdamOptions = {},
    name = "Adam",
  ) {
    super(name, params, options);
    ({
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
    } = this.defaults);
  }

  /** The weight decay when none is given: 0 for Adam, 0.01 for AdamW (PyTorch's defaults). */
  protected defaultWeightDecay(): number {
    return 0;
  }

  protected resolve(options: AdamOptions): AdamSettings {
    const name = this.name ?? "Adam";
    checkOptions(name, options, {
      lr: "number",
      betas: "numberPair",
      eps: "number",
      weightDecay: "number",
    });
    const [beta1, beta2] = options?.betas ?? [0.9, 0.999];
    const settings = {
      lr: options?.lr ?? 1e-3,
      beta1,
      beta2,
      eps: options?.eps ?? 1e-8,
      weightDecay: options?.weightDecay ?? this.defaultWeightDecay(),
    };
    checkNumber(name, "lr", settings.lr, (v) => v >= 0, "a number >= 0");
    checkNumber(name, "betas[0]", beta1, (v) => v >= 0 && v < 1, "in [0, 1)");
    checkNumber(name, "betas[1]", beta2, (v) => v >= 0 && v < 1, "in [0, 1)");
    checkNumber(name, "eps", settings.eps, (v) => v >= 0, "a number >= 0");
    checkNumber(name, "weightDecay", settings.weightDecay, (v) => v >= 0, "a number >= 0");
    return settings;
  }

  /**
   * The first and second moments in the parameter's precision (float32 for a float32 parameter,
   * as PyTorch keeps them; where the current backend's Adam reads them in place), and this
   * parameter's step count t.
   */
  protected initialState(p: Tensor): StateArray[] {
    const backend = getBackend();
    const single = p.dtype === "float32";
    return [
      backend.optimizerState(p.size, single),
      backend.optimizerState(p.size, single),
      new Float64Array(1),
    ];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: StateArray[]): void {
    const [m, v, steps] = slots;
    const t = ++steps[0];
    const { lr, beta1, beta2, eps, weightDecay } = this.hyper;
    // lr · m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), as one division per element.
    getBackend().adam(param, grad, m, v, {
      beta1,
      beta2,
      stepSize: lr / (1 - beta1 ** t),
      scale: 1 / Math.sqrt(1 - beta2 ** t),
      eps,
      decay: this.decoupled ? 1 - lr * weightDecay : 1,
      l2: this.decoupled ? 0 : weightDecay,
    });
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

  /** AdamW over `params` (one list, or parameter groups). */
  constructor(
    params: Iterable<Tensor> | readonly ParamGroup<AdamOptions>[],
    options: AdamOptions = {},
  ) {
    super(params, options, "AdamW");
  }

  protected override defaultWeightDecay(): number {
    return 0.01;
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
/** RMSprop's options with every default filled in. */
type RMSpropSettings = Required<RMSpropOptions>;

export class RMSprop extends Optimizer<RMSpropOptions, RMSpropSettings> {
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

  /** RMSprop over `params` (one list, or parameter groups). */
  constructor(
    params: Iterable<Tensor> | readonly ParamGroup<RMSpropOptions>[],
    options: RMSpropOptions = {},
  ) {
    super("RMSprop", params, options);
    ({
      alpha: this.alpha,
      eps: this.eps,
      weightDecay: this.weightDecay,
      momentum: this.momentum,
      centered: this.centered,
    } = this.defaults);
  }

  protected resolve(options: RMSpropOptions): RMSpropSettings {
    checkOptions("RMSprop", options, {
      lr: "number",
      alpha: "number",
      eps: "number",
      weightDecay: "number",
      momentum: "number",
      centered: "boolean",
    });
    const settings = {
      lr: options?.lr ?? 1e-2,
      alpha: options?.alpha ?? 0.99,
      eps: options?.eps ?? 1e-8,
      weightDecay: options?.weightDecay ?? 0,
      momentum: options?.momentum ?? 0,
      centered: options?.centered ?? false,
    };
    checkNumber("RMSprop", "lr", settings.lr, (v) => v >= 0, "a number >= 0");
    checkNumber("RMSprop", "alpha", settings.alpha, (v) => v >= 0 && v < 1, "in [0, 1)");
    checkNumber("RMSprop", "eps", settings.eps, (v) => v >= 0, "a number >= 0");
    checkNumber("RMSprop", "weightDecay", settings.weightDecay, (v) => v >= 0, "a number >= 0");
    checkNumber("RMSprop", "momentum", settings.momentum, (v) => v >= 0, "a number >= 0");
    return settings;
  }

  /** The squared-gradient average, the gradient average (centred) and the momentum buffer. */
  protected initialState(p: Tensor): Float64Array[] {
    return [new Float64Array(p.size), new Float64Array(p.size), new Float64Array(p.size)];
  }

  protected update(param: Tensor["data"], grad: Tensor["data"], slots: Float64Array[]): void {
    const [square, average, buffer] = slots;
    const { lr, alpha, eps, weightDecay, momentum, centered } = this.hyper;
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
