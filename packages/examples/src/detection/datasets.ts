/** The toy detection datasets: procedural shapes and MNIST digits on a canvas, rendered deterministically from a seed with exact boxes. */

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type Generator, type Tensor, tensor } from "@focalgrad/core";
import { integerIn, streamOf } from "./seed.js";

/** Which part of a dataset: images for training, or held-out images for evaluation. */
export type Split = "train" | "test";

/** The objects of one image: boxes `[K, 4]` float32 (x1, y1, x2, y2 in pixels) and labels `[K]` int32. */
export interface Annotation {
  boxes: Tensor;
  labels: Tensor;
}

/** Images `[count, 3, H, W]` float32 in [0, 1] with one annotation per image. */
export interface DetectionDataset {
  images: Tensor;
  annotations: Annotation[];
  /** The name of each label. */
  classNames: readonly string[];
}

export interface DatasetOptions {
  /** Default "train". */
  split?: Split;
  /** Number of images, >= 1. */
  count: number;
  /** Seed of the images; the same seed and split give the same images. Default 0. */
  seed?: number;
  /** Width and height of the square images in pixels. Default 64 (shapes), 96 (digits). */
  imageSize?: number;
}

const SPLIT_STREAM: Record<Split, number> = { train: 1, test: 2 };

/** The shapes dataset's classes, in label order. */
export const SHAPE_CLASSES = ["disc", "square", "triangle"] as const;

/** The digits dataset's classes, in label order. */
export const DIGIT_CLASSES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] as const;

