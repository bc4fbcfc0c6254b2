/** The WebAssembly runtime of the dense kernels: feature probes, the generated module, its shared memory, the thread count and the worker pool. */

import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { DataArrayOf, DType } from "../../dtype.js";
import type { PoolGeometry } from "../conv.js";
import { assemble, F32, F64, FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";
import { convImagesFunction, sumPartialsFunction, weightImagesFunction } from "./conv-module.js";
import { elementwiseFunction } from "./elementwise-module.js";
import { gemmFunctions, LAYOUTS, tilesFunction } from "./gemm-module.js";
import { im2colFunction, im2colImagesFunction } from "./im2col-module.js";
import { adamFunction } from "./optim-module.js";
import { packFunction, packRangeFunction } from "./pack-module.js";
import { chunkArguments, type Job, WorkerPool } from "./pool.js";
import {
  avgPoolFunction,
  maxPool2x2Function,
  maxPoolAdjointFunction,
  maxPoolFunction,
} from "./pool-module.js";
import { countNonzeroFunction, nonzeroPositionsFunction } from "./positions-module.js";
import { sumRowsFunction } from "./reduce-module.js";
import { type WasmMemory, type WasmModule, webAssembly } from "./webassembly.js";

const PAGE = 65536;
/**
 * 2 GiB: the kernels compare addresses as signed i32, and a shared memory reserves (but does not
 * commit) its maximum up front.
 */
export const MAX_PAGES = 32768;
const MAX_BYTES = MAX_PAGES * PAGE;

/** `bytes` rounded up to a cache line: every region the kernels use starts on one. */
export function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}

/** A convolution's or pool's window, in the order the generated kernels take it. */
export function windowArguments(g: Omit<PoolGeometry, "planes">): number[] {
  return [g.kernelHeight, g.kernelWidth, g.strideHeight, g.strideWidth, g.padTop, g.padLeft];
}

function probe(build: (f: FunctionBuilder) => void): boolean {
  const f = new FunctionBuilder("probe", [], [V128]);
  build(f);
  try {
    return webAssembly!.validate(assemble([f], { initialPages: 1, maximumPages: 1 }));
  } catch {
    return false;
  }
}

/** Whether this runtime has SIMD128 and shared memories (the wasm backend needs both). */
export function hasWasmSimd(): boolean {
  return webAssembly !== undefined && probe((f) => f.zeroVector());
}

let relaxedSupport: boolean | undefined;

/**
 * Whether `f32x4.relaxed_madd` validates. On Node 20 it is behind a V8 flag, which this turns on
 * (it only affects modules compiled afterwards); from Node 22 it is on by default.
 */
export function hasRelaxedSimd(): boolean {
  if (relaxedSupport !== undefined) return relaxedSupport;
  const relaxedModule = (f: FunctionBuilder) => {
    f.zeroVector().zeroVector().zeroVector().simd(Simd.f32x4RelaxedMadd);
  };
  relaxedSupport = probe(relaxedModule);
  if (!relaxedSupport) {
    try {
      setFlagsFromString("--experimental-wasm-relaxed-simd");
    } catch {
      // Not V8, or flags are locked: plain SIMD it is.
    }
    relaxedSupport = probe(relaxedModule);
  }
  return relaxedSupport;
}

let threads = Math.max(1, availableParallelism());
const runtimes = new Set<WasmRuntime>();

/**
 * Sets how many threads (the calling one included) a large dense kernel may use; the default is
 * the number of cores available. Results do not depend on it: every output element is summed in
 * the same order whatever the split.
 *
 * @example
 * setNumThreads(1); // everything on the calling thread
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`setNumThreads: n must be an integer >= 1, got ${n}`);
  }
  threads = n;
  for (const runtime of runtimes) runtime.resize();
}

/**
 * The number of threads dense kernels may use.
 *
 * @example
 * getNumThreads(); // os.availableParallelism() unless setNumThreads changed it
 */
export function getNumThreads(): number {
  return threads;
}

/**
 * Compiled kernels loaded into one pool before it is made anew: every worker keeps an instance of
 * each (a few kilobytes), so a long run through many distinct kernels restarts its workers now
 * and then rather than growing without bound.
 */
const MAX_LOADED_MODULES = 512;

/** Every chunk of `job` on `kernel`, in order, on this thread. */
function runHere(kernel: (...args: number[]) => void, job: Job): void {
  for (let c = 0; c < job.chunks; c++) kernel(...chunkArguments(job, c));
}

