/**
 * The WebAssembly renderer of elementwise kernels: the IR lowered to the elementwise machine's
 * f32x4 instructions, compiled into a module per kernel and run on the wasm runtime's memory and
 * threads. It renders float32 kernels (and float32 comparisons stored as bools); float64 and
 * int32 ones, and the ops without a float32 vector form here (`tanh`, `round`, `imul`, `pow` but
 * by 0 … 4), stay on the JavaScript renderer.
 */

import { allocate } from "../../dtype.js";
import { gatherRows, scatterAddRows } from "../gather.js";
import {
  COMPARISONS,
  type Expr,
  type IrOp,
  isRounded,
  type Lowerings,
  topological,
} from "../ir.js";
import { javascript } from "../javascript.js";
import {
  type Kernel,
  type KernelArrays,
  layout,
  type Renderer,
  type RowStarts,
} from "../kernel.js";
import { constantRows, ElementwiseKernel, runElementwise, type Value } from "./elementwise.js";
import type { WasmRuntime } from "./runtime.js";

/** Integer exponents that `pow` is rendered for, as repeated products (`pow(x, 0)` is 1, NaN too). */
const POWERS = [0, 1, 2, 3, 4];

/** Whether this renderer has a float32 vector form of node `x`. */
function renders(x: Expr): boolean {
  if (x.dtype !== "float32" && x.dtype !== "bool") return false;
  switch (x.op) {
    case "tanh":
    case "round":
    case "imul":
      return false;
    case "pow":
      return x.args[1].op === "constant" && POWERS.includes(x.args[1].attr);
    case "convert":
      return x.args[0].dtype === "float32" || x.args[0].dtype === "bool";
    default:
      return true;
  }
}

/** Whether `x` is the constant 1. */
const isOne = (x: Expr) => x.op === "constant" && x.attr === 1;

/** Whether `x` is 1 − q or 1 + q, which a logarithm of it renders as log1p(∓q) (see `lowerings`). */
const onePlusMinus = (x: Expr) =>
  (x.op === "sub" && isOne(x.args[0])) ||
  (x.op === "add" && (isOne(x.args[0]) || isOne(x.args[1])));

/** What is known of the sign of `x`: 1 (≥ 0, or NaN), −1 (≤ 0, or NaN), 0 (either). */
function signOf(x: Expr): -1 | 0 | 1 {
  switch (x.op) {
    case "constant":
      return x.attr > 0 || Object.is(x.attr, 0) ? 1 : x.attr < 0 || Object.is(x.attr, -0) ? -1 : 0;
    case "exp":
    case "abs":
    case "sqrt":
      return 1;
    case "neg":
      return (-signOf(x.args[0]) || 0) as -1 | 0 | 1;
    case "select": {
      const [a, b] = [signOf(x.args[1]), signOf(x.args[2])];
      return a === b ? a : 0;
    }
    case "mul":
    case "div": {
      const product = signOf(x.args[0]) * signOf(x.args[1]);
      return product as -1 | 0 | 1;
    }
    case "pow":
      return x.args[1].op === "constant" && x.args[1].attr % 2 === 0 ? 1 : 0;
    default:
      return 0;
  }
}

/** Ops whose result rounding an argument to float32 can move by far more than an ulp of it. */
const AMPLIFYING = new Set<IrOp>(["add", "sub", "log", "floor", "ceil", ...COMPARISONS]);

/**
 * Whether a float32 step that the JavaScript renderer holds in double precision (a step no
 * `convert` rounds, inside one op's expression) feeds an op that would amplify its rounding here,
 * where every step rounds: a sum or difference that may cancel (1 − σ(x) for σ near 1, or
 * max(x, 0) − x·y), a logarithm (near 1), a floor or ceiling, a comparison. Sums of terms of one
 * known sign (1 + exp(−x)) cannot cancel, and log(1 ± q) is rendered as log1p(±q), which keeps
 * the relative accuracy of q.
 */
