/** A pool of worker threads that run exported functions of WebAssembly modules over a shared memory, one job at a time, its chunks claimed with Atomics by whichever thread is free first: the runtime's module (the dense kernels) and the modules loaded into it later (the compiled elementwise kernels). */

import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { WasmMemory, WasmModule } from "./webassembly.js";

// Control block (Int32). WAKE moves once per job (workers sleep on it). CLAIM is the job's tag
// (its sequence number, modulo 2¹⁵) in the high half and the next unclaimed chunk in the low half:
// one Atomics.add both claims a chunk and says which job it belongs to. TAG is the tag of the job
// whose description follows (-1 while main writes a new one), DONE counts finished chunks.
const WAKE = 0;
const CLAIM = 1;
const DONE = 2;
const FAILED = 3;
const STOPPED = 4;
const TAG = 5;
const FN = 6;
const CHUNKS = 7;
const TOTAL = 8;
const ARGC = 9;
const STEP = 10;
const LIMIT = 11;
const SCRATCHED = 12;
const SCRATCH_BASE = 13;
const SCRATCH_STRIDE = 14;
const ARGS = 15;
/** Arguments of a job besides the two (lo, hi) each chunk appends. */
export const MAX_ARGS = 24;
const WORDS = ARGS + MAX_ARGS;
/** At most this many chunks: they are counted in the low 16 bits of CLAIM, with room for over-claims. */
export const MAX_CHUNKS = 1 << 14;
/**
 * Polls of WAKE before a worker goes to sleep: the dense kernels of a training step come in quick
 * succession, and a worker that is still awake picks up the next job without the kernel's futex
 * round trip (tens of microseconds on a busy machine). About 20 µs of polling.
 */
const SPIN = 2000;

// The worker's whole program. It is evaluated as a script (not a file next to this module), so it
// runs the same from the TypeScript sources under vitest and from the built package. It never
// returns to its event loop: between jobs it polls, then sleeps in Atomics.wait.
const workerSource = `
const { receiveMessageOnPort, workerData } = require("node:worker_threads");
const { module, memory, control, names, port } = workerData;
const { exports } = new WebAssembly.Instance(module, { env: { memory } });
const functions = names.map((name) => exports[name]);
// Modules loaded later arrive on the port, posted before the first job that runs them: their
// functions are appended in the order the pool numbered them.
const lookup = (fn) => {
  while (functions[fn] === undefined) {
    const message = receiveMessageOnPort(port);
    if (message === undefined) return undefined;
    const loaded = new WebAssembly.Instance(message.message.module, { env: { memory } }).exports;
    for (const name of message.message.names) functions.push(loaded[name]);
  }
  return functions[fn];
};
const CLAIM = ${CLAIM}, DONE = ${DONE}, FAILED = ${FAILED}, TAG = ${TAG}, FN = ${FN};
const CHUNKS = ${CHUNKS}, TOTAL = ${TOTAL}, ARGC = ${ARGC}, ARGS = ${ARGS};
const STEP = ${STEP}, LIMIT = ${LIMIT}, SCRATCHED = ${SCRATCHED};
const SCRATCH_BASE = ${SCRATCH_BASE}, SCRATCH_STRIDE = ${SCRATCH_STRIDE};
${chunkArguments.toString()}
${claimChunks.toString()}
let seen = Atomics.load(control, ${WAKE});
for (;;) {
  for (let i = 0; i < ${SPIN} && Atomics.load(control, ${WAKE}) === seen; i++);
  Atomics.wait(control, ${WAKE}, seen);
  seen = Atomics.load(control, ${WAKE});
  if (Atomics.load(control, ${STOPPED}) !== 0) break;
  claimChunks(control, lookup);
}
`;

/**
 * Runs chunks of the current job until none is left: claims one (CLAIM), checks that the
 * description it reads belongs to the job the claim was for (TAG before and after reading, so a
 * late worker never runs a chunk of a job half-written by the next `run`), runs it and counts it
 * done. Shared by the calling thread and the workers (the workers get its source and
 * `chunkArguments`'s, with the constants it names).
 */
