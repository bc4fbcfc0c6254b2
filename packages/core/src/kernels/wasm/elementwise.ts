/**
 * Fused float32 elementwise kernels on the wasm runtime: a builder of the elementwise machine's
 * instructions (values in registers, arrays by reference), and `runElementwise`, which stages the
 * arrays in wasm memory, splits the elements between threads by whole blocks, and copies the
 * results back.
 */

import { assemble } from "./assembler.js";
import {
  BLOCK,
  elementwiseFunction,
  type FusedInstruction,
  INSTRUCTION_WORDS,
  INSTRUCTIONS,
  type Instruction,
  REGISTER_BYTES,
} from "./elementwise-module.js";
import type { Job } from "./pool.js";
import { align64, FUNCTION_NAMES, getNumThreads, MAX_PAGES, type WasmRuntime } from "./runtime.js";
import { type WasmModule, webAssembly } from "./webassembly.js";

/** The extremes of row tables that are never written (`constantRows`). */
const knownExtremes = new WeakMap<Int32Array, [number, number]>();

/**
 * Marks `table` as a row table that is never written, so that its extremes are found once. Only
 * for tables of the renderer's own (a gather's indices may change between calls).
 */
export function constantRows(table: Int32Array): void {
  knownExtremes.delete(table);
  knownExtremes.set(table, extremes(table));
}

/** Row tables shorter than this are scanned in JavaScript even when they lie in wasm memory. */
const WASM_EXTREMES = 4096;

/**
 * The smallest and largest entries of `index` (+∞ and −∞ when it is empty), in wasm when it is a
 * long table in `runtime`'s memory (the 381 047 rows of the voc512 focal loss's background
 * anchors: 0.55–0.75 ms in JavaScript, 0.05 ms in wasm).
 */
function extremes(index: Int32Array, runtime?: WasmRuntime): [number, number] {
  const known = knownExtremes.get(index);
  if (known !== undefined) return known;
  const wasm = index.length >= WASM_EXTREMES ? runtime?.extremesOf(index) : null;
  if (wasm != null) return wasm;
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < index.length; i++) {
    const r = index[i];
    if (r < low) low = r;
    if (r > high) high = r;
  }
  return [low, high];
}

/** A value of a kernel: one float32 per element (or a mask of all ones or zeros). */
export interface Value {
  readonly id: number;
}

/** An array a kernel reads or writes, staged in wasm memory for the call. */
export interface KernelArray {
  readonly id: number;
}

/** Rows of a gather or a place: row `r` starts at element `start + index[r] · scale`. */
export interface KernelRows {
  readonly index: Int32Array;
  readonly scale: number;
  readonly start: number;
}

type Staged =
  | { kind: "input"; data: Float32Array }
  | { kind: "rows"; data: Int32Array }
  /**
   * `initial`: the array's values are read before the kernel adds into them (scatter), or not
   * ("zeros"; "zeroed": and they are zeros already); `placed`: a place writes some of its
   * elements, so the others must be zeros.
   */
  | {
      kind: "output";
      data: Float32Array | Uint8Array;
      initial: "zeros" | "zeroed" | "values";
      placed?: boolean;
    };

/** An instruction's words, with the words that hold a value (register) or an array (address). */
interface Line {
  code: Instruction;
  words: number[];
  values: { word: number; value: number }[];
  arrays: { word: number; array: number }[];
  defines: number;
}

/**
 * The unary, binary and ternary operations of the machine by name (see `INSTRUCTIONS`): each
 * computes as the float32 operation of IEEE 754 does (so as `Math.fround` of the double one for
 * + − × ÷ √, min, max, comparisons), `log`, `log1p` and `exp` within 2 ulp (`math-module.ts`).
 */
export type UnaryOp = "neg" | "abs" | "sqrt" | "floor" | "ceil" | "trunc" | "log" | "log1p" | "exp";
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "min"
  | "max"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "eq"
  | "ne"
  | "and"
  | "or"
  | "andnot"
  | "pmin"
  | "pmax";

