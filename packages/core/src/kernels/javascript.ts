/**
 * The JavaScript renderer: each distinct kernel becomes one monomorphic loop made with
 * `new Function`, that V8 compiles with its arithmetic inlined, called in chunks of elements.
 */

import type { DataArray } from "../dtype.js";
import { type Expr, type IrOp, type Lowerings, topological } from "./ir.js";
import {
  type InputAccess,
  type Kernel,
  type KernelArrays,
  type KernelOutput,
  type Layout,
  layout,
  type Renderer,
} from "./kernel.js";

/** A number as JavaScript source: negative values, −0 and the infinities in parentheses. */
function literal(value: number): string {
  if (Object.is(value, -0)) return "(-0)";
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "(-Infinity)";
  return value < 0 ? `(${value})` : String(value);
}

/**
 * The JavaScript of each IR op, its arguments already rendered (`args` are expressions; the first
 * argument of `select` is a condition, see `conditions`). Values are JavaScript numbers (doubles);
 * a float32 value is rounded only by `convert`.
 */
const lowerings: Lowerings<string> = {
  input: (_, x) => `v${x.attr}`,
  constant: (_, x) => literal(x.attr),
  convert: ([a], x) => {
    if (x.dtype === "float32") return `Math.fround(${a})`;
    if (x.dtype === "int32") return `(${a} | 0)`;
    if (x.dtype === "float64") return a;
    throw new Error("javascript renderer: no conversion into bool (compare with 0 instead)");
  },
  neg: ([a]) => `(-${a})`,
  abs: ([a]) => `Math.abs(${a})`,
  floor: ([a]) => `Math.floor(${a})`,
  ceil: ([a]) => `Math.ceil(${a})`,
  // Math.round rounds halves up; a half is exactly a − floor(a) = 0.5, and its even neighbour is
  // twice the rounded half of a. Reads `a` three times: the renderer names it first (`reusing`).
  round: ([a]) => `(${a} - Math.floor(${a}) === 0.5 ? 2 * Math.round(${a} / 2) : Math.round(${a}))`,
  sqrt: ([a]) => `Math.sqrt(${a})`,
  exp: ([a]) => `Math.exp(${a})`,
  log: ([a]) => `Math.log(${a})`,
  log1p: ([a]) => `Math.log1p(${a})`,
  tanh: ([a]) => `Math.tanh(${a})`,
  add: ([a, b]) => `(${a} + ${b})`,
  sub: ([a, b]) => `(${a} - ${b})`,
  mul: ([a, b]) => `(${a} * ${b})`,
  div: ([a, b]) => `(${a} / ${b})`,
  pow: ([a, b]) => `Math.pow(${a}, ${b})`,
  min: ([a, b]) => `Math.min(${a}, ${b})`,
  max: ([a, b]) => `Math.max(${a}, ${b})`,
  imul: ([a, b]) => `Math.imul(${a}, ${b})`,
  lt: ([a, b]) => `(${a} < ${b} ? 1 : 0)`,
  le: ([a, b]) => `(${a} <= ${b} ? 1 : 0)`,
  gt: ([a, b]) => `(${a} > ${b} ? 1 : 0)`,
  ge: ([a, b]) => `(${a} >= ${b} ? 1 : 0)`,
  eq: ([a, b]) => `(${a} === ${b} ? 1 : 0)`,
  ne: ([a, b]) => `(${a} !== ${b} ? 1 : 0)`,
  and: ([a, b]) => `(${a} & ${b})`,
  or: ([a, b]) => `(${a} | ${b})`,
  not: ([a]) => `(${a} ^ 1)`,
  select: ([cond, a, b]) => `(${cond} ? ${a} : ${b})`,
};

/** Ops whose lowering reads an argument more than once: that argument is named first. */
const reusing: ReadonlySet<IrOp> = new Set<IrOp>(["round"]);

