import { tensor } from "@focalgrad/core";
import { describe, expect, it } from "vitest";
import {
  digitSamples,
  digitsDataset,
  shapeMask,
  shapesDataset,
} from "../../src/detection/datasets.js";
import { BatchLoader, flipBoxes } from "../../src/detection/loader.js";

describe("shapeMask", () => {
  it("gives the tight box of the painted pixels, worked by hand", () => {
    // A square fills its 8 × 8 square: box [10, 20, 18, 28].
    expect(shapeMask(1, 10, 20, 8).box).toEqual([10, 20, 18, 28]);
    // A disc of diameter 4 at (0, 0): centre (2, 2), radius 2. Pixel centres (c + 0.5, r + 0.5):
    // row 0 has (1.5, 0.5) at distance² 0.25 + 2.25 = 2.5 <= 4 (in) and (0.5, 0.5) at 4.5 (out),
    // so the corners are out and every row and column has a pixel in: box [0, 0, 4, 4].
    const disc = shapeMask(0, 0, 0, 4);
    expect(Array.from(disc.mask)).toEqual([0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0]);
    expect(disc.box).toEqual([0, 0, 4, 4]);
    // A triangle of size 4: apex (2, 0), |x - 2| <= y / 2. Row 0 (y 0.5): |x - 2| <= 0.25, no
    // pixel centre (1.5 and 2.5 are 0.5 away); row 1 (y 1.5): 0.75, columns 1, 2; row 3 (y 3.5):
    // 1.75, columns 1, 2 (0.5 and 3.5 are 1.5 away: in) → columns 0…3. Box [0, 1, 4, 4].
    const triangle = shapeMask(2, 0, 0, 4);
    expect(Array.from(triangle.mask)).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1]);
    expect(triangle.box).toEqual([0, 1, 4, 4]);
  });
});

describe("shapesDataset", { timeout: 60_000 }, () => {
  const data = shapesDataset({ split: "test", count: 16, seed: 3 });

  it("renders images in [0, 1] with 1–4 objects of the 3 classes inside the image", () => {
    expect(data.images.shape).toEqual([16, 3, 64, 64]);
    expect(data.images.dtype).toBe("float32");
    expect(data.images.data.every((v) => v >= 0 && v <= 1)).toBe(true);
    for (const { boxes, labels } of data.annotations) {
      const k = labels.shape[0];
      expect(k).toBeGreaterThanOrEqual(1);
      expect(k).toBeLessThanOrEqual(4);
      expect(boxes.shape).toEqual([k, 4]);
      for (let i = 0; i < k; i++) {
        const [x1, y1, x2, y2] = Array.from(boxes.data.subarray(4 * i, 4 * i + 4));
        expect(labels.data[i]).toBeGreaterThanOrEqual(0);
        expect(labels.data[i]).toBeLessThan(3);
        expect(x1).toBeGreaterThanOrEqual(0);
        expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(64);
        expect(y2).toBeLessThanOrEqual(64);
        expect(Math.max(x2 - x1, y2 - y1)).toBeGreaterThanOrEqual(7);
        expect(Math.max(x2 - x1, y2 - y1)).toBeLessThanOrEqual(32);
      }
    }
  });

  it("paints a square's box exactly: every pixel of the box has the object's colour", () => {
    // Find an unoccluded square (the last object painted) and check its pixels are one colour
    // and that colour differs from its outside neighbour row where there is one.
    let checked = 0;
    data.annotations.forEach(({ boxes, labels }, image) => {
      const last = labels.shape[0] - 1;
      if (labels.data[last] !== 1) return;
      const [x1, y1, x2, y2] = Array.from(boxes.data.subarray(4 * last, 4 * last + 4));
      const at = (ch: number, r: number, c: number) =>
        data.images.data[((image * 3 + ch) * 64 + r) * 64 + c];
      for (let ch = 0; ch < 3; ch++) {
        for (let r = y1; r < y2; r++)
          for (let c = x1; c < x2; c++) expect(at(ch, r, c)).toBe(at(ch, y1, x1));
      }
      checked++;
    });
    expect(checked).toBeGreaterThan(0);
  });

  it("is a function of (seed, split): same seed the same bits, another seed or split other images", () => {
    const again = shapesDataset({ split: "test", count: 16, seed: 3 });
    expect(again.images.data).toEqual(data.images.data);
    expect(again.annotations.map((a) => a.boxes.toArray())).toEqual(
      data.annotations.map((a) => a.boxes.toArray()),
    );
    // The first images of a longer set are the same images.
    expect(shapesDataset({ split: "test", count: 2, seed: 3 }).images.data).toEqual(
      data.images.data.subarray(0, 2 * 3 * 64 * 64),
    );
    expect(shapesDataset({ split: "train", count: 1, seed: 3 }).images.data).not.toEqual(
      data.images.data.subarray(0, 3 * 64 * 64),
    );
    expect(shapesDataset({ split: "test", count: 1, seed: 4 }).images.data).not.toEqual(
      data.images.data.subarray(0, 3 * 64 * 64),
    );
  });

  it("rejects bad options by name", () => {
    expect(() => shapesDataset({ count: 0 })).toThrow(
      /shapesDataset: count must be an integer >= 1, got 0/,
    );
    expect(() => shapesDataset({ count: 1, split: "val" as "train" })).toThrow(
      /split must be "train" or "test"/,
    );
    expect(() => shapesDataset({ count: 1, imageSize: 16 })).toThrow(
      /imageSize must be an integer >= 32/,
    );
  });
});

