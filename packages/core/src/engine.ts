/** The reverse-mode autodiff engine: records ops while a graph is wanted, and walks it back. */

import { allocate, type DataArray, type DType, isFloat } from "./dtype.js";
import { addInPlace, whileDifferentiating } from "./kernels/elementwise.js";
import { add } from "./ops/arithmetic.js";
import { cast } from "./ops/cast.js";
import { onesLike, zerosLike } from "./ops/creation.js";
import { sum } from "./ops/reduce.js";
import { identity, reshape } from "./ops/shape.js";
import { checkOptions } from "./ops/util.js";
import { formatShape, type Shape, shapesEqual } from "./shape.js";
import { Tensor } from "./tensor.js";

/**
 * Maps the gradient of an op's output to the gradient of one of its inputs; `null` for an input
 * that takes no gradient (indices, conditions). Written with the library's own ops, so that it can
 * itself be differentiated. The engine calls a rule only when its input needs a gradient, and it,
 * not the rule, sums the result back to the shape of a broadcast input.
 */
export type GradientRule = ((upstream: Tensor) => Tensor | ScatteredGradient) | null;

/**
 * The gradient of a gather: zero except where the gather read, kept as a scatter-add still to do
 * (TensorFlow's IndexedSlices). The engine adds every scattered contribution of a tensor into one
 * buffer, instead of materialising a zero tensor per gather and adding those up.
 */
export class ScatteredGradient {
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    /**
     * Adds the updates into `dest`, a buffer of `shape` and `dtype`; repeated indices accumulate.
     * `zero` says that `dest` is all zeros, so that updates to distinct elements may be stored.
     */
    readonly addInto: (dest: DataArray, zero: boolean) => void,
    /** The same gradient as a dense tensor, made by a differentiable op (for `createGraph`). */
    readonly densify: () => Tensor,
    /** How many updates there are: the engine scatters the largest first, into a zero buffer. */
    readonly updates = 0,
  ) {}
}

/** @internal A recorded op: its inputs and its gradient rule. */
export interface GraphNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** One rule per input; `null` once the graph has been released. */
  rules: readonly GradientRule[] | null;
  /** The tensors whose values the rules that will run read, and their versions when recorded. */
  readonly saved: readonly Tensor[];
  readonly versions: readonly number[];
  /**
   * What the forward computation depended on beyond the inputs' values and shapes (a convolution's
   * stride and padding, a permutation, an axis), for tools that read the graph back as a program,
   * such as an ONNX exporter. Absent where the inputs and the output's shape say everything.
   */
  readonly attributes?: OpAttributes;
}

/** The attributes of a recorded op: named numbers, flags and lists of numbers. */
export type OpAttributes = Readonly<Record<string, number | boolean | readonly number[]>>;

let recording = true;
let tracing = 0;

/** Whether ops are recorded right now (false inside `noGrad` and in a plain backward pass). */
export function isGradEnabled(): boolean {
  return recording;
}

function withRecording<T>(enabled: boolean, fn: () => T): T {
  const before = recording;
  recording = enabled;
  try {
    return fn();
  } finally {
    recording = before;
  }
}

/**
 * Runs `fn` without recording any op: nothing computed inside needs or gets a gradient.
 *
 * @example
 * const y = noGrad(() => mul(w, 2)); // y.requiresGrad === false
 */
export function noGrad<T>(fn: () => T): T {
  return withRecording(false, fn);
}

/**
 * @internal Attaches `rules` to `out` when recording is on and some input requires gradients.
 * Every differentiable op ends with this call, right beside its forward code. `needs[i]` lists
 * the tensors whose values rule `i` reads (not its upstream): backward refuses to run a rule whose
 * tensors were modified in place since (see `Tensor.markModified`). Without `needs`, every rule is
 * taken to read every input and the output. `attributes` keeps what the forward code used besides
 * its inputs (see `GraphNode.attributes`); the engine itself never reads them.
 */