/** The functions the module exports, in index order (the pool names them by index). */
export const FUNCTION_NAMES = [
  "micro32",
  "gemm32",
  "micro64",
  "gemm64",
  "packA32",
  "packB32",
  "packA64",
  "packB64",
  "im2col32",
  "im2col64",
  "maxPool32",
  "maxPool64",
  "avgPool32",
  "avgPool64",
  "tiles32",
  "tiles64",
  "maxPool2x2_32",
  "im2colImages32",
  "im2colImages64",
  "packRangeA32",
  "packRangeB32",
  "packRangeA64",
  "packRangeB64",
  "elementwise32",
  "convImages32",
  "convImages64",
  "adam32",
  "adam64",
  "weightImages32",
  "weightImages64",
  "sumPartials32",
  "sumPartials64",
  "zero",
  "extremes32",
  "fill32",
  "fill64",
  "countNonzero8",
  "nonzeroPositions8",
  "maxPoolAdjoint32",
  "maxPoolAdjoint64",
  "sumRows32",
  "sumRows64",
] as const;
export type KernelName = (typeof FUNCTION_NAMES)[number];

const convCallees = (suffix: "32" | "64") => ({
  im2col: FUNCTION_NAMES.indexOf(`im2col${suffix}`),
  tiles: FUNCTION_NAMES.indexOf(`tiles${suffix}`),
});

const weightCallees = (suffix: "32" | "64") => ({
  im2col: FUNCTION_NAMES.indexOf(`im2col${suffix}`),
  packRangeA: FUNCTION_NAMES.indexOf(`packRangeA${suffix}`),
  tiles: FUNCTION_NAMES.indexOf(`tiles${suffix}`),
});

const callees = (suffix: "32" | "64") => ({
  gemm: FUNCTION_NAMES.indexOf(`gemm${suffix}`),
  packA: FUNCTION_NAMES.indexOf(`packA${suffix}`),
  packB: FUNCTION_NAMES.indexOf(`packB${suffix}`),
});

/**
 * `zero(address, bytes)`: `bytes` zero bytes from `address` (`memory.fill`). Typed arrays' `fill`
 * on a shared memory is several times slower than on JavaScript memory.
 */
function zeroFunction(): FunctionBuilder {
  const f = new FunctionBuilder("zero", [I32, I32]);
  f.get(0).i32(0).get(1).op(0xfc, 0x0b, 0x00);
  return f;
}

/**
 * `fill32(address, count, value)` (`fill64`: float64): `count` copies of `value` from `address`,
 * a vector at a time. A typed array's `fill` on a shared memory takes about twice as long.
 */
function fillFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, [I32, I32, bytes === 4 ? F32 : F64]);
  const [at, count, value] = [0, 1, 2];
  const [i, end] = [f.local(I32), f.local(I32)];
  const splat = f.local(V128);
  f.get(value)
    .simd(bytes === 4 ? Simd.f32x4Splat : Simd.f64x2Splat)
    .set(splat);
  // end = the bytes of whole vectors, then the vectors, then the last elements one at a time.
  f.get(count)
    .i32(bytes === 4 ? -4 : -2)
    .op(Op.i32And)
    .i32(bytes)
    .op(Op.i32Mul)
    .set(end);
  f.forLoop(
    i,
    () => f.i32(0),
    () => f.get(end),
    () => {
      f.get(at).get(i).op(Op.i32Add).get(splat).simd(Simd.store, { align: 0, offset: 0 });
    },
    16,
  );
  f.forLoop(
    i,
    () => f.get(end),
    () => f.get(count).i32(bytes).op(Op.i32Mul),
    () => {
      f.get(at).get(i).op(Op.i32Add).get(value);
      f.memory(bytes === 4 ? Op.f32Store : Op.f64Store, bytes === 4 ? 2 : 3, 0);
    },
    bytes,
  );
  return f;
}

/**
 * `extremes32(address, count) → (low, high)`: the smallest and largest of `count ≥ 1` int32 at
 * `address`, four lanes at a time (`i32x4.min_s`, `max_s`), then the lanes and the last few.
 */