describe("digitsDataset", { timeout: 60_000 }, () => {
  it("splits the package's 10 000 MNIST samples once: train and test share none", () => {
    const train = digitSamples("train");
    const test = digitSamples("test");
    expect(train.length + test.length).toBe(10000);
    const key = (s: { digit: number; index: number }) => `${s.digit}:${s.index}`;
    const trainKeys = new Set(train.map(key));
    expect(test.some((s) => trainKeys.has(key(s)))).toBe(false);
    // Every fifth sample of each digit (index 4, 9, …) is a test sample.
    expect(test.slice(0, 2)).toEqual([
      { digit: 0, index: 4 },
      { digit: 0, index: 9 },
    ]);
  });

  it("draws test images only from test samples, with labels that match the sample's digit", () => {
    const data = digitsDataset({ split: "test", count: 8, seed: 1 });
    const testKeys = new Set(digitSamples("test").map((s) => `${s.digit}:${s.index}`));
    expect(data.images.shape).toEqual([8, 3, 96, 96]);
    data.samples.forEach((samples, i) => {
      expect(samples.length).toBe(data.annotations[i].labels.shape[0]);
      expect(samples.length).toBeGreaterThanOrEqual(1);
      expect(samples.length).toBeLessThanOrEqual(5);
      samples.forEach((s, k) => {
        expect(testKeys.has(`${s.digit}:${s.index}`)).toBe(true);
        expect(data.annotations[i].labels.data[k]).toBe(s.digit);
      });
    });
  });

  it("has boxes tight around the ink: the box's edge rows and columns hold ink, and it is deterministic", () => {
    const data = digitsDataset({ split: "train", count: 10, seed: 2 });
    const again = digitsDataset({ split: "train", count: 10, seed: 2 });
    expect(again.images.data).toEqual(data.images.data);
    data.annotations.forEach(({ boxes }, image) => {
      for (let k = 0; k < boxes.shape[0]; k++) {
        const [x1, y1, x2, y2] = Array.from(boxes.data.subarray(4 * k, 4 * k + 4));
        expect(x2).toBeGreaterThan(x1);
        expect(y2).toBeGreaterThan(y1);
        // Box ink (>= 0.5) in a colour >= 0.7 gives >= 0.35 in every channel; the background is <= 0.26.
        const brightest = (r0: number, r1: number, c0: number, c1: number) => {
          let m = 0;
          for (let r = r0; r < r1; r++) {
            for (let c = c0; c < c1; c++)
              m = Math.max(m, data.images.data[(image * 3 * 96 + r) * 96 + c]);
          }
          return m;
        };
        expect(brightest(y1, y1 + 1, x1, x2)).toBeGreaterThan(0.3);
        expect(brightest(y2 - 1, y2, x1, x2)).toBeGreaterThan(0.3);
        expect(brightest(y1, y2, x1, x1 + 1)).toBeGreaterThan(0.3);
        expect(brightest(y1, y2, x2 - 1, x2)).toBeGreaterThan(0.3);
      }
    });
  });
});

describe("BatchLoader", { timeout: 60_000 }, () => {
  const data = shapesDataset({ count: 10, seed: 0 });

  it("mirrors boxes exactly", () => {
    // Width 64: x1' = 64 - 10 = 54, x2' = 64 - 2 = 62.
    expect(flipBoxes(tensor([[2, 5, 10, 9]]), 64).toArray()).toEqual([[54, 5, 62, 9]]);
  });

  it("visits every image once per epoch, drops the incomplete batch, and depends only on (seed, step)", () => {
    const loader = new BatchLoader(data, { batchSize: 3, seed: 5, horizontalFlip: true });
    expect(loader.stepsPerEpoch).toBe(3);
    const epoch = [0, 1, 2].flatMap((s) => loader.batch(s).indices);
    expect(new Set(epoch).size).toBe(9);
    const fresh = new BatchLoader(data, { batchSize: 3, seed: 5, horizontalFlip: true });
    // Out of order, from a new loader: the same batch.
    expect(fresh.batch(4).images.data).toEqual(loader.batch(4).images.data);
    expect(fresh.batch(4).flipped).toEqual(loader.batch(4).flipped);
  });

  it("flips the pixels with the boxes: a mirrored image's box holds the mirrored pixels", () => {
    const loader = new BatchLoader(data, { batchSize: 1, seed: 0, horizontalFlip: true });
    let step = 0;
    while (!loader.batch(step).flipped[0]) step++;
    const batch = loader.batch(step);
    const index = batch.indices[0];
    const original = data.images.data;
    for (let r = 0; r < 64; r += 7) {
      for (let c = 0; c < 64; c += 5) {
        expect(batch.images.data[r * 64 + c]).toBe(original[index * 3 * 64 * 64 + r * 64 + 63 - c]);
      }
    }
    expect(batch.annotations[0].boxes.toArray()).toEqual(
      flipBoxes(data.annotations[index].boxes, 64).toArray(),
    );
    expect(batch.annotations[0].labels).toBe(data.annotations[index].labels);
  });

  it("never flips unless asked", () => {
    const loader = new BatchLoader(data, { batchSize: 5, seed: 0 });
    expect([0, 1, 2, 3].every((s) => loader.batch(s).flipped.every((f) => !f))).toBe(true);
    expect(() => new BatchLoader(data, { batchSize: 11 })).toThrow(
      /batchSize must be an integer from 1 to the dataset's 10 images, got 11/,
    );
  });
});