export function record<T extends Tensor>(
  op: string,
  out: T,
  inputs: readonly Tensor[],
  rules: readonly GradientRule[],
  needs?: readonly (readonly Tensor[])[],
  attributes?: OpAttributes,
): T {
  if (!recording) return out;
  let saved: Tensor[] | null = null;
  for (let i = 0; i < inputs.length; i++) {
    if (!inputs[i].requiresGrad || rules[i] === null) continue;
    saved ??= [];
    for (const t of needs?.[i] ?? [...inputs, out]) if (!saved.includes(t)) saved.push(t);
  }
  if (saved === null) return out;
  const versions = saved.map((t) => t.version);
  out.node = { op, inputs, rules, saved, versions, ...(attributes && { attributes }) };
  out.requiresGrad = true;
  return out;
}

/** The op that made a tensor, as the recording saw it: what `recordedOp` returns. */
export interface RecordedOp {
  /** The op's name, as it records itself (`"conv2d"`, `"add"`, …). */
  readonly op: string;
  /** Its tensor inputs, in order (a plain-number operand appears as the scalar tensor it became). */
  readonly inputs: readonly Tensor[];
  /** What the forward code used besides the inputs (stride, padding, axes, permutation), if anything. */
  readonly attributes: OpAttributes;
}

/**
 * The recorded op that made `t`, or null for a leaf (a tensor made directly, or computed where
 * nothing required a gradient, or inside `noGrad`). Walking it from an output back to the inputs
 * reads a traced forward pass as a program, which is how an exporter (ONNX) sees a model.
 *
 * @example
 * const x = tensor([1, 2], { requiresGrad: true });
 * const y = mul(x, 3);
 * recordedOp(y)?.op;                  // "mul"
 * recordedOp(y)?.inputs[0] === x;     // true
 * recordedOp(x);                      // null
 */
export function recordedOp(t: Tensor): RecordedOp | null {
  const node = t.node;
  if (node === null) return null;
  return { op: node.op, inputs: node.inputs, attributes: node.attributes ?? {} };
}

/** Tensors reachable backwards from `root` through tensors that require gradients, inputs first. */
function topologicalOrder(root: Tensor, stopAt: ReadonlySet<Tensor> | null): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root]);
  // An explicit stack of (tensor, next input to visit) instead of recursion: deep graphs are fine.
  const stack: Tensor[] = [root];
  const cursor: number[] = [0];
  while (stack.length > 0) {
    const top = stack.length - 1;
    const t = stack[top];
    const inputs = t.node !== null && !stopAt?.has(t) ? t.node.inputs : [];
    let i = cursor[top];
    while (i < inputs.length && (!inputs[i].requiresGrad || seen.has(inputs[i]))) i++;
    if (i < inputs.length) {
      cursor[top] = i + 1;
      seen.add(inputs[i]);
      stack.push(inputs[i]);
      cursor.push(0);
    } else {
      order.push(t);
      stack.pop();
      cursor.pop();
    }
  }
  return order;
}

/** Sums a broadcast gradient back to `shape` (the engine's job, not each rule's). */
function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, { axis: axes }), shape);
}

interface WalkOptions {
  /** Compute gradients only for these tensors, and stop the walk there. */
  targets?: readonly Tensor[];
  createGraph: boolean;
  retainGraph: boolean;
  /** An existing gradient tensor to add a tensor's gradient into, in place (a leaf's `.grad`). */
  into?: (t: Tensor) => Tensor | undefined;
}

/**
 * The gradients of one backward pass, summed per tensor: dense contributions, and scatter-adds
 * still to run. Ownership of gradient memory lives here and nowhere else: a gradient that this
 * pass allocated and handed to nobody may be added into in place; any other (an upstream that a
 * rule hands on to several inputs, a view of one, the caller's seed) may be seen elsewhere, so it
 * is never written into, and it is copied before it becomes a result of its own (`final`).
 */
class GradientSums {
  private readonly dense = new Map<Tensor, Tensor>();
  /** Dense sums this pass allocated that nothing else has seen. */
  private readonly owned = new Set<Tensor>();
  private readonly scattered = new Map<Tensor, ScatteredGradient[]>();

  constructor(private readonly createGraph: boolean) {}

  /** Adds `g` to the gradient of `t`; `fresh` says that nothing else holds `g` or its memory. */
  add(t: Tensor, g: Tensor, fresh: boolean): void {
    const existing = this.dense.get(t);
    if (existing === undefined) {
      this.dense.set(t, g);
      if (fresh && !this.createGraph) this.owned.add(g);
    } else if (this.owned.has(existing) && !existing.isPending) addInPlace(existing, g);
    else {
      const total = add(existing, g);
      this.dense.set(t, total);
      if (!this.createGraph) this.owned.add(total);
    }
  }

