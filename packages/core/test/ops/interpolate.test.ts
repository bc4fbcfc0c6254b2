/** Tests of ops/interpolate.ts: nearest and bilinear resizing, PyTorch's index rules, gradients. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { interpolate, type Tensor, tensor } from "../../src/index.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../../src/testing/index.js";

const row = (values: number[]) => tensor([[[values]]], { dtype: "float64" }); // [1, 1, 1, W]
const flat = (t: Tensor) => (t.toArray() as number[][][][])[0][0][0];
const close = (actual: number[], expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, v] of actual.entries()) expect(v).toBeCloseTo(expected[i], 14);
};

describe("interpolate", () => {
  it("nearest copies pixel floor(i · in / out)", () => {
    const x = tensor([
      [
        [
          [1, 2],
          [3, 4],
        ],
      ],
    ]);
    expect(interpolate(x, { scaleFactor: 2 }).toArray()).toEqual([
      [
        [
          [1, 1, 2, 2],
          [1, 1, 2, 2],
          [3, 3, 4, 4],
          [3, 3, 4, 4],
        ],
      ],
    ]);
    // 3 → 2 columns: floor(0 · 1.5) = 0, floor(1 · 1.5) = 1.
    expect(flat(interpolate(row([5, 6, 7]), { size: [1, 2] }))).toEqual([5, 6]);
  });

  it("bilinear (alignCorners false) samples (i + 0.5) · in / out − 0.5, clamped at the border", () => {
    // W 2 → 4, ratio 0.5: sources −0.25 → 0, 0.25, 0.75, 1.25 → 1 (clamped at the last pixel):
    // 1, 1 + 0.25 · 2, 1 + 0.75 · 2, 3.
    close(flat(interpolate(row([1, 3]), { size: [1, 4], mode: "bilinear" })), [1, 1.5, 2.5, 3]);
    // alignCorners: sources 0, 1/3, 2/3, 1.
    close(flat(interpolate(row([1, 3]), { size: [1, 4], mode: "bilinear", alignCorners: true })), [
      1,
      1 + 2 / 3,
      1 + 4 / 3,
      3,
    ]);
  });

  it("uses 1 / scaleFactor as the ratio when a factor is given, as PyTorch", () => {
    // W 3, factor 1.5 → 4 columns, ratio 2/3: sources −1/6 → 0, 0.5, 7/6, 11/6 on values 0, 1, 2.
    const x = row([0, 1, 2]);
    close(flat(interpolate(x, { scaleFactor: 1.5, mode: "bilinear" })), [0, 0.5, 7 / 6, 11 / 6]);
    // The same output size given as a size has ratio 3/4: sources 0, 0.625, 1.375, 2.125 → 2.
    close(flat(interpolate(x, { size: [1, 4], mode: "bilinear" })), [0, 0.625, 1.375, 2]);
  });

  it("interpolates both axes: the centre of a 2 × 2 grid upsampled to 3 × 3 with corners aligned", () => {
    const x = tensor(
      [
        [
          [
            [0, 2],
            [4, 6],
          ],
        ],
      ],
      { dtype: "float64" },
    );
    const y = interpolate(x, { size: 3, mode: "bilinear", alignCorners: true }).toArray();
    // Centre (0.5, 0.5): the mean of 0, 2, 4, 6 = 3; edge midpoints 1, 2, 4, 5.
    expect(y).toEqual([
      [
        [
          [0, 1, 2],
          [2, 3, 4],
          [4, 5, 6],
        ],
      ],
    ]);
  });

  it.each(["nearest", "bilinear"] as const)(
    "%s has gradients that match finite differences",
    (mode) => {
      fc.assert(
        fc.property(
          floatTensor([1, 2, 3, 2]),
          fc.constantFrom<[number, number]>([2, 5], [5, 3], [4, 4]),
          (x, size) => {
            const f = (t: Tensor) => interpolate(t, { size, mode });
            assertGradcheck(f, [x]);
            assertGradgradcheck(f, [x]);
          },
        ),
        { numRuns: 15 },
      );
    },
  );

  it("names the problem for bad options", () => {
    const x = row([1, 2]);
    expect(() => interpolate(x, { size: [1, 2], scaleFactor: 2 })).toThrow(
      "interpolate: give exactly one of size and scaleFactor",
    );
    expect(() => interpolate(x, {})).toThrow(
      "interpolate: give exactly one of size and scaleFactor",
    );
    expect(() => interpolate(x, { scaleFactor: 0.2 })).toThrow(
      "interpolate: scaleFactor [0.2, 0.2] makes an empty output from 1 × 2",
    );
    expect(() => interpolate(x, { scaleFactor: -1 })).toThrow(
      "interpolate: scaleFactor must be a finite number > 0 (height), got -1",
    );
    expect(() => interpolate(x, { size: 2, alignCorners: true })).toThrow(
      'interpolate: alignCorners applies to mode "bilinear" only',
    );
    expect(() => interpolate(x, { size: 2, mode: "bicubic" as never })).toThrow(
      'interpolate: mode must be "nearest" or "bilinear", got "bicubic"',
    );
    expect(() => interpolate(tensor([1, 2]), { size: 2 })).toThrow(
      /^interpolate: x must have rank 4/,
    );
    expect(() => interpolate(x, { size: [0, 2] })).toThrow(
      /^interpolate: size must be an integer >= 1/,
    );
  });
});
