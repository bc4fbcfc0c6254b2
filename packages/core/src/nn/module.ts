/** The `Module` base class: named parameters, buffers and submodules, train/eval mode, as PyTorch's `nn.Module`. */

import { isFloat } from "../dtype.js";
import { Tensor } from "../tensor.js";

/**
 * A layer or a network: a `forward` method plus named parameters (tensors that require
 * gradients), buffers (state saved with the weights but not trained, such as BatchNorm's running
 * statistics) and submodules. Names join with "." as in PyTorch's `state_dict`, so a checkpoint's
 * keys match a PyTorch model built the same way.
 *
 * @example
 * class TwoLayer extends Module {
 *   readonly hidden = this.addModule("hidden", new Linear(4, 8, { seed: 0 }));
 *   readonly out = this.addModule("out", new Linear(8, 1, { seed: 1 }));
 *   forward(x: Tensor): Tensor { return this.out.forward(relu(this.hidden.forward(x))); }
 * }
 * new TwoLayer().namedParameters().map(([name]) => name);
 * // ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
 */
export abstract class Module {
  /** True in training mode (the default), false after `eval()`. */
  training = true;
  readonly #parameters = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #modules = new Map<string, Module>();

  /** The module's computation. */
  abstract forward(x: Tensor): Tensor;

  #checkName(kind: string, name: string): void {
    if (typeof name !== "string" || name === "" || name.includes(".")) {
      throw new Error(
        `${this.constructor.name}: ${kind} name must be a non-empty string without ".", got ${JSON.stringify(name)}`,
      );
    }
    if (this.#parameters.has(name) || this.#buffers.has(name) || this.#modules.has(name)) {
      throw new Error(`${this.constructor.name}: the name "${name}" is already registered`);
    }
  }

  /** Registers a trainable tensor under `name` (it is made to require gradients) and returns it. */
  protected addParameter(name: string, t: Tensor): Tensor {
    this.#checkName("parameter", name);
    if (!(t instanceof Tensor) || !isFloat(t.dtype) || !t.isLeaf) {
      throw new Error(
        `${this.constructor.name}: parameter "${name}" must be a float leaf tensor (not the result of an op)`,
      );
    }
    t.requiresGrad = true;
    this.#parameters.set(name, t);
    return t;
  }

  /** Registers a tensor saved and loaded with the parameters but not trained, and returns it. */
  protected addBuffer(name: string, t: Tensor): Tensor {
    this.#checkName("buffer", name);
    if (!(t instanceof Tensor)) {
      throw new Error(`${this.constructor.name}: buffer "${name}" must be a Tensor`);
    }
    this.#buffers.set(name, t);
    return t;
  }

  /** Registers a submodule under `name` and returns it. */
  protected addModule<M extends Module>(name: string, module: M): M {
    this.#checkName("module", name);
    if (!(module instanceof Module)) {
      throw new Error(`${this.constructor.name}: submodule "${name}" must be a Module`);
    }
    this.#modules.set(name, module);
    return module;
  }

  /** The direct submodules, by name. */
  namedChildren(): [string, Module][] {
    return [...this.#modules];
  }

  /** This module and every module below it, pre-order, with dotted names ("" for this one). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.#modules) {
      out.push(...child.namedModules(prefix === "" ? name : `${prefix}.${name}`));
    }
    return out;
  }

  /**
   * Every parameter with its dotted name, in PyTorch's order (a module's own parameters, then
   * its submodules' in registration order). A tensor shared by two modules is listed once.
   */
  namedParameters(): [string, Tensor][] {
    return this.#collect((m) => m.#parameters);
  }

  /** Every parameter, in the order of `namedParameters()`. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Every buffer with its dotted name. */
  namedBuffers(): [string, Tensor][] {
    return this.#collect((m) => m.#buffers);
  }

  /**
   * Parameters and buffers by dotted name, in PyTorch's `state_dict` order (per module: its
   * parameters, then its buffers, then its submodules): what a checkpoint holds.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const visit = (m: Module, prefix: string) => {
      for (const [name, t] of m.#parameters) out.set(prefix + name, t);
      for (const [name, t] of m.#buffers) out.set(prefix + name, t);
      for (const [name, child] of m.#modules) visit(child, `${prefix}${name}.`);
    };
    visit(this, "");
    return out;
  }

  #collect(pick: (m: Module) => Map<string, Tensor>): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of pick(m)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([prefix === "" ? name : `${prefix}.${name}`, t]);
      }
    }
    return out;
  }

  /** Sets training mode (true) or evaluation mode (false) on this module and all below; returns this. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Evaluation mode: BatchNorm uses its running statistics. Same as `train(false)`. */
  eval(): this {
    return this.train(false);
  }

  /** Clears `.grad` of every parameter. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
}

/**
 * Modules applied one after another, named "0", "1", … as in PyTorch.
 *
 * @example
 * const net = new Sequential(new Linear(2, 4, { seed: 0 }), new ReLU(), new Linear(4, 1, { seed: 1 }));
 * net.forward(zeros([3, 2])).shape; // [3, 1]
 * net.namedParameters()[0][0];      // "0.weight"
 */
export class Sequential extends Module {
  /** The modules, in the order they run. */
  readonly layers: readonly Module[];

  /** Registers `layers` as submodules "0", "1", …. */
  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.addModule(String(i), m));
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.layers) y = m.forward(y);
    return y;
  }
}