  /** Adds a scatter-add (a gather's gradient) to the gradient of `t`, to run in `total`. */
  scatter(t: Tensor, s: ScatteredGradient): void {
    const list = this.scattered.get(t);
    if (list === undefined) this.scattered.set(t, [s]);
    else list.push(s);
  }

  /** Tensors with scatter-adds still to run. */
  withScatters(): Tensor[] {
    return [...this.scattered.keys()];
  }

  /**
   * The total gradient of `t`: dense contributions plus every scatter-add, in one buffer; with
   * `destination` (a leaf's existing `.grad`), added into it in place instead.
   */
  total(t: Tensor, destination?: Tensor): Tensor | undefined {
    const pendingScatters = this.scattered.get(t);
    if (pendingScatters === undefined) return this.dense.get(t);
    this.scattered.delete(t);
    let total = this.dense.get(t);
    if (this.createGraph) {
      for (const s of pendingScatters)
        total = total === undefined ? s.densify() : add(total, s.densify());
      this.dense.set(t, total!);
      return total;
    }
    if (destination !== undefined) {
      // Scatter straight into the existing gradient: no buffer of our own at all.
      if (total !== undefined) addInPlace(destination, total);
      const buffer = destination.writable();
      for (const s of pendingScatters) s.addInto(buffer, false);
      destination.markModified();
      this.dense.set(t, destination);
      return destination;
    }
    let buffer: DataArray;
    let zero = false;
    if (total !== undefined && this.owned.has(total) && !total.isPending) buffer = total.writable();
    else {
      buffer = allocate(t.dtype, t.size);
      if (total !== undefined) buffer.set(total.read());
      else zero = true;
    }
    // The largest scatter first: into a fresh zero buffer it may store instead of adding.
    pendingScatters.sort((a, b) => b.updates - a.updates);
    for (const s of pendingScatters) {
      s.addInto(buffer, zero);
      zero = false;
    }
    total = new Tensor(buffer, t.shape, t.dtype);
    this.dense.set(t, total);
    this.owned.add(total);
    return total;
  }

  /** Hands the total gradient of `t` on to its op's rules: from now on it is shared. */
  take(t: Tensor): Tensor | undefined {
    const g = this.total(t);
    this.dense.delete(t);
    if (g !== undefined) this.owned.delete(g);
    return g;
  }

  /** Tensors with a gradient, and the gradient. */
  entries(): IterableIterator<[Tensor, Tensor]> {
    return this.dense.entries();
  }

  /**
   * The gradient of `t` as a result of its own (a leaf's `.grad`, what `grad` returns): the
   * buffer this pass allocated, or a copy of a gradient that may be seen elsewhere. With
   * `createGraph` gradients are graph tensors, never written into, and are handed out as they are.
   */
  final(t: Tensor): Tensor | undefined {
    const g = this.total(t);
    if (g === undefined || this.createGraph || this.owned.has(g)) return g;
    return new Tensor(g.read().slice(), g.shape, g.dtype);
  }
}

/** Walks the graph from `root` seeded with `upstream`; returns the gradient of every tensor it reached. */
function walk(
  root: Tensor,
  upstream: Tensor,
  seedIsFresh: boolean,
  options: WalkOptions,
): GradientSums {
  const targets = options.targets ? new Set(options.targets) : null;
  const order = topologicalOrder(root, targets);
  let wanted: Set<Tensor> | null = null;
  if (targets !== null) {
    // Only tensors that lead to a target need a gradient; `order` lists inputs before outputs.
    wanted = new Set();
    for (const t of order) {
      if (targets.has(t) || (t.node?.inputs.some((input) => wanted!.has(input)) ?? false))
        wanted.add(t);
    }
  }
  const sums = new GradientSums(options.createGraph);
  sums.add(root, upstream, seedIsFresh);

  // Sums the forward pass deferred are computed inside the loops of this pass where they fit.
  whileDifferentiating(order, () =>
    withRecording(options.createGraph, () => {
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k];
        const node = t.node;
        if (node === null || targets?.has(t)) continue;
        if (node.rules === null) {
          throw new Error(
            `backward: the graph through '${node.op}' was already released by an earlier backward(); ` +
              "pass { retainGraph: true } to the first call to walk it twice",
          );
        }
        const g = sums.take(t);
        if (g === undefined) continue;
        checkSaved(node);
        const rules = node.rules;
        node.inputs.forEach((input, i) => {
          const rule = rules[i];
          if (rule === null || !input.requiresGrad) return;
          if (wanted !== null && !wanted.has(input)) return;
          const gi = rule(g);
          if (gi instanceof ScatteredGradient) {
            sums.scatter(input, gi);
            return;
          }
          let shaped = sumToShape(gi, input.shape);
          if (shaped.dtype !== input.dtype) shaped = cast(shaped, input.dtype);
          // A rule may hand g itself, or a view of it, to several inputs (add, reshape).
          sums.add(input, shaped, !shaped.sharesMemoryWith(g));
        });
        if (!options.retainGraph && !options.createGraph) node.rules = null;
      }
      for (const t of sums.withScatters()) sums.total(t, options.into?.(t));
    }),
  );
  return sums;
}