/**
 * A fused float32 kernel over `size` elements, built instruction by instruction. Values are in
 * single assignment; `finish` gives each a register, reusing registers whose value is dead.
 *
 * @example
 * const k = new ElementwiseKernel(x.length);
 * const v = k.load(k.input(x));
 * k.store(k.unary("log", v), k.output(out));
 * const total = k.sum(v);
 * const sums = runElementwise(runtime, k); // out = log(x) in float32; sums[total] = Σ x
 */
export class ElementwiseKernel {
  private readonly lines: Line[] = [];
  readonly staged: Staged[] = [];
  private values = 0;
  /** Values of `scalar` (see there). */
  private readonly varying = new Set<number>();
  /** Number of sums the kernel accumulates. */
  sums = 0;
  /** Each row table's extremes and its staged copy: a table several gathers share goes in once. */
  private readonly tables = new Map<Int32Array, { extremes: [number, number]; staged: number }>();

  /** `runtime`, when given, is the one the kernel will run on: it finds long row tables' extremes. */
  constructor(
    readonly size: number,
    private readonly runtime?: WasmRuntime,
  ) {
    if (!Number.isInteger(size) || size < 0 || size >= 2 ** 31) {
      throw new Error(`ElementwiseKernel: size must be an integer in [0, 2^31), got ${size}`);
    }
  }

  private stage(staged: Staged): KernelArray {
    this.staged.push(staged);
    return { id: this.staged.length - 1 };
  }

  /** A float32 array read as element e (load) or through rows (gather). */
  input(data: Float32Array): KernelArray {
    return this.stage({ kind: "input", data });
  }

  /**
   * A float32 array written (store, place; its other elements are zeros) or added into (scatter),
   * or a bool array written by `storeMask`. `"zeroed"` promises that the array holds zeros
   * already (a place's zero buffer): a place into it where it lies in wasm memory writes its rows
   * and nothing else, instead of zeroing the whole array first.
   */
  output(
    data: Float32Array | Uint8Array,
    initial: "zeros" | "zeroed" | "values" = "zeros",
  ): KernelArray {
    return this.stage({ kind: "output", data, initial });
  }

  private line(
    code: Instruction,
    words: readonly (number | Value | KernelArray | null)[],
    kinds: readonly ("value" | "array" | "int")[],
  ): Value {
    const line: Line = { code, words: [], values: [], arrays: [], defines: -1 };
    words.forEach((word, index) => {
      const at = index + 1;
      if (word === null) {
        line.defines = this.values++;
        line.words.push(0);
      } else if (kinds[index] === "value") {
        line.values.push({ word: at, value: (word as Value).id });
        line.words.push(0);
      } else if (kinds[index] === "array") {
        line.arrays.push({ word: at, array: (word as KernelArray).id });
        line.words.push(0);
      } else line.words.push(word as number);
    });
    this.lines.push(line);
    return { id: line.defines };
  }

  /** The words of a row table, checked: rows of `width` that cover the kernel, inside `array`. */
  private rowsWords(
    op: string,
    array: KernelArray,
    rows: KernelRows,
    width: number,
    colStride: number,
  ): number[] {
    const fail = (what: string) => {
      throw new Error(`ElementwiseKernel.${op}: ${what}`);
    };
    if (!Number.isInteger(width) || width < 1) fail(`width must be an integer >= 1, got ${width}`);
    if (rows.index.length * width !== this.size) {
      fail(
        `${rows.index.length} rows of ${width} are ${rows.index.length * width} elements, the kernel has ${this.size}`,
      );
    }
    const length = this.staged[array.id].data.length;
    const lastColumn = (width - 1) * colStride;
    const outside = (r: number) => {
      const first = rows.start + r * rows.scale;
      return (
        Math.min(first, first + lastColumn) < 0 || Math.max(first, first + lastColumn) >= length
      );
    };
    // Every row lies inside when the lowest and the highest do (one pass, then the culprit).
    let known = this.tables.get(rows.index);
    if (known === undefined) {
      known = {
        extremes: extremes(rows.index, this.runtime),
        staged: this.stage({ kind: "rows", data: rows.index }).id,
      };
      this.tables.set(rows.index, known);
    }
    const [low, high] = known.extremes;
    if (rows.index.length > 0 && (outside(low) || outside(high))) {
      const r = rows.index.find(outside) as number;
      const first = rows.start + r * rows.scale;
      fail(
        `row ${r} (elements ${first} to ${first + lastColumn}) is outside the array of ${length}`,
      );
    }
    return [known.staged, rows.scale, rows.start, width, colStride];
  }