function claimChunks(
  control: Int32Array,
  lookup: (fn: number) => ((...args: number[]) => void) | undefined,
): void {
  for (;;) {
    const claim = Atomics.add(control, CLAIM, 1);
    const tag = claim >>> 16;
    const chunk = claim & 0xffff;
    if (Atomics.load(control, TAG) !== tag) return;
    const chunks = control[CHUNKS];
    if (chunk >= chunks) return;
    const fn = control[FN];
    const job: Job = {
      fn,
      args: Array.from(control.subarray(ARGS, ARGS + control[ARGC])),
      total: control[TOTAL],
      chunks,
      step: control[STEP],
      limit: control[LIMIT],
      scratch:
        control[SCRATCHED] === 0
          ? undefined
          : { base: control[SCRATCH_BASE], stride: control[SCRATCH_STRIDE] },
    };
    if (Atomics.load(control, TAG) !== tag) return;
    const args = chunkArguments(job, chunk);
    try {
      (lookup(fn) as (...args: number[]) => void)(...args);
    } catch {
      Atomics.store(control, FAILED, 1);
    }
    if (Atomics.add(control, DONE, 1) + 1 === chunks) Atomics.notify(control, DONE);
  }
}

/**
 * One job: `fn(...args, lo, hi)` for `chunks` consecutive ranges [lo, hi) that tile [0, total)
 * (in units of `step`, cut at `limit`), with `scratch.base + c · scratch.stride` before (lo, hi)
 * when the chunks need scratch memory of their own. Which thread runs which chunk is not fixed,
 * so chunks must write disjoint outputs, and a chunk's scratch goes with its index, not a thread.
 */
export interface Job {
  /** Index of the function: in the pool's `names`, then the functions `load` added, in order. */
  fn: number;
  /** Its i32 arguments before (lo, hi). */
  args: readonly number[];
  /** The range the chunks tile: [0, total). */
  total: number;
  /** Number of chunks, at most `total` and `MAX_CHUNKS`. */
  chunks: number;
  /** lo and hi are multiples of `step` (default 1)… */
  step?: number;
  /** …cut at `limit` (default total · step): blocks of `step` elements over `limit` elements. */
  limit?: number;
  /** Scratch memory per chunk: chunk c gets the address `base + c · stride`. */
  scratch?: { readonly base: number; readonly stride: number };
}

/**
 * The arguments of chunk `c` of `job`: what the pool's threads pass to its function.
 *
 * @example
 * chunkArguments({ fn: 0, args: [64], total: 3, chunks: 2, step: 4, limit: 10 }, 1); // [64, 4, 10]
 */
export function chunkArguments(job: Job, c: number): number[] {
  const { total, chunks, step = 1, limit = total * step } = job;
  const args = [...job.args];
  if (job.scratch !== undefined) args.push(job.scratch.base + c * job.scratch.stride);
  args.push(
    Math.min(limit, step * Math.floor((c * total) / chunks)),
    Math.min(limit, step * Math.floor(((c + 1) * total) / chunks)),
  );
  return args;
}

/**
 * Workers that each instantiate `module` over `memory` (a shared WebAssembly.Memory), and the
 * modules `load` adds later. `run` wakes
 * them and works on the job itself too: a worker that the scheduler has not let run yet just
 * finds nothing left, so a loaded machine costs no more than one thread. Workers are unref'd: an
 * idle pool never keeps the process alive.
 *
 * @example
 * const pool = new WorkerPool(module, memory, ["fill"], 1);
 * pool.run({ fn: 0, args: [address], total: 1000, chunks: 8 }, instance.exports);
 * pool.close();
 */