/**
 * Refuses to backpropagate through `node` when a tensor its rules read was modified in place after
 * the op was recorded: the rules would silently use the new values (PyTorch's version check).
 */
function checkSaved(node: GraphNode): void {
  node.saved.forEach((t, i) => {
    if (t.version !== node.versions[i]) {
      const role = node.inputs.includes(t) ? `input ${node.inputs.indexOf(t)}` : "its output";
      throw new Error(
        `backward: a tensor that '${node.op}' needs for its gradient (${role}, shape ${formatShape(t.shape)}, ${t.dtype}) ` +
          `was modified in place after the op was recorded (version ${t.version}, was ${node.versions[i]}); ` +
          "compute the result again after modifying it, or modify a copy",
      );
    }
  });
}

function checkUpstream(op: string, root: Tensor, upstream: Tensor | undefined): Tensor {
  if (!root.requiresGrad) {
    throw new Error(
      `${op}: the tensor does not require gradients (no input of the ops that made it had requiresGrad: true)`,
    );
  }
  if (upstream === undefined) {
    if (root.size !== 1) {
      throw new Error(
        `${op}: a non-scalar output of shape ${formatShape(root.shape)} needs an explicit upstream gradient of that shape`,
      );
    }
    return onesLike(root);
  }
  if (!(upstream instanceof Tensor)) {
    const what = Array.isArray(upstream) ? "an array" : typeof upstream;
    throw new Error(
      `${op}: the upstream gradient must be a Tensor of shape ${formatShape(root.shape)}, got ${what}`,
    );
  }
  if (!shapesEqual(upstream.shape, root.shape)) {
    throw new Error(
      `${op}: upstream gradient of shape ${formatShape(upstream.shape)} does not match the output's shape ${formatShape(root.shape)}`,
    );
  }
  return upstream.dtype === root.dtype ? upstream : cast(upstream, root.dtype);
}

/**
 * Gradient tensors that `backward()` made for a leaf's `.grad` and shares with nothing else: the
 * next `backward()` may add into them in place. A `.grad` the user assigned is never written into.
 */
const leafGradients = new WeakSet<Tensor>();

/** @internal Implements `Tensor.backward()`: accumulates into `.grad` of the leaves. */
export function backward(
  root: Tensor,
  upstream: Tensor | undefined,
  options: { retainGraph?: boolean; createGraph?: boolean },
): void {
  checkOptions("backward", options, { retainGraph: "boolean", createGraph: "boolean" });
  const seed = checkUpstream("backward", root, upstream);
  const createGraph = options.createGraph ?? false;
  const retainGraph = options.retainGraph ?? createGraph;
  // As in PyTorch, a leaf's existing .grad is added into in place (not with createGraph), so that a
  // training loop that zeroes gradients reuses their memory instead of allocating every step.
  const into = (t: Tensor): Tensor | undefined => {
    const g = t.grad;
    const reusable =
      !createGraph &&
      t.node === null &&
      g !== null &&
      leafGradients.has(g) &&
      !g.requiresGrad &&
      g.dtype === t.dtype &&
      shapesEqual(g.shape, t.shape);
    return reusable ? g : undefined;
  };
  const sums = walk(root, seed, seed !== upstream, { createGraph, retainGraph, into });
  for (const [t] of [...sums.entries()]) {
    if (t.node !== null || !t.requiresGrad) continue;
    const existing = into(t);
    const g = existing === undefined ? sums.final(t) : sums.total(t);
    if (g === undefined) continue;
    if (existing !== undefined) {
      if (g !== existing) addInPlace(existing, g);
    } else if (t.grad === null) t.grad = g;
    else t.grad = withRecording(createGraph, () => add(t.grad!, g));
    if (!createGraph) leafGradients.add(t.grad!);
  }
}

