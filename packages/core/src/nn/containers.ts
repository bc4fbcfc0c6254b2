/** ModuleDict: submodules registered by name, without a computation of their own (ModuleList is in module.ts). */

import { type AnyModule, type Layer, Module } from "./module.js";

/**
 * Submodules by name, registered under those names (PyTorch's `nn.ModuleDict`); the names may not
 * contain ".". It has no `forward` of its own.
 *
 * @example
 * const heads = new ModuleDict({ cls: new Linear(8, 3), box: new Linear(8, 4) });
 * heads.get("box").forward(features);
 * heads.namedParameters().map(([name]) => name); // ["cls.weight", "cls.bias", "box.weight", "box.bias"]
 */
export class ModuleDict<M extends AnyModule = Layer> extends Module<[], never> {
  readonly #items = new Map<string, M>();

  /** A dictionary holding the modules of `modules`, in its key order. */
  constructor(modules: Record<string, M> | Iterable<[string, M]> = {}) {
    super();
    const entries = Symbol.iterator in modules ? modules : Object.entries(modules);
    for (const [name, m] of entries) this.set(name, m);
  }

  /** Registers `module` under `name` (a new name) and returns this dictionary. */
  set(name: string, module: M): this {
    this.#items.set(name, this.addModule(name, module));
    return this;
  }

  /** The module registered as `name`; throws, listing the names, when there is none. */
  get(name: string): M {
    const m = this.#items.get(name);
    if (m === undefined) {
      throw new Error(
        `ModuleDict: no module named ${JSON.stringify(name)} (it has ${[...this.#items.keys()].map((k) => JSON.stringify(k)).join(", ") || "none"})`,
      );
    }
    return m;
  }

  /** Whether a module is registered as `name`. */
  has(name: string): boolean {
    return this.#items.has(name);
  }

  /** The names, in registration order. */
  keys(): string[] {
    return [...this.#items.keys()];
  }

  /** The (name, module) pairs, in registration order. */
  entries(): [string, M][] {
    return [...this.#items];
  }

  /** A dictionary applies nothing itself: call the modules it holds. */
  forward(): never {
    throw new Error("ModuleDict: has no forward of its own; call the modules it holds instead");
  }
}
