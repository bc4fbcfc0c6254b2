/**
 * The expression IR of elementwise kernels: a closed set of typed ops, with nodes hash-consed so
 * that equal expressions are one node (common subexpressions are found by identity, not by text).
 */

import { type DType, promoteTypes } from "../dtype.js";

/**
 * Every IR op: how many arguments it takes and what it costs per element (roughly, in cycles of a
 * scalar core; a transcendental function is `heavy`). Renderers lower each of them (see
 * `Lowerings`): adding an op here without a lowering in every renderer does not compile.
 *
 * Arithmetic follows IEEE 754 double precision; a float32 value computed in double precision is
 * rounded where a `convert` node says so (see `convert`). Comparisons and logic give `bool` (0 or 1).
 */
export const IR_OPS = {
  /** Element `attr` of the kernel's input `attr` (see `input`). */
  input: { arity: 0, cost: 0 },
  /** The number `attr`. */
  constant: { arity: 0, cost: 0 },
  /** What a store into a typed array of the node's dtype gives: float32 rounding, int32 wrapping. */
  convert: { arity: 1, cost: 1 },
  neg: { arity: 1, cost: 1 },
  abs: { arity: 1, cost: 1 },
  floor: { arity: 1, cost: 2 },
  ceil: { arity: 1, cost: 2 },
  /** The nearest integer, halves to the even neighbour (as `torch.round`). */
  round: { arity: 1, cost: 4 },
  sqrt: { arity: 1, cost: 8 },
  exp: { arity: 1, cost: 20 },
  log: { arity: 1, cost: 20 },
  log1p: { arity: 1, cost: 20 },
  tanh: { arity: 1, cost: 25 },
  add: { arity: 2, cost: 1 },
  sub: { arity: 2, cost: 1 },
  mul: { arity: 2, cost: 1 },
  div: { arity: 2, cost: 4 },
  pow: { arity: 2, cost: 40 },
  /** The smaller of two numbers; NaN if either is NaN, −0 below +0 (JavaScript's `Math.min`). */
  min: { arity: 2, cost: 1 },
  /** The larger of two numbers; NaN if either is NaN, +0 above −0 (JavaScript's `Math.max`). */
  max: { arity: 2, cost: 1 },
  /** The product of two int32 values wrapped to 32 bits (two's complement). */
  imul: { arity: 2, cost: 1 },
  lt: { arity: 2, cost: 1 },
  le: { arity: 2, cost: 1 },
  gt: { arity: 2, cost: 1 },
  ge: { arity: 2, cost: 1 },
  eq: { arity: 2, cost: 1 },
  ne: { arity: 2, cost: 1 },
  and: { arity: 2, cost: 1 },
  or: { arity: 2, cost: 1 },
  not: { arity: 1, cost: 1 },
  /** `args[1]` where the bool `args[0]` is 1, else `args[2]`: only the chosen side is needed. */
  select: { arity: 3, cost: 1 },
} as const satisfies Record<string, { arity: number; cost: number }>;

/** The name of an IR op. */
export type IrOp = keyof typeof IR_OPS;

/** Ops that compare two numbers into a bool. */
export const COMPARISONS = ["lt", "le", "gt", "ge", "eq", "ne"] as const satisfies readonly IrOp[];
type Comparison = (typeof COMPARISONS)[number];

/** Per-element cost at or above which an op is a transcendental call worth computing only once. */
export const HEAVY_COST = 20;

/**
 * A node of the IR: an op of a dtype over argument nodes. Nodes are hash-consed (`node` returns the
 * one node for an op, dtype, attribute and arguments), so they are compared by identity, and `id`
 * names an expression wherever it appears (kernel caches key on it).
 */
export interface Expr {
  readonly id: number;
  readonly op: IrOp;
  readonly dtype: DType;
  readonly args: readonly Expr[];
  /** The input's index (`input`), the value (`constant`); 0 for every other op. */
  readonly attr: number;
  /** Whether a transcendental op (cost ≥ `HEAVY_COST`) is among this node and its arguments. */
  readonly heavy: boolean;
}

const nodes = new Map<string, Expr>();

/**
 * The node for `op` of `dtype` over `args` (with `attr` for inputs and constants): the existing one
 * when it was made before.
 *
 * @example
 * node("exp", "float64", [input(0, "float64")]) === ir.exp(input(0, "float64")); // true
 */
