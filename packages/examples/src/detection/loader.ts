/** Shuffled training batches of a detection dataset, with augmentation that keeps every class valid; batch k is a pure function of (seed, k), so a resumed run sees the same batches. */

import { type Tensor, tensor } from "@focalgrad/core";
import type { Annotation, DetectionDataset } from "./datasets.js";
import { streamOf } from "./seed.js";

export interface LoaderOptions {
  /** Images per batch, 1 to the dataset's size; the last incomplete batch of an epoch is dropped. */
  batchSize: number;
  /** Seed of the shuffle and the augmentation. Default 0. */
  seed?: number;
  /**
   * Mirror each image left–right with probability 1/2 (boxes mirrored exactly). Default false:
   * turn it on only where a mirrored object is still of its class (shapes, not digits).
   */
  horizontalFlip?: boolean;
}

/** One batch: images `[B, 3, H, W]`, their annotations, and which dataset images they are. */
export interface Batch {
  images: Tensor;
  annotations: Annotation[];
  indices: number[];
  /** Which images were mirrored. */
  flipped: boolean[];
}

/** Streams of the loader under its seed (kept apart from the datasets' streams). */
const SHUFFLE_STREAM = 11;
const AUGMENT_STREAM = 12;

/** Fisher–Yates over 0 … n − 1. */
function permutation(n: number, seed: number, epoch: number): Int32Array {
  const gen = streamOf(seed, SHUFFLE_STREAM, epoch);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = gen.integer(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * The mirror image of boxes `[K, 4]` in an image `width` pixels wide: x1' = width − x2,
 * x2' = width − x1 (pixel-edge coordinates, so a tight box stays tight).
 *
 * @example
 * flipBoxes(tensor([[2, 5, 10, 9]]), 64).toArray(); // [[54, 5, 62, 9]]
 */
export function flipBoxes(boxes: Tensor, width: number): Tensor {
  const src = boxes.data;
  const out = new Float32Array(src.length);
  for (let k = 0; k < src.length; k += 4) {
    out[k] = width - src[k + 2];
    out[k + 1] = src[k + 1];
    out[k + 2] = width - src[k];
    out[k + 3] = src[k + 3];
  }
  return tensor(out, { shape: boxes.shape, dtype: "float32" });
}

/**
 * Batches of a dataset in an order reshuffled every epoch. `batch(step)` depends only on the seed
 * and the step, never on earlier calls: the loader has no state to checkpoint.
 *
 * @example
 * const loader = new BatchLoader(shapesDataset({ count: 64 }), { batchSize: 8, horizontalFlip: true });
 * const { images, annotations } = loader.batch(0);
 * images.shape;        // [8, 3, 64, 64]
 * loader.stepsPerEpoch; // 8
 */
export class BatchLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly horizontalFlip: boolean;
  /** Complete batches per pass over the dataset. */
  readonly stepsPerEpoch: number;
  #epoch = -1;
  #order: Int32Array = new Int32Array(0);

  constructor(
    readonly dataset: DetectionDataset,
    options: LoaderOptions,
  ) {
    const count = dataset.images.shape[0];
    const { batchSize, seed = 0, horizontalFlip = false } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > count) {
      throw new Error(
        `BatchLoader: batchSize must be an integer from 1 to the dataset's ${count} images, got ${batchSize}`,
      );
    }
    this.batchSize = batchSize;
    this.seed = seed;
    this.horizontalFlip = horizontalFlip;
    this.stepsPerEpoch = Math.floor(count / batchSize);
  }

  /** The batch of training step `step` (0-based). */
  batch(step: number): Batch {
    if (!Number.isInteger(step) || step < 0) {
      throw new Error(`BatchLoader.batch: step must be an integer >= 0, got ${step}`);
    }
    const epoch = Math.floor(step / this.stepsPerEpoch);
    if (epoch !== this.#epoch) {
      this.#order = permutation(this.dataset.images.shape[0], this.seed, epoch);
      this.#epoch = epoch;
    }
    const start = (step % this.stepsPerEpoch) * this.batchSize;
    const indices = [...this.#order.subarray(start, start + this.batchSize)];
    const [, channels, height, width] = this.dataset.images.shape;
    const size = channels * height * width;
    const source = this.dataset.images.data;
    const pixels = new Float32Array(indices.length * size);
    const gen = streamOf(this.seed, AUGMENT_STREAM, step);
    const flipped = indices.map(() => this.horizontalFlip && gen.uniform() < 0.5);
    const annotations = indices.map((index, b) => {
      const from = index * size;
      const to = b * size;
      const annotation = this.dataset.annotations[index];
      if (!flipped[b]) {
        pixels.set(source.subarray(from, from + size), to);
        return annotation;
      }
      for (let row = 0; row < channels * height; row++) {
        const rowFrom = from + row * width;
        const rowTo = to + row * width;
        for (let c = 0; c < width; c++) pixels[rowTo + c] = source[rowFrom + width - 1 - c];
      }
      return { boxes: flipBoxes(annotation.boxes, width), labels: annotation.labels };
    });
    return {
      images: tensor(pixels, {
        shape: [indices.length, channels, height, width],
        dtype: "float32",
      }),
      annotations,
      indices,
      flipped,
    };
  }
}