function amplifiesRounding(nodes: readonly Expr[]): boolean {
  const consumers = new Map<Expr, Expr[]>();
  for (const x of nodes) {
    for (const a of x.args) {
      const known = consumers.get(a);
      if (known === undefined) consumers.set(a, [x]);
      else known.push(x);
    }
  }
  const held = (x: Expr) => x.dtype === "float32" && !isRounded(x);
  return nodes.some((x) => {
    if (!AMPLIFYING.has(x.op) || !x.args.some(held)) return false;
    if (x.op === "log" && onePlusMinus(x.args[0])) return false;
    if (onePlusMinus(x) && (consumers.get(x) ?? []).every((c) => c.op === "log")) return false;
    if (x.op === "add" || x.op === "sub") {
      const [a, b] = [signOf(x.args[0]), signOf(x.args[1])];
      const agree = x.op === "add" ? a * b : -a * b;
      if (agree === 1) return false;
    }
    return true;
  });
}

/** Whether strides over the loop shape `shape` walk memory contiguously (row-major, step 1). */
function contiguous(shape: Int32Array, strides: Int32Array): boolean {
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== step) return false;
    step *= shape[d];
  }
  return true;
}

/**
 * A strided read as gathered rows: one row per innermost run of the loop `shape`, starting where
 * the strides put it, its columns `strides[last]` apart (0 for a broadcast along the row, which
 * is gathered as splats, 1 for a contiguous row, moved by whole vectors, any other stride, such as
 * a column of a wider array, element by element).
 */
function stridedRows(
  shape: Int32Array,
  strides: Int32Array,
  offset: number,
): { rows: RowStarts; width: number; colStride: number } {
  const rank = shape.length;
  const colStride = strides[rank - 1];
  const width = shape[rank - 1];
  let count = 1;
  for (let d = 0; d < rank - 1; d++) count *= shape[d];
  // One outer axis: rows evenly apart, through the table 0, 1, 2, … scaled by its stride.
  if (rank <= 2) {
    const scale = rank === 2 ? strides[0] : 0;
    return { rows: { index: countingTable(count), scale, start: offset }, width, colStride };
  }
  const index = new Int32Array(count);
  const at = new Int32Array(Math.max(0, rank - 1));
  let start = 0;
  for (let r = 0; r < count; r++) {
    index[r] = start;
    // The next row: the last outer axis steps, and carries into the ones before it.
    for (let d = rank - 2; d >= 0; d--) {
      start += strides[d];
      if (++at[d] < shape[d]) break;
      at[d] = 0;
      start -= strides[d] * shape[d];
    }
  }
  return { rows: { index, scale: 1, start: offset }, width, colStride };
}

/** The tables 0, 1, …, n − 1 handed out, by n (one array for all, the same view for each n). */
const countingTables = new Map<number, Int32Array>();
let counting: Int32Array = new Int32Array(0);

/** The row table 0, 1, …, n − 1: a view of one shared array, made once for each n. */
function countingTable(n: number): Int32Array {
  const known = countingTables.get(n);
  if (known !== undefined) return known;
  if (counting.length < n) {
    counting = allocate("int32", Math.max(n, 2 * counting.length));
    for (let i = 0; i < counting.length; i++) counting[i] = i;
    countingTables.clear();
  }
  if (countingTables.size >= 64) countingTables.clear();
  const table = counting.subarray(0, n);
  constantRows(table);
  countingTables.set(n, table);
  return table;
}

/**
 * Rows cover less than this fraction of their array: they are gathered (or placed) in JavaScript,
 * and only they cross into wasm memory, not the whole array.
 */
const SPARSE = 1 / 4;

/** Whether `rows` of `width` read or write a small part of an array of `length` elements. */
function sparse(rows: RowStarts, width: number, length: number): boolean {
  return rows.index.length * width < SPARSE * length;
}

/**
 * The lowering of every IR op into instructions of `k`, each argument already lowered: float32
 * values are float32 lanes (every op rounds, which is what `convert` then keeps), bool values are
 * masks (lanes of all ones or zeros).
 */
