/** The hand-fused focal loop split over worker threads by anchors, on shared copies of the batch: what a hand-written loop reaches with more than one core. */

import { Worker } from "node:worker_threads";
import { type FusedFocalOptions, fusedFocalInto } from "./focal.js";

// Control block (Int32): generation (moves once per run), workers still running, stop flag, the
// batch's object anchors for this run.
const GENERATION = 0;
const PENDING = 1;
const STOP = 2;
const OBJECTS = 3;

// The worker evaluates the loop's own source (it imports nothing), so it runs the same from the
// TypeScript sources under vitest and from the built package.
const workerSource = `
const { workerData } = require("node:worker_threads");
const fusedFocalInto = (${fusedFocalInto.toString()});
const { control, yTrue, yPred, grad, losses, index, from, to, classes, options } = workerData;
const width = classes + 1;
const t = yTrue.subarray(from * width, to * width);
const p = yPred.subarray(from * classes, to * classes);
const g = grad.subarray(from * classes, to * classes);
let seen = 0;
for (;;) {
  Atomics.wait(control, ${GENERATION}, seen);
  seen = Atomics.load(control, ${GENERATION});
  if (Atomics.load(control, ${STOP}) !== 0) break;
  losses[index] = fusedFocalInto(t, p, g, to - from, classes, options, "float32", control[${OBJECTS}]);
  if (Atomics.sub(control, ${PENDING}, 1) === 1) Atomics.notify(control, ${PENDING});
}
`;

/** A float32 copy of `data` in a SharedArrayBuffer. */
function shared(data: Float32Array): Float32Array {
  const copy = new Float32Array(new SharedArrayBuffer(data.byteLength));
  copy.set(data);
  return copy;
}

/**
 * The seed's focal loss and its gradient (float32) by `fusedFocalInto` on `threads` worker
 * threads, each over a contiguous range of anchors, with the batch's object count as the
 * normaliser. The batch is copied into shared memory once; `run` blocks the calling thread until
 * every worker is done and returns the loss (the ranges' losses added in order). Ignored anchors
 * keep a gradient of 0. `close` stops the workers.
 *
 * @example
 * const fused = new FusedFocalThreads(yTrue.read(), yPred.read(), 8 * 49_104, 20, 2);
 * const loss = fused.run(); // fused.grad holds the gradient
 * fused.close();
 */
export class FusedFocalThreads {
  readonly grad: Float32Array;
  private readonly yTrue: Float32Array;
  private readonly control = new Int32Array(new SharedArrayBuffer(16));
  private readonly losses: Float64Array;
  private readonly workers: Worker[] = [];

  constructor(
    yTrue: Float32Array,
    yPred: Float32Array,
    private readonly anchors: number,
    private readonly classes: number,
    readonly threads = 2,
    options: FusedFocalOptions = {},
  ) {
    if (!Number.isInteger(threads) || threads < 1) {
      throw new Error(`FusedFocalThreads: threads must be an integer >= 1, got ${threads}`);
    }
    if (yTrue.length !== anchors * (classes + 1) || yPred.length !== anchors * classes) {
      throw new Error(
        `FusedFocalThreads: expected yTrue of ${anchors} × ${classes + 1} and yPred of ${anchors} × ${classes} elements, got ${yTrue.length} and ${yPred.length}`,
      );
    }
    this.yTrue = shared(yTrue);
    const sharedPred = shared(yPred);
    this.grad = new Float32Array(new SharedArrayBuffer(yPred.byteLength));
    this.losses = new Float64Array(new SharedArrayBuffer(8 * threads));
    for (let index = 0; index < threads; index++) {
      const worker = new Worker(workerSource, {
        eval: true,
        workerData: {
          control: this.control,
          yTrue: this.yTrue,
          yPred: sharedPred,
          grad: this.grad,
          losses: this.losses,
          index,
          from: Math.floor((index * anchors) / threads),
          to: Math.floor(((index + 1) * anchors) / threads),
          classes,
          options,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Bytes of the shared copies and buffers the workers use (the batch, the gradient, the losses). */
  get sharedBytes(): number {
    return this.yTrue.byteLength + 2 * this.grad.byteLength + this.losses.byteLength;
  }

  /** One forward and backward pass: the loss; the gradient is in `grad`. */
  run(): number {
    const { control, classes } = this;
    // The normaliser counts the whole batch, as the single loop does in its first pass.
    let objects = 0;
    for (let a = 0; a < this.anchors; a++)
      if (this.yTrue[a * (classes + 1) + classes] === 1) objects++;
    control[OBJECTS] = objects;
    Atomics.store(control, PENDING, this.threads);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    for (;;) {
      const pending = Atomics.load(control, PENDING);
      if (pending === 0) break;
      Atomics.wait(control, PENDING, pending);
    }
    let loss = 0;
    for (const part of this.losses) loss += part;
    return loss;
  }

  /** Stops the workers (none is running between runs). */
  close(): void {
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
    for (const worker of this.workers) void worker.terminate();
    this.workers.length = 0;
  }
}