function extremesFunction(): FunctionBuilder {
  const f = new FunctionBuilder("extremes32", [I32, I32], [I32, I32]);
  const [at, count] = [0, 1];
  const [i, low, high, x] = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  const [lows, highs] = [f.local(V128), f.local(V128)];
  const [MIN_S, MAX_S, EXTRACT] = [0xb6, 0xb8, 0x1b];
  const load = () => f.get(at).get(i).op(Op.i32Add).simd(Simd.load, { align: 2, offset: 0 });
  f.get(at).simd(Simd.load32Splat, { align: 2, offset: 0 }).tee(lows).set(highs);
  const vectorBytes = () => f.get(count).i32(-4).op(Op.i32And).i32(4).op(Op.i32Mul);
  f.forLoop(
    i,
    () => f.i32(0),
    vectorBytes,
    () => {
      f.get(lows);
      load();
      f.simd(MIN_S).set(lows);
      f.get(highs);
      load();
      f.simd(MAX_S).set(highs);
    },
    16,
  );
  // The lanes, then the elements after the last whole vector, one at a time.
  f.get(lows).simd(EXTRACT).op(0).set(low);
  f.get(highs).simd(EXTRACT).op(0).set(high);
  const fold = (value: () => void) => {
    value();
    f.set(x);
    f.get(x).get(low).get(x).get(low).op(Op.i32LtS, Op.select).set(low);
    f.get(x).get(high).get(x).get(high).op(Op.i32GtS, Op.select).set(high);
  };
  for (let lane = 1; lane < 4; lane++) {
    fold(() => f.get(lows).simd(EXTRACT).op(lane));
    fold(() => f.get(highs).simd(EXTRACT).op(lane));
  }
  f.forLoop(
    i,
    vectorBytes,
    () => f.get(count).i32(4).op(Op.i32Mul),
    () => fold(() => f.get(at).get(i).op(Op.i32Add).memory(Op.i32Load, 2, 0)),
    4,
  );
  f.get(low).get(high);
  return f;
}

/** A `FinalizationRegistry` that can also run its callbacks now (`reclaim`), where V8 allows. */
interface Reclaiming<T> {
  readonly registry: FinalizationRegistry<T>;
  /** Runs the callbacks of targets collected so far; nothing where the runtime cannot. */
  readonly reclaim: () => void;
}

/**
 * A finalisation registry whose callbacks can run synchronously. A registry's callbacks normally
 * wait for the event loop, so a training loop that never yields would see none of its blocks
 * freed; V8's `cleanupSome` runs them at once. It sits behind a flag that only affects realms
 * made after it is set, so the registry comes from a fresh one. Elsewhere, callbacks run when the
 * loop yields.
 */
function reclaimingRegistry<T>(callback: (held: T) => void): Reclaiming<T> {
  let Registry: typeof FinalizationRegistry = FinalizationRegistry;
  try {
    setFlagsFromString("--harmony-weak-refs-with-cleanup-some");
    const other = runInNewContext("FinalizationRegistry") as typeof FinalizationRegistry;
    if (typeof (other.prototype as { cleanupSome?: unknown }).cleanupSome === "function") {
      Registry = other;
    }
  } catch {
    // Not V8, or flags are locked: callbacks run when the event loop turns.
  }
  const registry = new Registry<T>(callback);
  const cleanupSome = (registry as { cleanupSome?: () => void }).cleanupSome;
  return { registry, reclaim: () => cleanupSome?.call(registry) };
}

const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  bool: Uint8Array,
} satisfies { [D in DType]: { BYTES_PER_ELEMENT: number } };

/** Bytes of tensor data the heap holds at most by default (`WasmRuntime.tensorBudget`). */
export const TENSOR_BUDGET = 512 * 1024 * 1024;
/** The largest tensor budget: half the memory, the other half for the kernels' scratch. */
export const MAX_TENSOR_BYTES = 1024 * 1024 * 1024;

/**
 * One compiled module, its memory, an instance on this thread and (once a kernel asks for more
 * than one thread) a pool of workers instantiating the same module over the same memory.
 */