function lowerings(
  k: ElementwiseKernel,
  inputs: readonly Value[],
  lowered: (x: Expr) => Value,
): Lowerings<Value> {
  const binary =
    (op: "add" | "sub" | "mul" | "div" | "min" | "max" | "lt" | "le" | "gt" | "ge" | "eq" | "ne") =>
    ([a, b]: readonly Value[]) =>
      k.binary(op, a, b);
  const unary =
    (op: "neg" | "abs" | "floor" | "ceil" | "sqrt" | "exp" | "log" | "log1p") =>
    ([a]: readonly Value[]) =>
      k.unary(op, a);
  const missing = (op: IrOp) => () => {
    throw new Error(`wasm renderer: ${op} has no float32 vector form (supports() is false)`);
  };
  return {
    input: (_, x) => inputs[x.attr],
    // A bool constant is a mask: 1 = 1 is all ones in every lane.
    constant: (_, x) =>
      x.dtype === "bool"
        ? x.attr !== 0
          ? k.binary("eq", k.constant(1), k.constant(1))
          : k.constant(0)
        : k.constant(x.attr),
    // Every float32 op has rounded already; a bool becomes 1 or 0 (its mask AND the bits of 1.0).
    convert: ([a], x) => (x.args[0].dtype === "bool" ? k.binary("and", a, k.constant(1)) : a),
    neg: unary("neg"),
    abs: unary("abs"),
    floor: unary("floor"),
    ceil: unary("ceil"),
    round: missing("round"),
    sqrt: unary("sqrt"),
    exp: unary("exp"),
    // log(1 ± y) with 1 ± y not rounded to float32 (the JavaScript renderer holds it in double):
    // log1p(±y), so that rounding 1 − p to float32 does not cost log(1 − p) its digits for small p.
    log: ([a], x) => {
      const [arg] = x.args;
      if (arg.op === "sub" && isOne(arg.args[0])) {
        return k.unary("log1p", k.unary("neg", lowered(arg.args[1])));
      }
      if (arg.op === "add" && onePlusMinus(arg)) {
        return k.unary("log1p", lowered(isOne(arg.args[0]) ? arg.args[1] : arg.args[0]));
      }
      return k.unary("log", a);
    },
    log1p: unary("log1p"),
    tanh: missing("tanh"),
    add: binary("add"),
    sub: binary("sub"),
    mul: binary("mul"),
    div: binary("div"),
    pow: ([a], x) => {
      const times = x.args[1].attr;
      if (times === 0) return k.constant(1);
      let product = a;
      for (let i = 1; i < times; i++) product = k.binary("mul", product, a);
      return product;
    },
    min: binary("min"),
    max: binary("max"),
    imul: missing("imul"),
    lt: binary("lt"),
    le: binary("le"),
    gt: binary("gt"),
    ge: binary("ge"),
    eq: binary("eq"),
    ne: binary("ne"),
    and: ([a, b]) => k.binary("and", a, b),
    or: ([a, b]) => k.binary("or", a, b),
    // A mask's all-ones lanes are a NaN as float32, which equals nothing; its zero lanes equal 0.
    not: ([a]) => k.binary("eq", a, k.constant(0)),
    select: ([condition, a, b], x) => selection(k, x, condition, a, b),
  };
}

/** Whether `x` is the constant +0 (all bits zero). */
const isPlusZero = (x: Expr) => x.op === "constant" && Object.is(x.attr, 0);

/**
 * `select(condition, a, b)` of node `x`, in fewer instructions where its form allows, each the
 * same bits as the selection: a choice against +0 is a bitwise mask (`cond ? a : 0` is a AND
 * mask), and a selection by a comparison of its own two sides is a pseudo-minimum or maximum
 * (`a < b ? b : a` is pmax(a, b), NaN lanes keeping a as both do). A side with a logarithm or an
 * exponential keeps the selection, which the compiled kernel turns into a branch that skips it
 * when no lane needs it.
 */
