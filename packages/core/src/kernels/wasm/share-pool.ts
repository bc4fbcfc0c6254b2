/** A pool of worker threads that run one share each of a job of one WebAssembly module's function over a shared memory, share k on worker k − 1, synchronised with Atomics: the fused elementwise kernels' pool, whose shares each own a register file (the dense kernels' `WorkerPool` hands chunks to whichever thread is free, which per-share scratch memory cannot follow). */

import { Worker } from "node:worker_threads";
import type { WasmMemory, WasmModule } from "./webassembly.js";

// Control block (Int32): generation, workers still running, error flag, then one slot per worker:
// function index, argument count, arguments.
const GENERATION = 0;
const PENDING = 1;
const FAILED = 2;
const HEADER = 4;
const SLOT = 24;
const MAX_ARGS = SLOT - 2;
const IDLE = -1;
const STOP = -2;

// The worker's whole program. It is evaluated as a script (not a file next to this module), so it
// runs the same from the TypeScript sources under vitest and from the built package. It never
// returns to its event loop: it sleeps in Atomics.wait until the generation moves.
const workerSource = `
const { workerData } = require("node:worker_threads");
const { module, memory, control, index, names, header, slot } = workerData;
const { exports } = new WebAssembly.Instance(module, { env: { memory } });
const functions = names.map((name) => exports[name]);
const base = header + index * slot;
let seen = 0;
for (;;) {
  Atomics.wait(control, ${GENERATION}, seen);
  const now = Atomics.load(control, ${GENERATION});
  if (now === seen) continue;
  seen = now;
  const fn = control[base];
  if (fn === ${STOP}) break;
  if (fn !== ${IDLE}) {
    try {
      functions[fn](...control.subarray(base + 2, base + 2 + control[base + 1]));
    } catch {
      Atomics.store(control, ${FAILED}, 1);
    }
  }
  if (Atomics.sub(control, ${PENDING}, 1) === 1) Atomics.notify(control, ${PENDING});
}
`;

/** One participant's share of a job: the index of the function in `names` and its i32 arguments. */
export interface Share {
  fn: number;
  args: readonly number[];
}

/**
 * Workers that each instantiate `module` over `memory` (a shared WebAssembly.Memory). `run` hands
 * share 0 to the calling thread and the others to workers, and returns when all are done. Workers
 * are unref'd: an idle pool never keeps the process alive.
 *
 * @example
 * const pool = new SharePool(module, memory, ["gemm32"], 1);
 * pool.run([{ fn: 0, args: [...] }, { fn: 0, args: [...] }], instance.exports);
 * pool.close();
 */
export class SharePool {
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];

  constructor(
    module: WasmModule,
    memory: WasmMemory,
    private readonly names: readonly string[],
    /** Workers besides the calling thread. */
    readonly size: number,
  ) {
    this.control = new Int32Array(new SharedArrayBuffer(4 * (HEADER + SLOT * size)));
    for (let index = 0; index < size; index++) {
      const worker = new Worker(workerSource, {
        eval: true,
        workerData: {
          module,
          memory,
          control: this.control,
          index,
          names,
          header: HEADER,
          slot: SLOT,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /**
   * Runs `shares[0]` here and `shares[1..]` on workers 0.. (at most `size` of them), then waits
   * for all. Throws if any share trapped.
   */
  run(shares: readonly Share[], local: Record<string, unknown>): void {
    if (shares.length - 1 > this.size) {
      throw new Error(
        `SharePool.run: ${shares.length} shares for ${this.size} workers + this thread`,
      );
    }
    const control = this.control;
    for (let w = 0; w < this.size; w++) {
      const base = HEADER + w * SLOT;
      const share = shares[w + 1];
      if (share === undefined) {
        control[base] = IDLE;
        continue;
      }
      if (share.args.length > MAX_ARGS)
        throw new Error(`SharePool.run: more than ${MAX_ARGS} arguments`);
      control[base] = share.fn;
      control[base + 1] = share.args.length;
      control.set(share.args, base + 2);
    }
    Atomics.store(control, FAILED, 0);
    Atomics.store(control, PENDING, this.size);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    let localError: unknown = null;
    const own = shares[0];
    if (own !== undefined) {
      try {
        (local[this.names[own.fn]] as (...args: number[]) => void)(...own.args);
      } catch (error) {
        localError = error;
      }
    }
    for (;;) {
      const pending = Atomics.load(control, PENDING);
      if (pending === 0) break;
      Atomics.wait(control, PENDING, pending);
    }
    if (localError !== null) throw localError;
    if (Atomics.load(control, FAILED) !== 0) {
      throw new Error("SharePool.run: a worker's share of the kernel trapped");
    }
  }

  /** Stops every worker (they finish the job in hand first; there is none between runs). */
  close(): void {
    for (let w = 0; w < this.size; w++) this.control[HEADER + w * SLOT] = STOP;
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
    for (const worker of this.workers) void worker.terminate();
    this.workers.length = 0;
  }
}