export class WorkerPool {
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * WORDS));
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  /** This thread's functions of the modules loaded after the first, numbered after `names`. */
  private readonly loaded: ((...args: number[]) => void)[] = [];
  private tag = 0;

  constructor(
    module: WasmModule,
    memory: WasmMemory,
    private readonly names: readonly string[],
    /** Workers besides the calling thread. */
    readonly size: number,
  ) {
    this.control[TAG] = -1;
    for (let index = 0; index < size; index++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(workerSource, {
        eval: true,
        workerData: { module, memory, control: this.control, names, port: port2 },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  /** Functions of the modules loaded into the pool besides its first. */
  get loadedCount(): number {
    return this.loaded.length;
  }

  /**
   * Loads another module over the same memory into every worker: its functions `names` (this
   * thread's are taken from `local`) become `fn` numbers of this pool, the first of them returned.
   * The workers instantiate it when a job first asks for one of them.
   *
   * @example
   * const fn = pool.load(kernelModule, instance.exports, ["kernel"]);
   * pool.run({ fn, args: [], total: 100, chunks: 2 }, runtimeExports);
   */
  load(module: WasmModule, local: Record<string, unknown>, names: readonly string[]): number {
    const first = this.names.length + this.loaded.length;
    for (const name of names) {
      const f = local[name];
      if (typeof f !== "function") {
        throw new Error(`WorkerPool.load: the module's instance has no function "${name}"`);
      }
      this.loaded.push(f as (...args: number[]) => void);
    }
    for (const port of this.ports) port.postMessage({ module, names: [...names] });
    return first;
  }

  /** Runs every chunk of `job` on this thread (functions from `local`) and the workers; returns when all are done. Throws if any chunk trapped. */
  run(job: Job, local: Record<string, unknown>): void {
    const { fn, args, total, chunks, step = 1, limit = total * step, scratch } = job;
    if (args.length > MAX_ARGS) {
      throw new Error(`WorkerPool.run: ${args.length} arguments, at most ${MAX_ARGS}`);
    }
    if (!Number.isInteger(chunks) || chunks < 1 || chunks > Math.min(total, MAX_CHUNKS)) {
      throw new Error(
        `WorkerPool.run: chunks must be an integer in [1, min(total ${total}, ${MAX_CHUNKS})], got ${chunks}`,
      );
    }
    const control = this.control;
    this.tag = (this.tag + 1) & 0x7fff;
    Atomics.store(control, TAG, -1);
    control[FN] = fn;
    control[CHUNKS] = chunks;
    control[TOTAL] = total;
    control[ARGC] = args.length;
    control[STEP] = step;
    control[LIMIT] = limit;
    control[SCRATCHED] = scratch === undefined ? 0 : 1;
    control[SCRATCH_BASE] = scratch?.base ?? 0;
    control[SCRATCH_STRIDE] = scratch?.stride ?? 0;
    control.set(args, ARGS);
    Atomics.store(control, DONE, 0);
    Atomics.store(control, FAILED, 0);
    Atomics.store(control, TAG, this.tag);
    Atomics.store(control, CLAIM, this.tag << 16);
    Atomics.add(control, WAKE, 1);
    Atomics.notify(control, WAKE, Math.min(this.size, chunks - 1));
    const functions = [
      ...this.names.map((name) => local[name] as (...a: number[]) => void),
      ...this.loaded,
    ];
    claimChunks(control, (f) => functions[f]);
    for (;;) {
      const done = Atomics.load(control, DONE);
      if (done === chunks) break;
      Atomics.wait(control, DONE, done);
    }
    if (Atomics.load(control, FAILED) !== 0) {
      throw new Error("WorkerPool.run: a chunk of the kernel trapped");
    }
  }

  /** Stops every worker (they finish the job in hand first; there is none between runs). */
  close(): void {
    Atomics.store(this.control, STOPPED, 1);
    Atomics.add(this.control, WAKE, 1);
    Atomics.notify(this.control, WAKE);
    for (const worker of this.workers) void worker.terminate();
    for (const port of this.ports) port.close();
    this.workers.length = 0;
    this.ports.length = 0;
  }
}