  /** Checks that `array` has one element per element of the kernel. */
  private whole(op: string, array: KernelArray): void {
    const length = this.staged[array.id].data.length;
    if (length !== this.size) {
      throw new Error(
        `ElementwiseKernel.${op}: the array has ${length} elements, the kernel ${this.size}`,
      );
    }
  }

  /** Element e of `array`. */
  load(array: KernelArray): Value {
    this.whole("load", array);
    return this.line("load", [null, array], ["value", "array"]);
  }

  /** `value` rounded to float32, in every lane. */
  constant(value: number): Value {
    const bits = new Int32Array(Float32Array.of(value).buffer)[0];
    return this.line("const", [null, bits], ["value", "int"]);
  }

  /**
   * `value` as `constant` does, for a value that changes from call to call (a scalar operand): a
   * compiled kernel takes the first seven of these from its instruction's words instead of
   * compiling them in, so that a new value does not compile a new module.
   */
  scalar(value: number): Value {
    const made = this.constant(value);
    this.varying.add(made.id);
    return made;
  }

  /** Element e = row ⌊e / width⌋, column c of `array`: `start + index[row] · scale + c · colStride`. */
  gather(array: KernelArray, rows: KernelRows, width: number, colStride: number): Value {
    const [index, ...rest] = this.rowsWords("gather", array, rows, width, colStride);
    return this.line(
      "gather",
      [null, array, { id: index }, ...rest],
      ["value", "array", "array", "int", "int", "int", "int"],
    );
  }

  unary(op: UnaryOp, a: Value): Value {
    return this.line(op, [null, a], ["value", "value"]);
  }

  binary(op: BinaryOp, a: Value, b: Value): Value {
    return this.line(op, [null, a, b], ["value", "value", "value"]);
  }

  /** `mask ? a : b` lane by lane (`mask` from a comparison). */
  select(mask: Value, a: Value, b: Value): Value {
    return this.line("select", [null, mask, a, b], ["value", "value", "value", "value"]);
  }

  /** Element e of `array` = a. */
  store(a: Value, array: KernelArray): void {
    this.whole("store", array);
    this.line("store", [a, array], ["value", "array"]);
  }

  /** Element e of the bool `array` = 1 where mask `a` is set, else 0. */
  storeMask(a: Value, array: KernelArray): void {
    this.whole("storeMask", array);
    if (!(this.staged[array.id].data instanceof Uint8Array)) {
      throw new Error("ElementwiseKernel.storeMask: the array must be a Uint8Array (bool)");
    }
    this.line("storeMask", [a, array], ["value", "array"]);
  }

  /** The inverse of `gather` into distinct rows: `= a` (place) or `+= a` (scatter, `add`). */
  place(
    a: Value,
    array: KernelArray,
    rows: KernelRows,
    width: number,
    colStride: number,
    add = false,
  ): void {
    const [index, ...rest] = this.rowsWords(
      add ? "scatter" : "place",
      array,
      rows,
      width,
      colStride,
    );
    const target = this.staged[array.id];
    if (!add && target.kind === "output") target.placed = true;
    this.line(
      add ? "scatter" : "place",
      [a, array, { id: index }, ...rest],
      ["value", "array", "array", "int", "int", "int", "int"],
    );
  }