function selection(k: ElementwiseKernel, x: Expr, condition: Value, a: Value, b: Value): Value {
  const [test, ax, bx] = x.args;
  if (ax.heavy || bx.heavy) return k.select(condition, a, b);
  if (isPlusZero(ax)) return k.binary("andnot", b, condition);
  if (isPlusZero(bx)) return k.binary("and", a, condition);
  if (test.op === "lt" || test.op === "gt") {
    const [p, q] = test.args;
    const lt = test.op === "lt";
    // p < q ? q : p = pmax(p, q); p < q ? p : q = pmin(q, p); and the mirror images for >.
    if (ax === q && bx === p) return k.binary(lt ? "pmax" : "pmin", b, a);
    if (ax === p && bx === q) return k.binary(lt ? "pmin" : "pmax", b, a);
  }
  return k.select(condition, a, b);
}

/**
 * An input read through rows: gathered in wasm from the whole array, or, when the rows cover a
 * small part of it with contiguous columns, gathered here first so that only they are copied in.
 */
function readRows(
  runtime: WasmRuntime,
  k: ElementwiseKernel,
  data: Float32Array,
  rows: RowStarts,
  width: number,
  colStride: number,
): Value {
  // An array in wasm memory already is gathered where it is, however few its rows.
  if (colStride === 1 && runtime.placeOf(data) < 0 && sparse(rows, width, data.length)) {
    const compact = new Float32Array(rows.index.length * width);
    gatherRows(data, rows, width, compact);
    return k.load(k.input(compact));
  }
  return k.gather(k.input(data), rows, width, colStride);
}

/** Options of `createWasmRenderer`. */
export interface WasmRendererOptions {
  /** Kernels of fewer elements are left to the JavaScript renderer (staging costs more). Default 2^14. */
  minSize?: number;
  /**
   * Compile each kernel into a module of its own (the default), or interpret it on the machine of
   * the runtime's module (no compilation; slower per element).
   */
  compiled?: boolean;
}

/**
 * A `Renderer` of float32 elementwise kernels on `runtime`: contiguous, scalar and gathered-row
 * inputs, strided ones read as rows (broadcasts, slices), stores, sums, scatters and places into
 * float32 arrays, split between the runtime's threads by blocks of elements. A scatter whose rows
 * may repeat runs on one thread, a disjoint one on all. Rows that cover a small part of an input
 * are gathered in JavaScript, and a scatter or place into few rows is computed compactly and added
 * in JavaScript, so that only what is read or written crosses into wasm memory. + − × ÷ √, min,
 * max, comparisons and selections give the JavaScript renderer's values bit for bit where every
 * step is converted to float32 (the ops' exact mode), `log`, `log1p` and `exp` within an ulp of
 * them; a chain of float32 steps without conversions rounds at every step here (within float32
 * rounding of the JavaScript renderer, which holds them in double precision). Sums are in double
 * precision, block by block in a fixed order. A kernel it does not support (`supports`), or that
 * does not fit in wasm memory, runs on the JavaScript renderer.
 *
 * @example
 * const wasm = createWasmRenderer(new WasmRuntime(hasRelaxedSimd()));
 * if (wasm.supports(kernel)) wasm.run(kernel, { inputs, out, sums: null });
 */