/** Bool ops written as JavaScript conditions where a condition is wanted (in a `select`). */
const conditions: Partial<Lowerings<string>> = {
  lt: ([a, b]) => `(${a} < ${b})`,
  le: ([a, b]) => `(${a} <= ${b})`,
  gt: ([a, b]) => `(${a} > ${b})`,
  ge: ([a, b]) => `(${a} >= ${b})`,
  eq: ([a, b]) => `(${a} === ${b})`,
  ne: ([a, b]) => `(${a} !== ${b})`,
  and: ([a, b]) => `(${a} && ${b})`,
  or: ([a, b]) => `(${a} || ${b})`,
  not: ([a]) => `!${a}`,
};

/** Whether argument `i` of `x` is read only on one side of a choice (a `select`'s branches). */
const branch = (x: Expr, i: number) => x.op === "select" && i > 0;
/** Logic whose arguments are conditions themselves when it is written as a condition. */
const logic: ReadonlySet<IrOp> = new Set<IrOp>(["and", "or", "not"]);

/**
 * The statements and root values of a block of the loop body: the whole body, or one side of a
 * `select`. Each node is computed at most once on every path through the block: a node read more
 * than once, wherever it is sure to be computed anyway, is named (`const`); a node needed only on
 * one side of a choice is computed there; a node needed under two different choices is named before
 * both. A choice whose sides need statements of their own becomes an `if`.
 */
function block(roots: readonly Expr[], names: Map<Expr, string>): [string[], string[]] {
  const known = (x: Expr) => names.has(x) || x.op === "constant";
  // Every node this block may compute, and how often each is read.
  const all = new Set<Expr>();
  const reads = new Map<Expr, number>();
  const count = (x: Expr, n: number) => reads.set(x, (reads.get(x) ?? 0) + n);
  const collect = (x: Expr) => {
    if (known(x) || all.has(x)) return;
    all.add(x);
    x.args.forEach((a) => {
      count(a, reusing.has(x.op) ? 2 : 1);
      collect(a);
    });
  };
  for (const r of roots) {
    count(r, 1);
    collect(r);
  }
  // The nodes computed on every path (not only on one side of a choice), grown by the nodes that
  // two choices need.
  const eager = new Set<Expr>();
  const makeEager = (x: Expr) => {
    if (known(x) || eager.has(x)) return;
    eager.add(x);
    x.args.forEach((a, i) => {
      if (!branch(x, i)) makeEager(a);
    });
  };
  const nodes = topological(roots).filter((x) => !known(x));
  let hoist: Expr[] = [...roots];
  while (hoist.length > 0) {
    for (const x of hoist) makeEager(x);
    // The one eager choice each other node waits on (null: more than one), users before arguments.
    const choice = new Map<Expr, Expr | null>();
    for (let i = nodes.length - 1; i >= 0; i--) {
      const x = nodes[i];
      const mine = eager.has(x) ? x : choice.get(x);
      for (const a of x.args) {
        if (known(a) || eager.has(a) || mine === undefined) continue;
        const before = choice.get(a);
        choice.set(a, before === undefined || before === mine ? mine : null);
      }
    }
    hoist = [...choice].filter(([, c]) => c === null).map(([x]) => x);
  }
  const order = topological(roots).filter((x) => eager.has(x));
  const named = order.filter((x) => (reads.get(x) ?? 0) > 1);
  const inner = new Map(names);
  for (const x of named) inner.set(x, `t${x.id}`);
  // The sides of each choice, as blocks of their own.
  const sides = new Map<Expr, [string[], string[]][]>();
  for (const x of order) {
    if (x.op !== "select") continue;
    const [yes, no] = [block([x.args[1]], inner), block([x.args[2]], inner)];
    sides.set(x, [yes, no]);
    if ((yes[0].length > 0 || no[0].length > 0) && !inner.has(x)) {
      named.push(x);
      inner.set(x, `t${x.id}`);
    }
  }
  const render = (x: Expr, condition: boolean): string => {
    const name = inner.get(x);
    if (name !== undefined) return condition ? `(${name} !== 0)` : name;
    if (x.op === "select") {
      const [[, [yes]], [, [no]]] = sides.get(x)!;
      const value = lowerings.select([render(x.args[0], true), yes, no], x);
      return condition ? `(${value} !== 0)` : value;
    }
    const conditional = condition ? conditions[x.op] : undefined;
    if (conditional !== undefined) {
      return conditional(
        x.args.map((a) => render(a, logic.has(x.op))),
        x,
      );
    }
    const value = lowerings[x.op](
      x.args.map((a) => render(a, false)),
      x,
    );
    return condition ? `(${value} !== 0)` : value;
  };
  const statements: string[] = [];
  const definitions = new Set(named);
  for (const x of order) {
    if (!definitions.has(x)) continue;
    const name = inner.get(x)!;
    inner.delete(x);
    const split = sides.get(x);
    if (split !== undefined && (split[0][0].length > 0 || split[1][0].length > 0)) {
      const [[yesBody, [yes]], [noBody, [no]]] = split;
      statements.push(
        `let ${name};`,
        `if (${render(x.args[0], true)}) { ${yesBody.join(" ")} ${name} = ${yes}; }`,
        `else { ${noBody.join(" ")} ${name} = ${no}; }`,
      );
    } else statements.push(`const ${name} = ${render(x, false)};`);
    inner.set(x, name);
  }
  return [statements, roots.map((r) => render(r, false))];
}