  /** Adds `a` up over every element (in double precision); returns the sum's index in `runElementwise`'s result. */
  sum(a: Value): number {
    const k = this.sums++;
    this.line("sum", [a, 0, k, 0], ["value", "int", "int", "int"]);
    return k;
  }

  /**
   * The instructions as words, with registers assigned (a register is free again after the last
   * instruction that reads its value), and where each array's address goes. With `compiled`, the
   * lane-wise instructions become one fused instruction (returned too) between the loads and
   * gathers and the rest, and only values read or written by other instructions get a register.
   */
  finish(compiled = false): {
    words: Int32Array;
    registers: number;
    patches: { at: number; array: number }[];
    fused: FusedInstruction | null;
  } {
    const inputsFirst = (line: Line) => line.code === "load" || line.code === "gather";
    const laneWise = (line: Line) => !inputsFirst(line) && !OUTPUTS.has(line.code);
    const lines = compiled
      ? [
          ...this.lines.filter(inputsFirst),
          ...this.lines.filter((line) => !inputsFirst(line) && !laneWise(line)),
        ]
      : this.lines;
    const lastUse = new Int32Array(this.values).fill(-1);
    lines.forEach((line, i) => {
      for (const { value } of line.values) lastUse[value] = i;
    });
    const register = new Int32Array(this.values).fill(-1);
    const free: number[] = [];
    let registers = 0;
    const allocate = () => (compiled || free.length === 0 ? registers++ : (free.pop() as number));
    let fused: FusedInstruction | null = null;
    /** The bits of the fused instruction's varying constants, its words 1… */
    const scalarWords: number[] = [];
    const fusedAt = compiled ? lines.filter(inputsFirst).length : -1;
    if (compiled) {
      const inputs = new Map<number, number>();
      const outputs = new Map<number, number>();
      for (const line of lines) {
        if (line.defines >= 0) {
          register[line.defines] = allocate();
          inputs.set(line.defines, register[line.defines]);
        }
        for (const { value } of line.values) {
          if (register[value] < 0) register[value] = allocate();
          outputs.set(value, register[value]);
        }
      }
      const fusedLines = this.lines.filter(laneWise).map((line) => {
        const common = {
          code: line.code,
          defines: line.defines,
          reads: line.values.map(({ value }) => value),
        };
        if (line.code !== "const") return common;
        if (this.varying.has(line.defines) && scalarWords.length < INSTRUCTION_WORDS - 1) {
          scalarWords.push(line.words[1]);
          return { ...common, word: scalarWords.length };
        }
        return { ...common, bits: line.words[1] };
      });
      fused = { lines: fusedLines, inputs, outputs };
    }
    const count = lines.length + (compiled ? 1 : 0);
    const words = new Int32Array(count * INSTRUCTION_WORDS);
    const patches: { at: number; array: number }[] = [];
    lines.forEach((line, index) => {
      const i = compiled && index >= fusedAt ? index + 1 : index;
      const base = i * INSTRUCTION_WORDS;
      words[base] = INSTRUCTIONS.indexOf(line.code);
      line.words.forEach((word, k) => {
        words[base + 1 + k] = word;
      });
      for (const { word, value } of line.values) words[base + word] = register[value];
      // A lane-wise instruction may write the register it reads: each vector is read, then written.
      for (const { value } of line.values) {
        if (!compiled && lastUse[value] === index && !free.includes(register[value])) {
          free.push(register[value]);
        }
      }
      if (line.defines >= 0) {
        if (register[line.defines] < 0) register[line.defines] = allocate();
        words[base + 1] = register[line.defines];
        if (!compiled && lastUse[line.defines] < 0) free.push(register[line.defines]);
      }
      for (const { word, array } of line.arrays) patches.push({ at: base + word, array });
      if (line.code === "sum") {
        // The address of the sums and their count are known once every sum is.
        patches.push({ at: base + 2, array: -1 });
        words[base + 4] = this.sums;
      }
    });
    if (compiled) {
      words[fusedAt * INSTRUCTION_WORDS] = INSTRUCTIONS.length;
      words.set(scalarWords, fusedAt * INSTRUCTION_WORDS + 1);
    }
    return { words, registers: Math.max(1, registers), patches, fused };
  }
}

