/** The reverse-mode autodiff engine: records ops while a graph is wanted, and walks it back. */

import { allocate, type DataArray, type DType, isFloat } from "./dtype.js";
import { addInPlace, whileDifferentiating } from "./kernels/elementwise.js";
import { add } from "./ops/arithmetic.js";
import { cast } from "./ops/cast.js";
import { onesLike, zerosLike } from "./ops/creation.js";
import { sum } from "./ops/reduce.js";
import { identity, reshape } from "./ops/shape.js";
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
}

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
 * @internal Attaches `rule` to `out` when recording is on and some input requires gradients.
 * Every differentiable op ends with this call, right beside its forward code.
 */
export function record<T extends Tensor>(
  op: string,
  out: T,
  inputs: readonly Tensor[],
  rules: readonly GradientRule[],
): T {
  if (!recording) return out;
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i].requiresGrad && rules[i] !== null) {
      out.node = { op, inputs, rules };
      out.requiresGrad = true;
      return out;
    }
  }
  return out;
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

/** Walks the graph from `root` seeded with `upstream`; returns the gradient of every tensor it reached. */
function walk(root: Tensor, upstream: Tensor, options: WalkOptions): Map<Tensor, Tensor> {
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
  const grads = new Map<Tensor, Tensor>([[root, upstream]]);
  const scattered = new Map<Tensor, ScatteredGradient[]>();
  // Gradient buffers this walk allocated itself, which nothing else sees yet: safe to add into.
  const owned = new Set<Tensor>();
  const accumulate = (t: Tensor, g: Tensor) => {
    const existing = grads.get(t);
    if (existing === undefined) grads.set(t, g);
    else if (owned.has(existing) && !options.createGraph && !existing.isPending)
      addInPlace(existing, g);
    else {
      const total = add(existing, g);
      grads.set(t, total);
      owned.add(total);
    }
  };
  /** The total gradient of `t`: dense contributions plus every scatter-add, into one buffer. */
  const resolve = (t: Tensor): Tensor | undefined => {
    const pendingScatters = scattered.get(t);
    if (pendingScatters === undefined) return grads.get(t);
    scattered.delete(t);
    let total = grads.get(t);
    if (options.createGraph) {
      for (const s of pendingScatters)
        total = total === undefined ? s.densify() : add(total, s.densify());
    } else {
      let buffer: DataArray;
      const destination = options.into?.(t);
      if (destination !== undefined) {
        // Scatter straight into the existing gradient: no buffer of our own at all.
        if (total !== undefined) addInPlace(destination, total);
        for (const s of pendingScatters) s.addInto(destination.writable(), false);
        grads.set(t, destination);
        return destination;
      }
      let zero = false;
      if (total !== undefined && owned.has(total) && !total.isPending) buffer = total.writable();
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
      owned.add(total);
    }
    if (total !== undefined) grads.set(t, total);
    return total;
  };

  // Sums the forward pass deferred are computed inside the loops of this pass where they fit.
  whileDifferentiating(order, () =>
    withRecording(options.createGraph, () => {
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k];
        const node = t.node;
        if (node === null || targets?.has(t)) continue;
        const g = resolve(t);
        if (g === undefined) continue;
        // Rules may hand g itself on to several inputs (add, broadcastTo): from here on it is shared.
        owned.delete(g);
        if (node.rules === null) {
          throw new Error(
            `backward: the graph through '${node.op}' was already released by an earlier backward(); ` +
              "pass { retainGraph: true } to the first call to walk it twice",
          );
        }
        const rules = node.rules;
        node.inputs.forEach((input, i) => {
          const rule = rules[i];
          if (rule === null || !input.requiresGrad) return;
          if (wanted !== null && !wanted.has(input)) return;
          const gi = rule(g);
          if (gi instanceof ScatteredGradient) {
            const list = scattered.get(input);
            if (list === undefined) scattered.set(input, [gi]);
            else list.push(gi);
            return;
          }
          let shaped = sumToShape(gi, input.shape);
          if (shaped.dtype !== input.dtype) shaped = cast(shaped, input.dtype);
          accumulate(input, shaped);
        });
        grads.delete(t);
        if (!options.retainGraph && !options.createGraph) node.rules = null;
      }
      for (const t of [...scattered.keys()]) resolve(t);
    }),
  );
  return grads;
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
  if (!shapesEqual(upstream.shape, root.shape)) {
    throw new Error(
      `${op}: upstream gradient of shape ${formatShape(upstream.shape)} does not match the output's shape ${formatShape(root.shape)}`,
    );
  }
  return upstream.dtype === root.dtype ? upstream : cast(upstream, root.dtype);
}

/** @internal Implements `Tensor.backward()`: accumulates into `.grad` of the leaves. */
export function backward(
  root: Tensor,
  upstream: Tensor | undefined,
  options: { retainGraph?: boolean; createGraph?: boolean },
): void {
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
      !g.requiresGrad &&
      !g.isPending &&
      g.dtype === t.dtype &&
      shapesEqual(g.shape, t.shape);
    return reusable ? g : undefined;
  };
  const grads = walk(root, seed, { createGraph, retainGraph, into });
  for (const [t, g] of grads) {
    if (t.node !== null || !t.requiresGrad) continue;
    const existing = into(t);
    if (existing !== undefined) {
      if (g !== existing) addInPlace(existing, g);
      existing.markModified();
      continue;
    }
    const contribution = createGraph ? g : g.detach();
    t.grad =
      t.grad === null ? contribution : withRecording(createGraph, () => add(t.grad!, contribution));
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
      const found = walk(value, onesLike(value), {
        targets: inputs,
        createGraph,
        retainGraph: createGraph,
      });
      grads = inputs.map((t, i) => found.get(t) ?? zerosLike(watched[i]));
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