export function createWasmRenderer(
  runtime: WasmRuntime,
  { minSize = 1 << 14, compiled = true }: WasmRendererOptions = {},
): Renderer {
  const supports = (kernel: Kernel): boolean => {
    let size = 1;
    for (const d of kernel.shape) size *= d;
    if (size < minSize) return false;
    const { output } = kernel;
    // Outputs: float32 arrays, or a bool array stored from the masks of comparisons.
    const stored = output.kind === "store" && output.dtype === "bool";
    if (output.kind !== "sum" && output.dtype !== "float32" && !stored) return false;
    const inputsOk = kernel.inputs.every((input) => input.dtype === "float32");
    const nodes = topological([kernel.value, ...kernel.sums]);
    return inputsOk && nodes.every(renders) && !amplifiesRounding(nodes);
  };

  const run = (kernel: Kernel, arrays: KernelArrays): number => {
    // What it does not render runs on the JavaScript renderer, so that it can serve every kernel.
    if (!supports(kernel)) return javascript.run(kernel, arrays);
    let n = 1;
    for (const d of kernel.shape) n *= d;
    const k = new ElementwiseKernel(n, runtime);
    const plan = layout(kernel);
    const inputs = kernel.inputs.map((input, index) => {
      const data = arrays.inputs[index] as Float32Array;
      if (input.kind === "scalar") return k.scalar(data[input.offset]);
      if (input.kind === "strided") {
        const strides = plan.strides[index];
        if (contiguous(plan.shape, strides)) {
          return k.load(k.input(data.subarray(input.offset, input.offset + n)));
        }
        const { rows, width, colStride } = stridedRows(plan.shape, strides, input.offset);
        return readRows(runtime, k, data, rows, width, colStride);
      }
      return readRows(runtime, k, data, input.rows, input.width, input.colStride);
    });
    const values = new Map<Expr, Value>();
    const lower = lowerings(k, inputs, (x) => values.get(x) as Value);
    for (const x of topological([kernel.value, ...kernel.sums])) {
      const args = x.args.map((a) => values.get(a) as Value);
      values.set(x, lower[x.op](args, x));
    }
    const value = values.get(kernel.value) as Value;
    const { output } = kernel;
    let total = -1;
    if (output.kind === "sum") total = k.sum(value);
    else if (output.kind === "store" && output.dtype === "bool") {
      k.storeMask(value, k.output((arrays.out as Uint8Array).subarray(0, n)));
    } else if (output.kind === "store") {
      k.store(value, k.output((arrays.out as Float32Array).subarray(0, n)));
    }
    // Rows that touch a small part of an output in JavaScript memory are computed compactly and
    // added (or, into the zero buffer of a place, stored) in JavaScript, in row order, as the wasm
    // scatter would.
    let compact: Float32Array | null = null;
    if (output.kind === "scatter" || output.kind === "place") {
      const dest = arrays.out as Float32Array;
      const scatter = output.kind === "scatter";
      // A scatter into an array in wasm memory adds where it is (a place would zero it all first).
      const inPlace = scatter && runtime.placeOf(dest) >= 0;
      if (!inPlace && sparse(output.rows, output.width, dest.length)) {
        compact = new Float32Array(n);
        k.store(value, k.output(compact));
      } else {
        // A place's destination is a zero buffer (the kernel's contract): only its rows are written.
        const out = k.output(dest, scatter ? "values" : "zeroed");
        // Placing gives what adding into the zero buffer would: −0 + 0 is +0.
        const placed = scatter ? value : k.binary("add", value, k.constant(0));
        k.place(placed, out, output.rows, output.width, 1, scatter);
      }
    }
    const alongside = kernel.sums.map((x) => k.sum(values.get(x) as Value));
    // A scatter's rows may repeat: unless they are disjoint, one thread adds them in order (a
    // compact one adds them in JavaScript).
    const threads =
      output.kind === "scatter" && output.disjoint !== true && compact === null ? 1 : undefined;
    const sums = runElementwise(runtime, k, threads, compiled);
    if (sums === null) return javascript.run(kernel, arrays);
    if (compact !== null && (output.kind === "scatter" || output.kind === "place")) {
      // 0 + v into a place's zero buffer is v, with −0 made +0 as placing does.
      scatterAddRows(compact, output.rows, output.width, arrays.out as Float32Array);
    }
    arrays.sums?.set(alongside.map((s) => sums[s]));
    return total < 0 ? 0 : sums[total];
  };

  return { name: compiled ? "wasm" : "wasm-machine", supports, run };
}