/** Instructions that write arrays or sums: they follow the fused instruction of a compiled kernel. */
const OUTPUTS = new Set<Instruction>(["store", "storeMask", "place", "scatter", "sum"]);

/** A compiled kernel: its module and its function on this thread (the runtime's pool runs it on the others). */
interface CompiledKernel {
  readonly module: WasmModule;
  readonly kernel: (...args: number[]) => void;
}

/** Compiled kernels of each runtime, by their fused instruction, least recently used first. */
const compiledKernels = new WeakMap<WasmRuntime, Map<string, CompiledKernel>>();

/** Compiled kernels kept per runtime; the least recently used beyond these are compiled again when they come back. */
const CACHED_KERNELS = 256;

/** The compiled kernel of `fused` on `runtime` (compiled on first use, then cached). */
function compiledKernel(runtime: WasmRuntime, fused: FusedInstruction): CompiledKernel {
  let known = compiledKernels.get(runtime);
  if (known === undefined) {
    known = new Map();
    compiledKernels.set(runtime, known);
  }
  const key = JSON.stringify([fused.lines, [...fused.inputs], [...fused.outputs]]);
  let compiled = known.get(key);
  if (compiled === undefined) {
    const bytes = assemble([elementwiseFunction("kernel", runtime.relaxed, fused)], {
      initialPages: 1,
      maximumPages: MAX_PAGES,
    });
    const module = new webAssembly!.Module(bytes);
    const instance = new webAssembly!.Instance(module, { env: { memory: runtime.memory } });
    compiled = { module, kernel: instance.exports.kernel as CompiledKernel["kernel"] };
  }
  // Most recently used last; the oldest beyond CACHED_KERNELS are dropped.
  known.delete(key);
  known.set(key, compiled);
  for (const old of known.keys()) {
    if (known.size <= CACHED_KERNELS) break;
    known.delete(old);
  }
  return compiled;
}

/**
 * The byte address of each staged array that already lies in `runtime`'s memory and can be used
 * where it is, or -1 for one to copy: every array in that memory, except an output that an input
 * overlaps (threads would read what others have written).
 */
function inPlace(runtime: WasmRuntime, staged: readonly Staged[]): number[] {
  const at = staged.map((array) => runtime.placeOf(array.data));
  const end = (k: number) => at[k] + staged[k].data.byteLength;
  return at.map((address, k) => {
    if (address < 0 || staged[k].kind !== "output") return address;
    const read = staged.some(
      (other, j) => other.kind !== "output" && at[j] >= 0 && at[j] < end(k) && address < end(j),
    );
    return read ? -1 : address;
  });
}

/** A view of `runtime`'s memory at byte `address` of `array`'s type and length (its staged copy). */
function memoryView(
  runtime: WasmRuntime,
  array: Float32Array | Uint8Array,
  address: number,
): Float32Array | Uint8Array {
  return array instanceof Uint8Array
    ? new Uint8Array(runtime.memory.buffer, address, array.length)
    : runtime.f32.subarray(address / 4, address / 4 + array.length);
}

/** Elements each thread must get before another is woken (a few hundred microseconds of work). */
const PER_THREAD = 1 << 16;
/** Chunks per thread of a threaded kernel (each with a register file of its own). */
const CHUNKS_PER_THREAD = 4;

/**
 * Runs `kernel` on `runtime`, its blocks split between up to `threads` threads (each block
 * computed the same way whatever the split: the results and sums are the same bits for every
 * thread count). Copies inputs in and outputs back; returns the sums, or null (having done
 * nothing) when the arrays do not fit in wasm memory.
 *
 * Placed and scattered rows must be distinct: threads write them at the same time.
 *
 * @example
 * const sums = runElementwise(runtime, kernel) ?? fallBackToJavaScript();
 */