type Argnums = number | readonly number[];
type GradOf<A extends Argnums> = A extends number ? Tensor : Tensor[];

/**
 * Transforms a scalar-valued `f` into a function returning its value and its gradient with respect
 * to the arguments `argnums` (default 0). Nestable: called inside another `grad`, the gradient it
 * returns is itself differentiable, so `grad(grad(f))` is the second derivative.
 *
 * @example
 * const f = (x: Tensor) => sum(pow(x, 3));
 * const [value, dx] = valueAndGrad(f)(tensor([1, 2])); // 9, [3, 12]
 */
export function valueAndGrad<Args extends unknown[], A extends Argnums = 0>(
  f: (...args: Args) => Tensor,
  options: { argnums?: A } = {},
): (...args: Args) => [Tensor, GradOf<A>] {
  checkOptions("grad", options, { argnums: "axes" });
  const argnums = (options.argnums ?? 0) as Argnums;
  const positions = typeof argnums === "number" ? [argnums] : [...argnums];
  return (...args: Args) => {
    const outerRecording = recording;
    const watched = positions.map((p) => {
      const arg = args[p];
      if (!(arg instanceof Tensor)) {
        throw new Error(
          `grad: argument ${p} must be a Tensor to differentiate with respect to it, got ${typeof arg}`,
        );
      }
      if (!isFloat(arg.dtype)) {
        throw new Error(
          `grad: argument ${p} has dtype ${arg.dtype}; only float32 and float64 can be differentiated`,
        );
      }
      return arg;
    });
    // Differentiable results are needed when an enclosing grad, or a caller's graph, will use them.
    const createGraph = outerRecording && (tracing > 0 || watched.some((t) => t.requiresGrad));
    const inputs = watched.map((t) => {
      if (createGraph && t.requiresGrad) return identity(t);
      const leaf = t.detach();
      leaf.requiresGrad = true;
      return leaf;
    });
    const callArgs = [...args] as Args;
    positions.forEach((p, i) => {
      callArgs[p] = inputs[i];
    });
    tracing++;
    let value: Tensor;
    try {
      value = withRecording(true, () => f(...callArgs));
    } finally {
      tracing--;
    }
    if (!(value instanceof Tensor) || value.size !== 1 || !isFloat(value.dtype)) {
      const what =
        value instanceof Tensor
          ? `a ${value.dtype} tensor of shape ${formatShape(value.shape)}`
          : typeof value;
      throw new Error(`grad: the function must return a float scalar tensor, got ${what}`);
    }
    let grads: Tensor[];
    if (!value.requiresGrad) grads = watched.map((t) => zerosLike(t));
    else {
      const found = walk(value, onesLike(value), true, {
        targets: inputs,
        createGraph,
        retainGraph: createGraph,
      });
      grads = inputs.map((t, i) => found.final(t) ?? zerosLike(watched[i]));
    }
    if (!createGraph) {
      grads = grads.map((g) => (g.requiresGrad ? g.detach() : g));
      value = value.detach();
    }
    const result = typeof argnums === "number" ? grads[0] : grads;
    return [value, result as GradOf<A>];
  };
}

/**
 * Transforms a scalar-valued `f` into a function returning its gradient with respect to the
 * arguments `argnums` (default 0); see `valueAndGrad`.
 *
 * @example
 * const d2 = grad((x: Tensor) => sum(grad((y: Tensor) => sum(pow(y, 3)))(x)));
 * d2(tensor([1, 2])); // 6x = [6, 12]
 */
export function grad<Args extends unknown[], A extends Argnums = 0>(
  f: (...args: Args) => Tensor,
  options: { argnums?: A } = {},
): (...args: Args) => GradOf<A> {
  const vg = valueAndGrad(f, options);
  return (...args: Args) => vg(...args)[1];
}