export class WasmRuntime {
  readonly memory: WasmMemory;
  readonly module: WasmModule;
  readonly exports: Record<KernelName, (...args: number[]) => void>;
  private pool: WorkerPool | null = null;
  /** The `fn` of each module loaded into the current pool (`runModule`). */
  private loadedModules = new WeakMap<WasmModule, number>();
  /** Every `ArrayBuffer` object this memory has had (a shared memory gets a new one when it grows). */
  private readonly buffers = new WeakSet<object>();
  /**
   * Bytes at the start of memory that long-lived buffers occupy (`heapView`, `tensorArray`): no
   * kernel's scratch goes below.
   */
  heapTop = 0;
  /** Freed blocks of the heap, by address: [byte address, bytes]. */
  private readonly freeBlocks: [number, number][] = [];
  /** Frees a heap block once its view has been collected: [byte address, bytes, a tensor's]. */
  private readonly heap = reclaimingRegistry<[number, number, boolean]>(([at, bytes, tensor]) => {
    if (tensor) this.tensorBytes -= bytes;
    this.release(at, bytes);
  });
  /** Bytes of the heap that tensors' arrays hold (`tensorArray`). */
  tensorBytes = 0;
  /** The most `tensorBytes` has been since the runtime was made or `peakTensorBytes` was last reset. */
  peakTensorBytes = 0;
  /** Bytes of tensor data the heap may hold; beyond it, `tensorArray` gives null. */
  tensorBudget = TENSOR_BUDGET;
  /** Bytes at the start of memory that the heap and resident views occupy; kernels' scratch starts after. */
  residentBytes = 0;
  f32: Float32Array<ArrayBufferLike> = new Float32Array(0);
  f64: Float64Array<ArrayBufferLike> = new Float64Array(0);

  constructor(readonly relaxed: boolean) {
    const functions = [
      ...gemmFunctions("32", LAYOUTS.float32, relaxed, 0),
      ...gemmFunctions("64", LAYOUTS.float64, relaxed, 2),
      packFunction("packA32", 4, LAYOUTS.float32.mr),
      packFunction("packB32", 4, LAYOUTS.float32.nr),
      packFunction("packA64", 8, LAYOUTS.float64.mr),
      packFunction("packB64", 8, LAYOUTS.float64.nr),
      im2colFunction("im2col32", 4),
      im2colFunction("im2col64", 8),
      maxPoolFunction("maxPool32", 4),
      maxPoolFunction("maxPool64", 8),
      avgPoolFunction("avgPool32", 4),
      avgPoolFunction("avgPool64", 8),
      tilesFunction("tiles32", LAYOUTS.float32, callees("32")),
      tilesFunction("tiles64", LAYOUTS.float64, callees("64")),
      maxPool2x2Function("maxPool2x2_32"),
      im2colImagesFunction("im2colImages32", FUNCTION_NAMES.indexOf("im2col32")),
      im2colImagesFunction("im2colImages64", FUNCTION_NAMES.indexOf("im2col64")),
      packRangeFunction("packRangeA32", 4, LAYOUTS.float32.mr, FUNCTION_NAMES.indexOf("packA32")),
      packRangeFunction("packRangeB32", 4, LAYOUTS.float32.nr, FUNCTION_NAMES.indexOf("packB32")),
      packRangeFunction("packRangeA64", 8, LAYOUTS.float64.mr, FUNCTION_NAMES.indexOf("packA64")),
      packRangeFunction("packRangeB64", 8, LAYOUTS.float64.nr, FUNCTION_NAMES.indexOf("packB64")),
      elementwiseFunction("elementwise32", relaxed),
      convImagesFunction("convImages32", LAYOUTS.float32, convCallees("32")),
      convImagesFunction("convImages64", LAYOUTS.float64, convCallees("64")),
      adamFunction("adam32", 4),
      adamFunction("adam64", 8),
      weightImagesFunction("weightImages32", LAYOUTS.float32, weightCallees("32")),
      weightImagesFunction("weightImages64", LAYOUTS.float64, weightCallees("64")),
      sumPartialsFunction("sumPartials32", 4),
      sumPartialsFunction("sumPartials64", 8),
      zeroFunction(),
      extremesFunction(),
      fillFunction("fill32", 4),
      fillFunction("fill64", 8),
      countNonzeroFunction(),
      nonzeroPositionsFunction(),
      maxPoolAdjointFunction("maxPoolAdjoint32", 4),
      maxPoolAdjointFunction("maxPoolAdjoint64", 8),
      sumRowsFunction("sumRows32", 4),
      sumRowsFunction("sumRows64", 8),
    ];
    functions.forEach((f, i) => {
      if (f.name !== FUNCTION_NAMES[i]) throw new Error(`WasmRuntime: ${f.name} is not at ${i}`);
    });
    if (webAssembly === undefined) throw new Error("WasmRuntime: this runtime has no WebAssembly");
    this.memory = new webAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    this.module = new webAssembly.Module(
      assemble(functions, { initialPages: 1, maximumPages: MAX_PAGES }),
    );
    const instance = new webAssembly.Instance(this.module, { env: { memory: this.memory } });
    this.exports = instance.exports as unknown as WasmRuntime["exports"];
    this.refreshViews();
    runtimes.add(this);
  }