function checkOptions(
  op: string,
  options: DatasetOptions,
  defaultSize: number,
  minSize: number,
): Required<DatasetOptions> {
  if (options === null || typeof options !== "object") {
    throw new Error(`${op}: expected an options object { split, count, seed, imageSize }`);
  }
  const { split = "train", count, seed = 0, imageSize = defaultSize } = options;
  if (split !== "train" && split !== "test") {
    throw new Error(`${op}: split must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`${op}: count must be an integer >= 1, got ${count}`);
  }
  if (!Number.isFinite(seed)) throw new Error(`${op}: seed must be a finite number, got ${seed}`);
  if (!Number.isInteger(imageSize) || imageSize < minSize) {
    throw new Error(`${op}: imageSize must be an integer >= ${minSize}, got ${imageSize}`);
  }
  return { split, count, seed, imageSize };
}

/** A box as [x1, y1, x2, y2]. */
type Box = [number, number, number, number];

function area(b: Box): number {
  return (b[2] - b[0]) * (b[3] - b[1]);
}

function intersection(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

function annotationOf(boxes: Box[], labels: number[]): Annotation {
  return {
    boxes: tensor(Float32Array.from(boxes.flat()), { shape: [boxes.length, 4], dtype: "float32" }),
    labels: tensor(Int32Array.from(labels), { shape: [labels.length], dtype: "int32" }),
  };
}

/** A pixel mask of one shape over its bounding square, with the tight box of its pixels. */
export interface ShapeMask {
  /** Row-major over the `size × size` square whose top-left pixel is (x, y). */
  mask: Uint8Array;
  box: Box;
}

/**
 * The pixels of a shape of class `kind` (0 disc, 1 square, 2 triangle) inscribed in the square
 * of `size` pixels at (x, y): a pixel belongs to it when its centre lies inside the shape (an
 * apex-up isosceles triangle on the square's bottom edge, for 2). The box is the tight extent of
 * those pixels, so it is exact by construction.
 *
 * @example
 * shapeMask(1, 10, 20, 8).box; // [10, 20, 18, 28]
 */
export function shapeMask(kind: number, x: number, y: number, size: number): ShapeMask {
  const mask = new Uint8Array(size * size);
  const half = size / 2;
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -Infinity;
  let y2 = -Infinity;
  for (let r = 0; r < size; r++) {
    const py = r + 0.5;
    for (let c = 0; c < size; c++) {
      const px = c + 0.5;
      let inside: boolean;
      if (kind === 0) inside = (px - half) ** 2 + (py - half) ** 2 <= half * half;
      else if (kind === 1) inside = true;
      else inside = Math.abs(px - half) <= py / 2;
      if (!inside) continue;
      mask[r * size + c] = 1;
      x1 = Math.min(x1, c);
      y1 = Math.min(y1, r);
      x2 = Math.max(x2, c + 1);
      y2 = Math.max(y2, r + 1);
    }
  }
  return { mask, box: [x + x1, y + y1, x + x2, y + y2] };
}

/** Fills one CHW image with a base colour, soft stripes and per-pixel noise. */
function paintBackground(
  pixels: Float32Array,
  offset: number,
  size: number,
  gen: Generator,
): number[] {
  const base = [gen.uniform(0, 1), gen.uniform(0, 1), gen.uniform(0, 1)];
  const angle = gen.uniform(0, Math.PI);
  const frequency = gen.uniform(0.05, 0.3);
  const amplitude = gen.uniform(0, 0.12);
  const plane = size * size;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const stripe = amplitude * Math.sin(frequency * (c * Math.cos(angle) + r * Math.sin(angle)));
      for (let ch = 0; ch < 3; ch++) {
        const v = base[ch] + stripe + gen.uniform(-0.08, 0.08);
        pixels[offset + ch * plane + r * size + c] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return base;
}

/** A colour at Euclidean distance >= 0.45 from `avoid`, so every object stands out from its background. */
function contrastingColour(gen: Generator, avoid: number[]): number[] {
  for (;;) {
    const colour = [gen.uniform(0, 1), gen.uniform(0, 1), gen.uniform(0, 1)];
    if (Math.hypot(...colour.map((v, i) => v - avoid[i])) >= 0.45) return colour;
  }
}

/** Placements may overlap by at most this fraction of the smaller box (limited occlusion). */
const MAX_SHAPE_OVERLAP = 0.2;

/**
 * Images of 1–4 discs, squares and triangles (labels 0, 1, 2) of 8–32 pixels with random colours
 * and positions on a striped, noisy background. Objects overlap by at most a fifth of the smaller
 * one's box; boxes are the tight extent of each object's pixels. The same seed and split give the
 * same images; "train" and "test" draw from different streams.
 *
 * @example
 * const { images, annotations } = shapesDataset({ split: "test", count: 4, seed: 0 });
 * images.shape;                  // [4, 3, 64, 64]
 * annotations[0].boxes.shape[1]; // 4
 */
export function shapesDataset(options: DatasetOptions): DetectionDataset {
  const { split, count, seed, imageSize } = checkOptions("shapesDataset", options, 64, 32);
  const plane = imageSize * imageSize;
  const pixels = new Float32Array(count * 3 * plane);
  const annotations: Annotation[] = [];
  for (let i = 0; i < count; i++) {
    const gen = streamOf(seed, SPLIT_STREAM[split], i);
    const offset = i * 3 * plane;
    const background = paintBackground(pixels, offset, imageSize, gen);
    const boxes: Box[] = [];
    const labels: number[] = [];
    const objects = integerIn(gen, 1, 4);
    for (let tries = 0; boxes.length < objects && tries < 100; tries++) {
      const kind = gen.integer(SHAPE_CLASSES.length);
      const size = integerIn(gen, 8, Math.min(32, imageSize));
      const x = integerIn(gen, 0, imageSize - size);
      const y = integerIn(gen, 0, imageSize - size);
      const { mask, box } = shapeMask(kind, x, y, size);
      const crowded = boxes.some(
        (b) => intersection(b, box) > MAX_SHAPE_OVERLAP * Math.min(area(b), area(box)),
      );
      if (crowded) continue;
      const colour = contrastingColour(gen, background);
      for (let r = 0; r < size; r++) {
        for (let c = 0; c < size; c++) {
          if (mask[r * size + c] === 0) continue;
          const at = offset + (y + r) * imageSize + x + c;
          for (let ch = 0; ch < 3; ch++) pixels[at + ch * plane] = colour[ch];
        }
      }
      boxes.push(box);
      labels.push(kind);
    }
    annotations.push(annotationOf(boxes, labels));
  }
  return {
    images: tensor(pixels, { shape: [count, 3, imageSize, imageSize], dtype: "float32" }),
    annotations,
    classNames: SHAPE_CLASSES,
  };
}

/** MNIST samples are 28 × 28 pixels. */
const MNIST_SIDE = 28;

/** Every fifth sample of each digit (index ≡ 4 mod 5) is a test digit, the rest train: fixed, whatever the seed. */
const TEST_EVERY = 5;

/** Scaled ink at or above this intensity counts for the box (the faint anti-aliased rim does not). */
const INK_THRESHOLD = 0.5;

let mnistCache: Float32Array[] | null = null;

/** The MNIST samples the `mnist` package ships, per digit: 784 intensities in [0, 1] each. */
function mnistDigits(): Float32Array[] {
  if (mnistCache === null) {
    const require = createRequire(import.meta.url);
    mnistCache = DIGIT_CLASSES.map((digit) => {
      const path = require.resolve(`mnist/src/digits/${digit}.json`);
      const parsed = JSON.parse(readFileSync(path, "utf8")) as { data: number[] };
      return Float32Array.from(parsed.data);
    });
  }
  return mnistCache;
}

/** One MNIST sample: its digit and its index among that digit's samples in the package. */
export interface DigitSample {
  digit: number;
  index: number;
}

/**
 * The MNIST samples of a split: every fifth sample of each digit is held out for "test", the others
 * are "train", so a test image never shows a digit seen in training.
 *
 * @example
 * const train = digitSamples("train");
 * const test = digitSamples("test");
 * train.length + test.length; // 10 000, all the package ships
 */
export function digitSamples(split: Split): DigitSample[] {
  const out: DigitSample[] = [];
  mnistDigits().forEach((data, digit) => {
    const n = data.length / (MNIST_SIDE * MNIST_SIDE);
    for (let index = 0; index < n; index++) {
      if ((index % TEST_EVERY === TEST_EVERY - 1) === (split === "test"))
        out.push({ digit, index });
    }
  });
  return out;
}

/** Bilinear resampling (half-pixel centres, as PyTorch's align_corners=false) of one sample to `size` × `size`. */
function resizeDigit(data: Float32Array, start: number, size: number): Float32Array {
  const out = new Float32Array(size * size);
  const scale = MNIST_SIDE / size;
  const at = (r: number, c: number) =>
    r < 0 || c < 0 || r >= MNIST_SIDE || c >= MNIST_SIDE ? 0 : data[start + r * MNIST_SIDE + c];
  for (let r = 0; r < size; r++) {
    const sy = (r + 0.5) * scale - 0.5;
    const r0 = Math.floor(sy);
    const fy = sy - r0;
    for (let c = 0; c < size; c++) {
      const sx = (c + 0.5) * scale - 0.5;
      const c0 = Math.floor(sx);
      const fx = sx - c0;
      out[r * size + c] =
        (1 - fy) * ((1 - fx) * at(r0, c0) + fx * at(r0, c0 + 1)) +
        fy * ((1 - fx) * at(r0 + 1, c0) + fx * at(r0 + 1, c0 + 1));
    }
  }
  return out;
}

/** The digits dataset also says which MNIST sample each box shows. */
export interface DigitsDataset extends DetectionDataset {
  /** Per image, per box: the MNIST sample drawn there. */
  samples: DigitSample[][];
}

/**
 * Real handwritten digits from the MNIST samples of the `mnist` package (labels 0–9): 1–5 digits
 * per image, each scaled to 14–40 pixels, in tinted ink on a dark noisy background, their squares
 * never overlapping. A box is the tight extent of the pixels whose ink is at least 0.5. The test
 * split uses only held-out samples (see `digitSamples`).
 *
 * @example
 * const { images, annotations } = digitsDataset({ split: "train", count: 2, seed: 0 });
 * images.shape;                   // [2, 3, 96, 96]
 * annotations[0].labels.dtype;    // "int32"
 */
export function digitsDataset(options: DatasetOptions): DigitsDataset {
  const { split, count, seed, imageSize } = checkOptions("digitsDataset", options, 96, 48);
  const digits = mnistDigits();
  const pool = digitSamples(split);
  const plane = imageSize * imageSize;
  const pixels = new Float32Array(count * 3 * plane);
  const annotations: Annotation[] = [];
  const samples: DigitSample[][] = [];
  for (let i = 0; i < count; i++) {
    const gen = streamOf(seed, 100 + SPLIT_STREAM[split], i);
    const offset = i * 3 * plane;
    const level = gen.uniform(0, 0.2);
    for (let p = 0; p < 3 * plane; p++) {
      pixels[offset + p] = Math.min(1, Math.max(0, level + gen.uniform(-0.06, 0.06)));
    }
    const squares: Box[] = [];
    const boxes: Box[] = [];
    const labels: number[] = [];
    const shown: DigitSample[] = [];
    const wanted = integerIn(gen, 1, 5);
    for (let tries = 0; boxes.length < wanted && tries < 100; tries++) {
      const sample = pool[gen.integer(pool.length)];
      const size = integerIn(gen, 14, Math.min(40, imageSize));
      const x = integerIn(gen, 0, imageSize - size);
      const y = integerIn(gen, 0, imageSize - size);
      const square: Box = [x, y, x + size, y + size];
      // One pixel of gap around every square keeps the ink of two digits apart.
      const grown: Box = [x - 1, y - 1, x + size + 1, y + size + 1];
      if (squares.some((s) => intersection(s, grown) > 0)) continue;
      const ink = resizeDigit(digits[sample.digit], sample.index * MNIST_SIDE * MNIST_SIDE, size);
      let x1 = Infinity;
      let y1 = Infinity;
      let x2 = -Infinity;
      let y2 = -Infinity;
      for (let r = 0; r < size; r++) {
        for (let c = 0; c < size; c++) {
          if (ink[r * size + c] < INK_THRESHOLD) continue;
          x1 = Math.min(x1, c);
          y1 = Math.min(y1, r);
          x2 = Math.max(x2, c + 1);
          y2 = Math.max(y2, r + 1);
        }
      }
      if (x1 === Infinity) continue;
      const colour = [gen.uniform(0.7, 1), gen.uniform(0.7, 1), gen.uniform(0.7, 1)];
      for (let r = 0; r < size; r++) {
        for (let c = 0; c < size; c++) {
          const a = ink[r * size + c];
          if (a <= 0) continue;
          const at = offset + (y + r) * imageSize + x + c;
          for (let ch = 0; ch < 3; ch++) {
            const k = at + ch * plane;
            pixels[k] = (1 - a) * pixels[k] + a * colour[ch];
          }
        }
      }
      squares.push(square);
      boxes.push([x + x1, y + y1, x + x2, y + y2]);
      labels.push(sample.digit);
      shown.push(sample);
    }
    annotations.push(annotationOf(boxes, labels));
    samples.push(shown);
  }
  return {
    images: tensor(pixels, { shape: [count, 3, imageSize, imageSize], dtype: "float32" }),
    annotations,
    classNames: DIGIT_CLASSES,
    samples,
  };
}
