/** Mini-batches of a dataset held in tensors, as PyTorch's `DataLoader` over a `TensorDataset`. */

import { randperm } from "./ops/creation.js";
import { gather } from "./ops/selection.js";
import { checkTensor } from "./ops/util.js";
import { type Generator, generatorOf, type RandomSource } from "./random.js";
import { formatShape } from "./shape.js";
import { Tensor } from "./tensor.js";

/** Options of `DataLoader`: batch size, shuffling (and its randomness), a partial last batch. */
export interface DataLoaderOptions extends RandomSource {
  /** Samples per batch, an integer >= 1. Default 1 (PyTorch's). */
  batchSize?: number;
  /** Visit the samples in a new random order on every pass. Default false. */
  shuffle?: boolean;
  /** Leave out a last batch smaller than `batchSize`. Default false. */
  dropLast?: boolean;
}

/**
 * Iterates over mini-batches of `tensors`, which share their first axis (the samples): each batch
 * is one tensor per input, holding the same samples. Every `for … of` is one epoch; with
 * `shuffle` each epoch draws a fresh order from the loader's generator (the default generator
 * unless `generator` or `seed` is given), so a seeded run is reproducible.
 *
 * @example
 * const loader = new DataLoader([images, labels], { batchSize: 32, shuffle: true, seed: 0 });
 * for (const epoch of [0, 1]) {
 *   for (const [x, y] of loader) {
 *     // x: [32, 1, 16, 16], y: [32] (the last batch may be smaller)
 *   }
 * }
 */
export class DataLoader implements Iterable<Tensor[]> {
  /** The tensors batched, as given. */
  readonly tensors: readonly Tensor[];
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether each epoch visits the samples in a new random order. */
  readonly shuffle: boolean;
  /** Whether a last, smaller batch is left out. */
  readonly dropLast: boolean;
  readonly #generator: Generator;

  /** A loader over `tensors` (at least one, all with the same first-axis length). */
  constructor(tensors: readonly Tensor[], options: DataLoaderOptions = {}) {
    if (!Array.isArray(tensors) || tensors.length === 0) {
      throw new Error("DataLoader: tensors must be a non-empty array of tensors");
    }
    tensors.forEach((t, i) => {
      checkTensor("DataLoader", `tensors[${i}]`, t);
      if (t.rank === 0 || t.shape[0] !== tensors[0].shape[0]) {
        throw new Error(
          `DataLoader: every tensor must have the same first axis (the samples), got ${formatShape(tensors[0].shape)} and ${formatShape(t.shape)} at tensors[${i}]`,
        );
      }
    });
    this.batchSize = options.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new Error(`DataLoader: batchSize must be an integer >= 1, got ${this.batchSize}`);
    }
    this.tensors = [...tensors];
    this.shuffle = options.shuffle ?? false;
    this.dropLast = options.dropLast ?? false;
    this.#generator = generatorOf("DataLoader", options);
  }

  /** The number of samples. */
  get samples(): number {
    return this.tensors[0].shape[0];
  }

  /** The number of batches of one epoch, as `len(loader)`. */
  get length(): number {
    const full = Math.floor(this.samples / this.batchSize);
    return this.dropLast || this.samples % this.batchSize === 0 ? full : full + 1;
  }

  /** One epoch of batches, in order or (with `shuffle`) in a freshly drawn order. */
  *[Symbol.iterator](): Iterator<Tensor[]> {
    const n = this.samples;
    const order = this.shuffle
      ? (randperm(n, { generator: this.#generator }).read() as Int32Array)
      : Int32Array.from({ length: n }, (_, i) => i);
    for (let b = 0; b < this.length; b++) {
      const rows = order.subarray(b * this.batchSize, Math.min(n, (b + 1) * this.batchSize));
      const indices = new Tensor(rows.slice(), [rows.length], "int32");
      yield this.tensors.map((t) => gather(t, indices, 0));
    }
  }
}