/** The source of each part of the loop that reads an input, by its kind of access. */
interface InputCode {
  readonly params: readonly string[];
  /** Before the loop: what carries over from row to row, worked out from the first element. */
  readonly prologue: string;
  /** At the start of each row. */
  readonly rowStart: string;
  /** Per element: defines `v{i}`. */
  readonly load: string;
  /** When an outer axis steps forward, and when it wraps around. */
  readonly advance: string;
  readonly rewind: string;
}

function inputCode(input: InputAccess, i: number, rowwise: boolean): InputCode {
  const none = { rowStart: "", load: "", advance: "", rewind: "" };
  if (input.kind === "scalar") {
    return { params: [`d${i}`, `o${i}`], prologue: `const v${i} = d${i}[o${i}];`, ...none };
  }
  if (input.kind === "strided") {
    return {
      params: [`d${i}`, `s${i}`, `o${i}`],
      prologue: `const st${i} = s${i}[rank - 1]; let base${i} = o${i}; for (let d = 0; d < rank - 1; d++) base${i} += index[d] * s${i}[d];`,
      rowStart: `let i${i} = base${i} + j0 * st${i};`,
      load: `const v${i} = d${i}[i${i}]; i${i} += st${i};`,
      advance: `base${i} += s${i}[d];`,
      rewind: `base${i} -= s${i}[d] * shape[d];`,
    };
  }
  const params = [`d${i}`, `ro${i}`, `ru${i}`, `rs${i}`, `w${i}`, `cs${i}`];
  if (rowwise) {
    return {
      params,
      prologue: "",
      ...none,
      rowStart: `const p${i} = rs${i} + ro${i}[row] * ru${i};`,
      load: `const v${i} = d${i}[p${i} + j * cs${i}];`,
    };
  }
  // Rows of another width than the loop's: a position and a column counter of its own.
  return {
    params,
    prologue: `const nr${i} = ro${i}.length; let r${i} = Math.floor(o / w${i}), c${i} = o - r${i} * w${i}; let p${i} = r${i} < nr${i} ? rs${i} + ro${i}[r${i}] * ru${i} + c${i} * cs${i} : 0;`,
    ...none,
    load: `const v${i} = d${i}[p${i}]; p${i} += cs${i}; if (++c${i} === w${i}) { c${i} = 0; p${i} = ++r${i} < nr${i} ? rs${i} + ro${i}[r${i}] * ru${i} : 0; }`,
  };
}

