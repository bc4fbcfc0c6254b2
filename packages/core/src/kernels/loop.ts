/**
 * Compiled loops: the code generated for a program (one `new Function` per distinct program, mode
 * and layout), how it walks memory, and how it is called, in chunks.
 */

import type { DataArray } from "../dtype.js";
import { type Shape, sizeOf } from "../shape.js";
import {
  fusion,
  inputArray,
  isConstant,
  isRaw,
  type Program,
  type ProgramInput,
  type RowStarts,
} from "./program.js";

export type Mode = "store" | "sum" | "scatter" | "place";
/**
 * A compiled loop over elements `from` to `to` (row-major over its loop shape `shape`); `state`
 * carries its sums ([result, ...program.sums]) from one call to the next, and `index` is scratch
 * for its odometer (rank elements). See `compile`, `launch`.
 */
export type Kernel = (
  out: DataArray | null,
  shape: Int32Array,
  rank: number,
  rows: RowStarts | null,
  width: number,
  from: number,
  to: number,
  state: Float64Array,
  index: Int32Array,
  ...args: unknown[]
) => void;
const kernels = new Map<string, Kernel>();

/**
 * The loop for a program. The result is stored in `out` (`store`), summed in double precision and
 * returned (`sum`), or added into `out` at rows given by a row-offset table (`scatter`, the adjoint
 * of a gather), or stored there (`place`: disjoint rows of a zero buffer); each of `program.sums`
 * is summed too, into `sums`.
 *
 * Strided inputs advance by their innermost stride and an odometer over the outer axes. When the
 * row inputs (gathered rows) and the scattered output all have rows of the loop's innermost length
 * (`rowwise`), each inner loop is one row: row offsets are looked up once per row. Otherwise row
 * inputs follow the element order with a counter each.
 */