export function node(op: IrOp, dtype: DType, args: readonly Expr[], attr = 0): Expr {
  if (args.length !== IR_OPS[op].arity) {
    throw new Error(`ir: ${op} takes ${IR_OPS[op].arity} arguments, got ${args.length}`);
  }
  const value = Object.is(attr, -0) ? "-0" : String(attr);
  let key = `${op}:${dtype}:${value}`;
  for (const a of args) key += `,${a.id}`;
  const known = nodes.get(key);
  if (known !== undefined) return known;
  const heavy = IR_OPS[op].cost >= HEAVY_COST || args.some((a) => a.heavy);
  const made: Expr = { id: nodes.size, op, dtype, args, attr, heavy };
  nodes.set(key, made);
  return made;
}

/** Element i of the kernel's input `index`, of `dtype`. @example input(0, "float32") */
export function input(index: number, dtype: DType): Expr {
  return node("input", dtype, [], index);
}

/** The number `value` as a constant of `dtype`. @example constant(0.5, "float32") */
export function constant(value: number, dtype: DType): Expr {
  return node("constant", dtype, [], value);
}

/** An operand of an IR builder: a node, or a plain number taking the other operand's dtype. */
export type Operand = Expr | number;

function operands(args: readonly Operand[]): Expr[] {
  const typed = args.find((a): a is Expr => typeof a !== "number");
  const dtype = typed?.dtype ?? "float64";
  return args.map((a) => (typeof a === "number" ? constant(a, dtype) : a));
}

function numeric(op: IrOp, args: readonly Operand[]): Expr {
  const xs = operands(args);
  const dtype = xs.map((x) => x.dtype).reduce(promoteTypes);
  return node(op, dtype === "bool" ? "int32" : dtype, xs);
}

function comparison(op: Comparison, a: Operand, b: Operand): Expr {
  return node(op, "bool", operands([a, b]));
}

/**
 * Builders for every op but `input` and `constant`, each typed from its arguments (arithmetic in
 * the wider dtype, comparisons and logic in bool). An op file writes its elementwise expression with
 * them: `ir.mul(a, ir.sub(1, b))`.
 *
 * @example
 * const x = input(0, "float32");
 * ir.select(ir.gt(x, 0), x, 0); // relu, before rounding
 */
export const ir = {
  convert: (x: Expr, dtype: DType): Expr => {
    if (dtype === "bool" && x.dtype !== "bool") {
      throw new Error("ir: no conversion into bool (compare with 0 instead)");
    }
    return holds(x, dtype) ? x : node("convert", dtype, [x]);
  },
  neg: (x: Expr): Expr => numeric("neg", [x]),
  abs: (x: Expr): Expr => numeric("abs", [x]),
  floor: (x: Expr): Expr => numeric("floor", [x]),
  ceil: (x: Expr): Expr => numeric("ceil", [x]),
  round: (x: Expr): Expr => numeric("round", [x]),
  sqrt: (x: Expr): Expr => numeric("sqrt", [x]),
  exp: (x: Expr): Expr => numeric("exp", [x]),
  log: (x: Expr): Expr => numeric("log", [x]),
  log1p: (x: Expr): Expr => numeric("log1p", [x]),
  tanh: (x: Expr): Expr => numeric("tanh", [x]),
  add: (a: Operand, b: Operand): Expr => numeric("add", [a, b]),
  sub: (a: Operand, b: Operand): Expr => numeric("sub", [a, b]),
  mul: (a: Operand, b: Operand): Expr => numeric("mul", [a, b]),
  div: (a: Operand, b: Operand): Expr => numeric("div", [a, b]),
  pow: (a: Operand, b: Operand): Expr => numeric("pow", [a, b]),
  min: (a: Operand, b: Operand): Expr => numeric("min", [a, b]),
  max: (a: Operand, b: Operand): Expr => numeric("max", [a, b]),
  imul: (a: Operand, b: Operand): Expr => node("imul", "int32", operands([a, b])),
  lt: (a: Operand, b: Operand): Expr => comparison("lt", a, b),
  le: (a: Operand, b: Operand): Expr => comparison("le", a, b),
  gt: (a: Operand, b: Operand): Expr => comparison("gt", a, b),
  ge: (a: Operand, b: Operand): Expr => comparison("ge", a, b),
  eq: (a: Operand, b: Operand): Expr => comparison("eq", a, b),
  ne: (a: Operand, b: Operand): Expr => comparison("ne", a, b),
  and: (a: Expr, b: Expr): Expr => node("and", "bool", [a, b]),
  or: (a: Expr, b: Expr): Expr => node("or", "bool", [a, b]),
  not: (x: Expr): Expr => node("not", "bool", [x]),
  select: (cond: Expr, a: Operand, b: Operand): Expr => {
    const [x, y] = operands([a, b]);
    return node("select", promoteTypes(x.dtype, y.dtype), [cond, x, y]);
  },
};