/** The source that writes the value `v`, by the kind of output. */
function outputCode(
  output: KernelOutput,
  v: string,
  rowwise: boolean,
): { prologue: string; rowStart: string; write: string } {
  if (output.kind === "store")
    return { prologue: "", rowStart: "", write: `out[first + j] = ${v};` };
  if (output.kind === "sum") return { prologue: "", rowStart: "", write: `acc += ${v};` };
  // Placing into a zero buffer gives exactly what adding into it would: 0 + (−0) is +0.
  const update = output.kind === "place" ? `= ${v} + 0` : `+= ${v}`;
  const rows =
    "const onr = orows.index.length, oro = orows.index, ou = orows.scale, os = orows.start;";
  if (rowwise) {
    return {
      prologue: rows,
      rowStart: "const op = os + oro[row] * ou;",
      write: `out[op + j] ${update};`,
    };
  }
  return {
    prologue: `${rows} let orr = Math.floor(o / ow), oc = o - orr * ow; let op = orr < onr ? os + oro[orr] * ou + oc : 0;`,
    rowStart: "",
    write: `out[op] ${update}; op++; if (++oc === ow) { oc = 0; op = ++orr < onr ? os + oro[orr] * ou : 0; }`,
  };
}

/**
 * A compiled loop over elements `from` to `to` (row-major over its loop shape `shape`); `state`
 * carries its sums ([value, ...kernel.sums]) from one call to the next, and `index` is scratch for
 * its odometer (rank elements).
 */
type Loop = (
  out: DataArray | null,
  shape: Int32Array,
  rank: number,
  orows: unknown,
  ow: number,
  from: number,
  to: number,
  state: Float64Array,
  index: Int32Array,
  ...args: unknown[]
) => void;

/**
 * The source of `kernel`'s loop. Strided inputs advance by their innermost stride and an odometer
 * over the outer axes. When the row inputs and a scattered output all have rows of the loop's
 * innermost length (`rowwise`), each inner loop is one row and row starts are looked up once per
 * row; otherwise row inputs follow the element order with a counter each.
 */
function loopSource(kernel: Kernel, rowwise: boolean): { params: string[]; source: string } {
  const { output, sums } = kernel;
  // A float32 store rounds by itself: a value that is only stored needs no conversion of its own.
  let value = kernel.value;
  const stores = output.kind === "store" || output.kind === "place";
  if (
    stores &&
    output.dtype === "float32" &&
    value.op === "convert" &&
    value.dtype === "float32" &&
    !topological(sums).includes(value)
  )
    value = value.args[0];
  const used = new Set(
    topological([value, ...sums])
      .filter((x) => x.op === "input")
      .map((x) => x.attr),
  );
  const names = new Map<Expr, string>();
  for (const x of topological([value, ...sums])) if (x.op === "input") names.set(x, `v${x.attr}`);
  const [body, [result, ...summed]] = block([value, ...sums], names);
  const code = kernel.inputs.map((input, i) => inputCode(input, i, rowwise));
  const live = code.filter((_, i) => used.has(i));
  const join = (part: keyof Omit<InputCode, "params">) => live.map((c) => c[part]).join("\n");
  const out = outputCode(output, result, rowwise);
  const source = `
    const inner = shape[rank - 1];
    let row = Math.floor(from / inner);
    let j0 = from - row * inner;
    for (let d = rank - 2, rest = row; d >= 0; d--) {
      index[d] = rest % shape[d];
      rest = (rest - index[d]) / shape[d];
    }
    let o = from;
    ${join("prologue")}
    ${out.prologue}
    let acc = state[0]${sums.map((_, k) => `, acc${k} = state[${k + 1}]`).join("")};
    while (o < to) {
      const j1 = Math.min(inner, j0 + (to - o));
      const first = o - j0;
      ${join("rowStart")}
      ${out.rowStart}
      for (let j = j0; j < j1; j++) {
        ${join("load")}
        ${body.join("\n        ")}
        ${out.write}
        ${summed.map((v, k) => `acc${k} += ${v};`).join(" ")}
      }
      o += j1 - j0;
      j0 = 0;
      if (j1 < inner) break;
      row++;
      for (let d = rank - 2; d >= 0; d--) {
        ${join("advance")}
        if (++index[d] < shape[d]) break;
        index[d] = 0;
        ${join("rewind")}
      }
    }
    state[0] = acc;${sums.map((_, k) => ` state[${k + 1}] = acc${k};`).join("")}`;
  const params = [
    "out",
    "shape",
    "rank",
    "orows",
    "ow",
    "from",
    "to",
    "state",
    "index",
    ...code.flatMap((c) => c.params),
  ];
  return { params, source };
}

