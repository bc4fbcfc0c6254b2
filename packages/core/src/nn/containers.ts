/** Containers that register their modules without running them: ModuleList and ModuleDict. */

import type { Tensor } from "../tensor.js";
import { Module } from "./module.js";

/**
 * An ordered list of submodules, registered as "0", "1", … so that their parameters are found
 * and saved (PyTorch's `nn.ModuleList`). It has no `forward` of its own: a parent module loops
 * over it.
 *
 * @example
 * const heads = new ModuleList([new Linear(8, 4), new Linear(8, 4)]);
 * heads.push(new Linear(8, 4));
 * const outputs = [...heads].map((head) => head.forward(features));
 * heads.namedParameters()[2][0]; // "1.weight"
 */
export class ModuleList<M extends Module = Module> extends Module implements Iterable<M> {
  readonly #items: M[] = [];

  /** A list holding `modules`, in order. */
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  /** How many modules the list holds. */
  get length(): number {
    return this.#items.length;
  }

  /** Appends `module` under the next index and returns this list. */
  push(module: M): this {
    this.#items.push(this.addModule(String(this.#items.length), module));
    return this;
  }

  /** The module at `index` (negative counts from the end); throws when out of range. */
  at(index: number): M {
    const i = index < 0 ? this.#items.length + index : index;
    if (!Number.isInteger(index) || i < 0 || i >= this.#items.length) {
      throw new Error(
        `ModuleList: index ${index} is out of range for a list of ${this.#items.length} modules`,
      );
    }
    return this.#items[i];
  }

  /** The modules, in order. */
  [Symbol.iterator](): Iterator<M> {
    return this.#items[Symbol.iterator]();
  }

  /** Throws: a ModuleList is a container; call its modules. */
  forward(_x: Tensor): Tensor {
    throw new Error("ModuleList: a ModuleList has no forward; call the modules it holds");
  }
}

/**
 * Submodules by name, registered under those names (PyTorch's `nn.ModuleDict`); the names may not
 * contain ".". It has no `forward` of its own.
 *
 * @example
 * const heads = new ModuleDict({ cls: new Linear(8, 3), box: new Linear(8, 4) });
 * heads.get("box").forward(features);
 * heads.namedParameters().map(([name]) => name); // ["cls.weight", "cls.bias", "box.weight", "box.bias"]
 */
export class ModuleDict<M extends Module = Module> extends Module {
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

  /** Throws: a ModuleDict is a container; call its modules. */
  forward(_x: Tensor): Tensor {
    throw new Error("ModuleDict: a ModuleDict has no forward; call the modules it holds");
  }
}