  private refreshViews(): void {
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    if (this.f32.buffer !== buffer || this.f32.length * 4 !== buffer.byteLength) {
      this.f32 = new Float32Array(buffer);
      this.f64 = new Float64Array(buffer);
    }
  }

  /** Grows the memory to at least `bytes`; false when that is beyond its maximum. */
  reserve(bytes: number): boolean {
    if (bytes > MAX_BYTES) return false;
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / PAGE));
    this.refreshViews();
    return true;
  }

  /**
   * A float32 (or float64) view of `length` elements at byte `address`: a kernel given it (or any
   * other view onto this memory) reads it in place instead of copying it in. It stays valid when
   * the memory grows (a shared memory keeps its backing store).
   */
  residentView(address: number, length: number, single: boolean): Float32Array | Float64Array {
    this.refreshViews();
    return single
      ? new Float32Array(this.memory.buffer, address, length)
      : new Float64Array(this.memory.buffer, address, length);
  }

  /** A heap block of `bytes` (whole cache lines): its byte address, or -1 when the memory cannot grow that far. */
  private block(bytes: number): number {
    const fit = this.freeBlocks.findIndex(([, size]) => size >= bytes);
    if (fit >= 0) {
      const [at, size] = this.freeBlocks[fit];
      if (size === bytes) this.freeBlocks.splice(fit, 1);
      else this.freeBlocks[fit] = [at + bytes, size - bytes];
      return at;
    }
    if (!this.reserve(this.heapTop + bytes)) return -1;
    const at = this.heapTop;
    this.heapTop += bytes;
    this.residentBytes = Math.max(this.residentBytes, this.heapTop);
    return at;
  }

  /**
   * A zeroed float32 (`single`) or float64 view of `length` elements in the heap at the start of
   * memory, resident (the kernels read it in place) until it is garbage collected, when its block
   * is freed for the next. Blocks are whole cache lines, so a kernel may run a vector past the
   * end. Null when the memory cannot grow that far. Call it between kernels, never while one
   * runs: a heap that grows moves every kernel's scratch up.
   *
   * @example
   * const moments = runtime.heapView(p.size, true); // read and written in place by adam32
   */
  heapView(length: number, single: boolean): Float32Array | Float64Array | null {
    const bytes = align64(Math.max(length, 1) * (single ? 4 : 8));
    const at = this.block(bytes);
    if (at < 0) return null;
    const view = this.residentView(at, length, single);
    this.exports.zero(at, bytes);
    this.heap.registry.register(view, [at, bytes, false]);
    return view;
  }

  /**
   * An array of `length` elements of `dtype` in the heap (zeroed unless `zeroed` is false: then it
   * holds what its block held), for a tensor's data: the kernels
   * read and write it in place, and its block is freed once it is garbage collected. Null when
   * the tensors' arrays would pass `tensorBudget` even after freeing the blocks of arrays
   * collected so far, or when the memory cannot grow that far: the caller then allocates in
   * JavaScript memory. Call it between kernels, as `heapView`.
   *
   * @example
   * const data = runtime.tensorArray("float32", 1 << 20) ?? new Float32Array(1 << 20);
   */
  tensorArray<D extends DType>(dtype: D, length: number, zeroed = true): DataArrayOf[D] | null {
    const Made = ARRAYS[dtype];
    const bytes = align64(Math.max(length, 1) * Made.BYTES_PER_ELEMENT);
    // Blocks of arrays collected since the last call first: reusing memory already touched is
    // cheaper than growing into fresh pages, and a loop that never yields frees nothing otherwise.
    if (!this.freeBlocks.some(([, size]) => size >= bytes)) this.heap.reclaim();
    if (this.tensorBytes + bytes > this.tensorBudget) return null;
    const at = this.block(bytes);
    if (at < 0) return null;
    this.refreshViews();
    const view = new Made(this.memory.buffer as ArrayBuffer, at, length);
    if (zeroed) this.exports.zero(at, bytes);
    this.tensorBytes += bytes;
    this.peakTensorBytes = Math.max(this.peakTensorBytes, this.tensorBytes);
    this.heap.registry.register(view, [at, bytes, true]);
    return view as DataArrayOf[D];
  }

  /** Returns a heap block to the free list, merged with its neighbours; the heap shrinks when its top block is free. */
  private release(at: number, bytes: number): void {
    const blocks = this.freeBlocks;
    let index = blocks.findIndex(([blockAt]) => blockAt > at);
    if (index < 0) index = blocks.length;
    blocks.splice(index, 0, [at, bytes]);
    const next = blocks[index + 1];
    if (next !== undefined && at + bytes === next[0]) {
      blocks[index] = [at, bytes + next[1]];
      blocks.splice(index + 1, 1);
    }
    const previous = blocks[index - 1];
    if (previous !== undefined && previous[0] + previous[1] === at) {
      blocks[index - 1] = [previous[0], previous[1] + blocks[index][1]];
      blocks.splice(index, 1);
    }
    const last = blocks[blocks.length - 1];
    if (last !== undefined && last[0] + last[1] === this.heapTop) {
      this.heapTop = last[0];
      blocks.pop();
    }
  }

  /** Frees the heap blocks of arrays collected so far (where the runtime can run finalisers now). */
  reclaim(): void {
    this.heap.reclaim();
  }

  /**
   * Elements [from, to) of the float32 (`single`) or float64 view of this memory set to `value`,
   * as `f32.fill(value, from, to)` (or `f64`'s) would, in wasm.
   */
  fill(single: boolean, value: number, from: number, to: number): void {
    if (to <= from) return;
    if (single) this.exports.fill32(4 * from, to - from, value);
    else this.exports.fill64(8 * from, to - from, value);
  }

  /**
   * The smallest and largest entries of `table`, an int32 array in this memory with at least one
   * element (in wasm, four at a time), or null for a table elsewhere.
   */
  extremesOf(table: Int32Array): [number, number] | null {
    const at = this.placeOf(table);
    if (at < 0 || table.length === 0) return null;
    const extremes = this.exports.extremes32 as unknown as (at: number, n: number) => number[];
    const [low, high] = extremes(at, table.length);
    return [low, high];
  }

  /** The byte address in this memory of `array`'s first element, or -1 when it lies elsewhere. */
  placeOf(array: ArrayBufferView): number {
    return this.buffers.has(array.buffer) ? array.byteOffset : -1;
  }

  /** The byte address of a float32 (`single`) or float64 array in this memory, or -1 for any other array. */
  addressOf(array: ArrayBufferView, single: boolean): number {
    if (!(single ? array instanceof Float32Array : array instanceof Float64Array)) return -1;
    return this.placeOf(array);
  }

  /**
   * Runs every chunk of `job`: on this thread alone when there is one chunk or one thread, else
   * shared with the workers (whichever thread is free takes the next chunk).
   */
  run(job: Job): void {
    if (job.chunks === 1 || threads === 1) {
      runHere(this.exports[FUNCTION_NAMES[job.fn]], job);
      return;
    }
    this.poolOfSize().run(job, this.exports);
  }

  /**
   * Runs every chunk of `job` on `kernel`, an export of another module over this memory (a compiled
   * elementwise kernel): here alone when there is one chunk or one thread, else on the runtime's
   * pool too, into which the module is loaded once (`job.fn` is ignored).
   */
  runModule(module: WasmModule, kernel: (...args: number[]) => void, job: Job): void {
    if (job.chunks === 1 || threads === 1) {
      runHere(kernel, job);
      return;
    }
    const pool = this.poolOfSize();
    let fn = this.loadedModules.get(module);
    if (fn === undefined) {
      fn = pool.load(module, { kernel }, ["kernel"]);
      this.loadedModules.set(module, fn);
    }
    pool.run({ ...job, fn }, this.exports);
  }

  /** The pool of `threads − 1` workers, made anew when the count changed or too many modules were loaded. */
  private poolOfSize(): WorkerPool {
    if (
      this.pool === null ||
      this.pool.size !== threads - 1 ||
      this.pool.loadedCount >= MAX_LOADED_MODULES
    ) {
      this.pool?.close();
      this.pool = new WorkerPool(this.module, this.memory, FUNCTION_NAMES, threads - 1);
      this.loadedModules = new WeakMap();
    }
    return this.pool;
  }

  /** Drops a pool of the wrong size; the next threaded call makes one of the right size. */
  resize(): void {
    if (this.pool !== null && this.pool.size !== threads - 1) {
      this.pool.close();
      this.pool = null;
    }
  }
}