const loops = new Map<string, Loop>();

/** The loop of `kernel`, compiled once per distinct expression, output and input access. */
function compile(kernel: Kernel, plan: Layout): Loop {
  const { output } = kernel;
  let key = `${output.kind}:${output.kind === "sum" ? "" : output.dtype}:${plan.rowwise ? "r" : "e"}|`;
  for (const input of kernel.inputs) key += `${input.kind} ${input.dtype},`;
  key += `|${kernel.value.id}|${kernel.sums.map((s) => s.id).join(",")}`;
  let loop = loops.get(key);
  if (loop === undefined) {
    const { params, source } = loopSource(kernel, plan.rowwise);
    loop = new Function(...params, source) as Loop;
    loops.set(key, loop);
  }
  return loop;
}

/** Elements per call of a compiled loop (tests make it tiny to restart loops mid-row). */
export const javascriptChunk = { size: 1 << 13 };

/**
 * Runs `kernel` on `arrays`. In chunks of elements: a loop that starts cold (its optimised code
 * dropped by the garbage collector, as happens between iterations of a training step) then runs
 * its optimised code after a few chunks, where one long call would stay in on-stack-replaced code,
 * measured 1.5 × slower.
 */
function run(kernel: Kernel, arrays: KernelArrays): number {
  let n = 1;
  for (const d of kernel.shape) n *= d;
  if (n === 0) {
    arrays.sums?.fill(0);
    return 0;
  }
  const plan = layout(kernel);
  const loop = compile(kernel, plan);
  const args: unknown[] = [];
  kernel.inputs.forEach((input, k) => {
    const data = arrays.inputs[k];
    if (input.kind === "scalar") args.push(data, input.offset);
    else if (input.kind === "strided") args.push(data, plan.strides[k], input.offset);
    else {
      const { index, scale, start } = input.rows;
      args.push(data, index, scale, start, input.width, input.colStride);
    }
  });
  const { output } = kernel;
  const scatters = output.kind === "scatter" || output.kind === "place";
  const { shape } = plan;
  const step = Math.max(1, javascriptChunk.size);
  const state = new Float64Array(1 + kernel.sums.length);
  // One argument list for every call; only the range changes.
  const call: unknown[] = [
    arrays.out,
    shape,
    shape.length,
    scatters ? output.rows : null,
    scatters ? output.width : 0,
    0,
    0,
    state,
    new Int32Array(shape.length),
    ...args,
  ];
  for (let from = 0; from < n; from += step) {
    call[5] = from;
    call[6] = Math.min(n, from + step);
    Reflect.apply(loop, undefined, call);
  }
  arrays.sums?.set(state.subarray(1));
  return state[0];
}

/**
 * The JavaScript renderer: runs every kernel.
 *
 * @example
 * const x = input(0, "float64");
 * javascript.run(
 *   { shape: [2], inputs: [{ kind: "strided", dtype: "float64", strides: [1], offset: 0 }],
 *     value: ir.mul(x, x), output: { kind: "sum" }, sums: [] },
 *   { inputs: [new Float64Array([1, 2])], out: null, sums: null },
 * ); // 5
 */
export const javascript: Renderer = {
  name: "javascript",
  supports: () => true,
  run,
};

/** @internal The source of the loop that runs `kernel` (for tests of its scheduling). */
export function javascriptSource(kernel: Kernel): string {
  return loopSource(kernel, layout(kernel).rowwise).source;
}