export function compile(program: Program, outType: string, mode: Mode, rowwise: boolean): Kernel {
  const layout = program.inputs
    .map((input) => `${isConstant(input) ? "k" : input.kind[0]}${input.tensor.dtype}`)
    .join(",");
  const rawFlags = program.raw.map((r) => (r ? 1 : 0)).join("");
  const key = `${mode}:${outType}:${rowwise ? "r" : "e"}|${layout}|${program.steps.join(";")}|${rawFlags}|${program.result}|${program.sums.join(",")}`;
  const cached = kernels.get(key);
  if (cached !== undefined) return cached;
  const lines = (f: (input: ProgramInput, i: number) => string) =>
    program.inputs.map((input, i) => f(input, i)).join("\n");
  const streamed = (input: ProgramInput) => input.kind === "strided" && !isConstant(input);
  const rows = (input: ProgramInput) => input.kind === "rows";
  const scatters = mode === "scatter" || mode === "place";
  // The loop runs elements `from` to `to` (row-major over the loop shape), a row (one pass of the
  // innermost axis) or part of one at a time; what it carries from row to row is worked out from
  // `from` first. Scalars are read once; strided inputs step through memory; row inputs follow
  // their row starts.
  const prologue = lines((input, i) =>
    isConstant(input)
      ? `const v${i} = d${i}[o${i}];`
      : streamed(input)
        ? `const st${i} = s${i}[rank - 1]; let base${i} = o${i}; for (let d = 0; d < rank - 1; d++) base${i} += index[d] * s${i}[d];`
        : rowwise
          ? ""
          : `const nr${i} = ro${i}.length; let r${i} = Math.floor(o / w${i}), c${i} = o - r${i} * w${i}; let p${i} = r${i} < nr${i} ? rs${i} + ro${i}[r${i}] * ru${i} + c${i} * cs${i} : 0;`,
  );
  const rowStart = lines((input, i) =>
    streamed(input)
      ? `let i${i} = base${i} + j0 * st${i};`
      : rowwise && rows(input)
        ? `const p${i} = rs${i} + ro${i}[row] * ru${i};`
        : "",
  );
  const load = lines((input, i) =>
    isConstant(input)
      ? ""
      : streamed(input)
        ? `const v${i} = d${i}[i${i}]; i${i} += st${i};`
        : rowwise
          ? `const v${i} = d${i}[p${i} + j * cs${i}];`
          : `const v${i} = d${i}[p${i}]; p${i} += cs${i}; if (++c${i} === w${i}) { c${i} = 0; p${i} = ++r${i} < nr${i} ? rs${i} + ro${i}[r${i}] * ru${i} : 0; }`,
  );
  const advance = lines((input, i) => (streamed(input) ? `base${i} += s${i}[d];` : ""));
  const rewind = lines((input, i) => (streamed(input) ? `base${i} -= s${i}[d] * shape[d];` : ""));
  // A value added up is the float32 value the tensor would hold; a store rounds by itself.
  const rounded = (name: string) => (isRaw(program.raw, name) ? `Math.fround(${name})` : name);
  // Placing into a zero buffer gives exactly what adding into it would: 0 + (-0) is +0.
  const result =
    mode === "store"
      ? program.result
      : mode === "place"
        ? `${program.result} + 0`
        : rounded(program.result);
  const update = mode === "place" ? "=" : "+=";
  let write: string;
  if (mode === "store") write = `out[first + j] = ${result};`;
  else if (mode === "sum") write = `acc += ${result};`;
  else if (rowwise) write = `out[op + j] ${update} ${result};`;
  else
    write = `out[op] ${update} ${result}; op++; if (++oc === ow) { oc = 0; op = ++orr < onr ? os + oro[orr] * ou : 0; }`;
  const sums = program.sums;
  // A float32 store rounds as Math.fround does: the step that is only stored needs no rounding.
  const last = program.steps.length - 1;
  const steps = program.steps.map((step, i) =>
    i === last &&
    (mode === "store" || mode === "place") &&
    outType === "float32" &&
    program.result === `t${last}` &&
    !sums.includes(program.result) &&
    step.startsWith("Math.fround(")
      ? step.slice("Math.fround(".length, -1)
      : step,
  );
  const source = `
    const inner = shape[rank - 1];
    let row = Math.floor(from / inner);
    let j0 = from - row * inner;
    for (let d = rank - 2, rest = row; d >= 0; d--) {
      index[d] = rest % shape[d];
      rest = (rest - index[d]) / shape[d];
    }
    let o = from;
    ${prologue}
    const onr = orows === null ? 0 : orows.index.length;
    const oro = orows === null ? null : orows.index, ou = orows === null ? 0 : orows.scale, os = orows === null ? 0 : orows.start;
    ${scatters && !rowwise ? "let orr = Math.floor(o / ow), oc = o - orr * ow; let op = orr < onr ? os + oro[orr] * ou + oc : 0;" : ""}
    let acc = state[0]${sums.map((_, k) => `, acc${k} = state[${k + 1}]`).join("")};
    while (o < to) {
      const j1 = Math.min(inner, j0 + (to - o));
      const first = o - j0;
      ${rowStart}
      ${rowwise && scatters ? "const op = os + oro[row] * ou;" : ""}
      for (let j = j0; j < j1; j++) {
        ${load}
        ${steps.map((step, i) => `const t${i} = ${step};`).join("\n        ")}
        ${write}
        ${sums.map((name, k) => `acc${k} += ${rounded(name)};`).join(" ")}
      }
      o += j1 - j0;
      j0 = 0;
      if (j1 < inner) break;
      row++;
      for (let d = rank - 2; d >= 0; d--) {
        ${advance}
        if (++index[d] < shape[d]) break;
        index[d] = 0;
        ${rewind}
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
    ...program.inputs.flatMap((input, i) =>
      input.kind === "strided"
        ? [`d${i}`, `s${i}`, `o${i}`]
        : [`d${i}`, `ro${i}`, `ru${i}`, `rs${i}`, `w${i}`, `cs${i}`],
    ),
  ];
  const kernel = new Function(...params, source) as Kernel;
  kernels.set(key, kernel);
  return kernel;
}

/**
 * Drops size-1 axes and merges neighbours that every strided input reads contiguously, so that the
 * common cases (same shapes, a scalar, a trailing row) become a single flat inner loop.
 */
function coalesce(
  shape: Shape,
  strides: readonly (readonly number[])[],
): { shape: Int32Array; strides: Int32Array[] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => {
        outStrides[k][last] = s[d];
      });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => {
        outStrides[k].push(s[d]);
      });
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => {
      s.push(0);
    });
  }
  return { shape: Int32Array.from(outShape), strides: outStrides.map((s) => Int32Array.from(s)) };
}

/**
 * Runs `program` in `mode` (see `compile`): `out` is the output array (store, scatter) or null
 * (sum); a scatter adds row `r` of the result at row start `r` of `scatterRows` in `out`. The sums of
 * `program.sums` land in `sums`. Returns the sum of the result in `sum` mode.
 */
export function run(
  program: Program,
  outType: string,
  mode: Mode,
  out: DataArray | null,
  scatterRows: RowStarts | null = null,
  scatterWidth = 0,
  sums: Float64Array | null = null,
): number {
  const plan = layout(program, mode === "scatter" || mode === "place" ? scatterWidth : 0);
  const kernel = compile(program, outType, mode, plan.rowwise);
  return launch(kernel, program, plan, out, scatterRows, scatterWidth, sums);
}

/** How a program's loop walks memory: its (coalesced) loop shape and each strided input's strides. */
export interface Layout {
  readonly shape: Int32Array;
  readonly strides: readonly Int32Array[];
  readonly rowwise: boolean;
}

/**
 * The loop shape of `program`: axes coalesced, and the innermost one split at the rows' width when
 * every row input (and the scattered output, of `scatterWidth`) has rows of one width.
 */
export function layout(program: Pick<Program, "inputs" | "shape">, scatterWidth: number): Layout {
  const strided = program.inputs.filter((input) => input.kind === "strided");
  const c = coalesce(
    program.shape,
    strided.map((input) => input.strides),
  );
  let width = scatterWidth;
  let rowwise = true;
  for (const input of program.inputs) {
    if (input.kind !== "rows") continue;
    if (width === 0) width = input.width;
    else if (input.width !== width) rowwise = false;
  }
  const rank = c.shape.length;
  const last = c.shape[rank - 1];
  if (width === 0 || last % width !== 0)
    return { shape: c.shape, strides: c.strides, rowwise: false };
  if (!rowwise || last === width) return { shape: c.shape, strides: c.strides, rowwise };
  return {
    shape: Int32Array.from([...c.shape.subarray(0, rank - 1), last / width, width]),
    strides: c.strides.map((s) =>
      Int32Array.from([...s.subarray(0, rank - 1), s[rank - 1] * width, s[rank - 1]]),
    ),
    rowwise,
  };
}

/** Calls `kernel` on the program's inputs. */
export function launch(
  kernel: Kernel,
  program: Pick<Program, "inputs" | "shape" | "sums">,
  plan: Layout,
  out: DataArray | null,
  scatterRows: RowStarts | null,
  scatterWidth: number,
  sums: Float64Array | null,
): number {
  const n = sizeOf(program.shape);
  if (n === 0) {
    sums?.fill(0);
    return 0;
  }
  const args: unknown[] = [];
  let k = 0;
  for (const input of program.inputs) {
    if (input.kind === "strided") args.push(inputArray(input), plan.strides[k++], input.offset);
    else {
      const { index, scale, start } = input.rows;
      args.push(inputArray(input), index, scale, start, input.width, input.colStride);
    }
  }
  // In chunks of elements: a loop that starts cold (its optimised code dropped by the garbage
  // collector, as happens between iterations of a training step) then runs its optimised code
  // after a few chunks, where one long call would stay in on-stack-replaced code, ~1.5 × slower.
  const { shape } = plan;
  const step = Math.max(1, fusion.chunk);
  const state = new Float64Array(1 + program.sums.length);
  // One argument list for every call; only the range changes.
  const call: unknown[] = [out, shape, shape.length, scatterRows, scatterWidth, 0, 0, state];
  call.push(new Int32Array(shape.length), ...args);
  for (let from = 0; from < n; from += step) {
    call[5] = from;
    call[6] = Math.min(n, from + step);
    Reflect.apply(kernel, undefined, call);
  }
  sums?.set(state.subarray(1));
  return state[0];
}