/** Whether `x` compares numbers (its arguments' exact values decide the result). @example isComparison(ir.lt(x, 0)) // true */
export function isComparison(x: Expr): boolean {
  return (COMPARISONS as readonly IrOp[]).includes(x.op);
}

/**
 * Whether `x` holds a float32 value exactly (not a float32 result held in double precision, which
 * a `convert` would round): float32 inputs and conversions, bools, float32 constants, and choices
 * among them (selections, minima, maxima).
 *
 * @example
 * const f = input(0, "float32");
 * [isRounded(ir.neg(f)), isRounded(ir.mul(f, f))]; // [true, false]
 */
export function isRounded(x: Expr): boolean {
  switch (x.op) {
    case "constant":
      return Math.fround(x.attr) === x.attr || Number.isNaN(x.attr);
    case "input":
    case "convert":
      return x.dtype === "float32" || x.dtype === "bool";
    case "neg":
    case "abs":
      return isRounded(x.args[0]);
    case "select":
      return isRounded(x.args[1]) && isRounded(x.args[2]);
    case "min":
    case "max":
      return isRounded(x.args[0]) && isRounded(x.args[1]);
    default:
      return x.dtype === "bool";
  }
}

/** Whether `x` holds an int32 value already wrapped to 32 bits. */
function isWrapped(x: Expr): boolean {
  switch (x.op) {
    case "input":
    case "convert":
    case "imul":
      return true;
    case "constant":
      return (x.attr | 0) === x.attr;
    case "select":
      return isWrapped(x.args[1]) && isWrapped(x.args[2]);
    default:
      return false;
  }
}

/** Whether `x` already holds exactly the value a `convert` to `dtype` would give. */
function holds(x: Expr, dtype: DType): boolean {
  if (x.dtype !== dtype) return false;
  if (dtype === "float32") return isRounded(x);
  if (dtype === "int32") return isWrapped(x);
  return true;
}

/**
 * `x` with every node rebuilt bottom-up through `leaf` (inputs and constants) and hash-consing:
 * the expression of one kernel moved into another (its inputs renumbered).
 *
 * @example
 * substitute(ir.exp(input(0, "float64")), (x) => (x.op === "input" ? input(3, x.dtype) : x));
 * // ir.exp(input(3, "float64"))
 */
export function substitute(x: Expr, leaf: (x: Expr) => Expr, memo = new Map<Expr, Expr>()): Expr {
  const known = memo.get(x);
  if (known !== undefined) return known;
  const made =
    x.args.length === 0
      ? leaf(x)
      : node(
          x.op,
          x.dtype,
          x.args.map((a) => substitute(a, leaf, memo)),
          x.attr,
        );
  memo.set(x, made);
  return made;
}

/**
 * The nodes of the expressions `roots`, arguments before the nodes that use them.
 *
 * @example
 * topological([ir.exp(x)]); // [x, ir.exp(x)]
 */
export function topological(roots: readonly Expr[]): Expr[] {
  const order: Expr[] = [];
  const seen = new Set<Expr>();
  const visit = (x: Expr) => {
    if (seen.has(x)) return;
    seen.add(x);
    for (const a of x.args) visit(a);
    order.push(x);
  };
  for (const r of roots) visit(r);
  return order;
}

/**
 * What each renderer provides for every IR op: a total mapped type, so a renderer missing an op
 * does not compile. `T` is what the renderer builds (JavaScript source text for the JavaScript
 * renderer); `args` are the arguments already lowered.
 */
export type Lowerings<T> = { readonly [K in IrOp]: (args: readonly T[], x: Expr) => T };