export function runElementwise(
  runtime: WasmRuntime,
  kernel: ElementwiseKernel,
  threads = getNumThreads(),
  compiled = false,
): Float64Array | null {
  const n = kernel.size;
  const { words, registers, patches, fused } = kernel.finish(compiled);
  const blocks = Math.ceil(n / BLOCK);
  // Several chunks per thread, claimed by whichever thread is free: a worker that wakes late
  // leaves more of them to this thread instead of making it wait for an equal half.
  const parts =
    threads <= 1 || n < 2 * PER_THREAD
      ? 1
      : Math.min(
          blocks,
          CHUNKS_PER_THREAD * threads,
          Math.floor(n / (PER_THREAD / CHUNKS_PER_THREAD)),
        );
  // Arrays already in this memory (tensors' data in the heap) are read and written where they
  // are; the others are copied in (and outputs back). An output read by an input too is copied.
  const resident = inPlace(runtime, kernel.staged);
  // Layout: instructions, each array to copy (16 bytes of slack after it: loads move whole
  // vectors), the block sums, one register file per thread.
  let at = align64(runtime.residentBytes);
  const programAt = at;
  at = align64(at + words.length * 4);
  const addresses = kernel.staged.map((staged, k) => {
    if (resident[k] >= 0) return resident[k];
    const here = at;
    at = align64(at + staged.data.byteLength + 16);
    return here;
  });
  const sumsAt = at;
  at = align64(at + blocks * kernel.sums * 8);
  const scratchAt = at;
  const end = at + parts * registers * REGISTER_BYTES;
  if (!runtime.reserve(end)) return null;
  for (const { at: word, array } of patches) {
    words[word] = array < 0 ? sumsAt : addresses[array];
  }
  const heap = new Int32Array(runtime.memory.buffer);
  heap.set(words, programAt / 4);
  kernel.staged.forEach((staged, k) => {
    const address = addresses[k] / 4;
    if (resident[k] >= 0) {
      // A place writes its rows into zeros: the rest of the array must be zeros too, unless the
      // caller says it is.
      if (staged.kind === "output" && staged.placed === true && staged.initial === "zeros") {
        runtime.exports.zero(resident[k], staged.data.byteLength);
      }
    } else if (staged.kind === "rows") heap.set(staged.data, address);
    else if (staged.kind === "input" || staged.initial === "values")
      memoryView(runtime, staged.data, addresses[k]).set(staged.data);
    // A store writes every element; only a place leaves some to the zeros.
    else if (staged.placed === true) runtime.exports.zero(addresses[k], staged.data.byteLength);
  });
  // The runtime's module has the machine; a compiled kernel's module has the kernel alone.
  const fn = fused === null ? FUNCTION_NAMES.indexOf("elementwise32") : 0;
  const count = words.length / INSTRUCTION_WORDS;
  // Chunk c: blocks [⌊c · blocks / parts⌋, ⌊(c + 1) · blocks / parts⌋) with register file c.
  const job: Job = {
    fn,
    args: [programAt, count],
    total: blocks,
    chunks: parts,
    step: BLOCK,
    limit: n,
    scratch: { base: scratchAt, stride: registers * REGISTER_BYTES },
  };
  if (n > 0 && fused !== null) {
    const { module, kernel: compiledFunction } = compiledKernel(runtime, fused);
    runtime.runModule(module, compiledFunction, job);
  } else if (n > 0) runtime.run(job);
  kernel.staged.forEach((staged, k) => {
    if (staged.kind !== "output" || resident[k] >= 0) return;
    staged.data.set(memoryView(runtime, staged.data, addresses[k]));
  });
  // Block sums in block order: the same additions whatever the split.
  const sums = new Float64Array(kernel.sums);
  const blockSums = new Float64Array(runtime.memory.buffer, sumsAt, blocks * kernel.sums);
  for (let b = 0; b < blocks; b++) {
    for (let k = 0; k < kernel.sums; k++) sums[k] += blockSums[b * kernel.sums + k];
  }
  return sums;
}
