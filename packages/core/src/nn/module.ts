/** The `Module` base class: named parameters, buffers and submodules, train/eval mode, as PyTorch's `nn.Module`. */

import { isFloat } from "../dtype.js";
import { Tensor } from "../tensor.js";

/**
 * A layer or a network: a `forward` method plus named parameters (tensors that require
 * gradients), buffers (state saved with the weights but not trained, such as BatchNorm's running
 * statistics) and submodules. Names join with "." as in PyTorch's `state_dict`, so a checkpoint's
 * keys match a PyTorch model built the same way.
 *
 * `Args` (the tuple of `forward`'s arguments) and `Out` (what it returns) type the computation;
 * they default to one tensor in, one tensor out, the shape of every layer. A feature pyramid takes
 * several tensors and a detection head returns several: both are Modules like any other, with
 * parameters, `stateDict()` and checkpoints.
 *
 * @example
 * class TwoLayer extends Module {
 *   readonly hidden = this.addModule("hidden", new Linear(4, 8, { seed: 0 }));
 *   readonly out = this.addModule("out", new Linear(8, 1, { seed: 1 }));
 *   forward(x: Tensor): Tensor { return this.out.forward(relu(this.hidden.forward(x))); }
 * }
 * new TwoLayer().namedParameters().map(([name]) => name);
 * // ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
 *
 * // Two inputs, an object out:
 * class Head extends Module<[Tensor, Tensor], { classification: Tensor; regression: Tensor }> {
 *   readonly cls = this.addModule("cls", new Linear(8, 3, { seed: 2 }));
 *   readonly box = this.addModule("box", new Linear(8, 4, { seed: 3 }));
 *   forward(p3: Tensor, p4: Tensor) {
 *     const features = concat([p3, p4], 0);
 *     return { classification: this.cls.forward(features), regression: this.box.forward(features) };
 *   }
 * }
 * new Head().forward(zeros([2, 8]), zeros([1, 8])).regression.shape; // [3, 4]
 */
export abstract class Module<Args extends unknown[] = [Tensor], Out = Tensor> {
  /** True in training mode (the default), false after `eval()`. */
  training = true;
  readonly #parameters = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #modules = new Map<string, AnyModule>();

  /** The module's computation. */
  abstract forward(...args: Args): Out;

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
  protected addModule<M extends AnyModule>(name: string, module: M): M {
    this.#checkName("module", name);
    if (!(module instanceof Module)) {
      throw new Error(`${this.constructor.name}: submodule "${name}" must be a Module`);
    }
    this.#modules.set(name, module);
    return module;
  }

  /** The direct submodules, by name. */
  namedChildren(): [string, AnyModule][] {
    return [...this.#modules];
  }

  /** This module and every module below it, pre-order, with dotted names ("" for this one). */
  namedModules(prefix = ""): [string, AnyModule][] {
    const out: [string, AnyModule][] = [[prefix, this]];
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
    const visit = (m: AnyModule, prefix: string) => {
      for (const [name, t] of m.#parameters) out.set(prefix + name, t);
      for (const [name, t] of m.#buffers) out.set(prefix + name, t);
      for (const [name, child] of m.#modules) visit(child, `${prefix}${name}.`);
    };
    visit(this, "");
    return out;
  }

  #collect(pick: (m: AnyModule) => Map<string, Tensor>): [string, Tensor][] {
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
 * A Module of any forward signature: what containers, `save` and `load` accept. (Its `forward`
 * cannot be called; keep the concrete type for that.)
 */
export type AnyModule = Module<never, unknown>;

/** A Module from one tensor to one tensor: a layer, or a stage of a `Sequential`. */
export type Layer = Module<[Tensor], Tensor>;

/**
 * Modules applied one after another, named "0", "1", … as in PyTorch.
 *
 * @example
 * const net = new Sequential(new Linear(2, 4, { seed: 0 }), new ReLU(), new Linear(4, 1, { seed: 1 }));
 * net.forward(zeros([3, 2])).shape; // [3, 1]
 * net.namedParameters()[0][0];      // "0.weight"
 */
export class Sequential extends Module {
  readonly layers: readonly Layer[];

  constructor(...layers: Layer[]) {
    super();
    this.layers = layers.map((m, i) => this.addModule(String(i), m));
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.layers) y = m.forward(y);
    return y;
  }
}

/**
 * A list of submodules named "0", "1", … (PyTorch's `nn.ModuleList`): for a network that applies
 * its parts in its own way, such as one convolution per pyramid level. It has parameters and a
 * `stateDict()` like any module, but no computation of its own: its `forward` throws, as
 * PyTorch's does.
 *
 * @example
 * class Lateral extends Module<[Tensor[]], Tensor[]> {
 *   readonly convs = this.addModule(
 *     "convs",
 *     new ModuleList([8, 16].map((c, i) => new Conv2d(c, 4, 1, { seed: i }))),
 *   );
 *   forward(levels: Tensor[]): Tensor[] {
 *     return levels.map((x, i) => this.convs.at(i).forward(x));
 *   }
 * }
 * new Lateral().namedParameters()[0][0]; // "convs.0.weight"
 */
export class ModuleList<M extends AnyModule = Layer> extends Module<[], never> {
  readonly #items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Adds `module` at the end, under the next index; returns this. */
  append(module: M): this {
    this.#items.push(this.addModule(String(this.#items.length), module));
    return this;
  }

  /** How many modules the list holds. */
  get length(): number {
    return this.#items.length;
  }

  /** The module at `index` (negative counts from the end, as in Python). */
  at(index: number): M {
    const n = this.#items.length;
    if (!Number.isInteger(index) || index < -n || index >= n) {
      throw new Error(
        `ModuleList: index ${index} is out of range for a list of ${n} module${n === 1 ? "" : "s"}`,
      );
    }
    return this.#items[index < 0 ? index + n : index];
  }

  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }

  /** A list applies nothing itself: call the modules it holds. */
  forward(): never {
    throw new Error("ModuleList: has no forward of its own; call the modules it holds instead");
  }
}
