import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AnchorConfig, anchorLevels, anchorsFor, anchorsPerLocation } from "../src/index.js";

const S2 = Math.SQRT2;

/** Rows of an [N, 4] tensor as plain arrays. */
const rows = (data: ArrayLike<number>) => {
  const out: number[][] = [];
  for (let i = 0; i < data.length; i += 4)
    out.push([data[i], data[i + 1], data[i + 2], data[i + 3]]);
  return out;
};

describe("anchorsFor, keras-retinanet convention: one level worked by hand", () => {
  it("size 16, stride 8, ratios 0.5 / 1 / 2, scales 1 / 2 on a 16 × 16 image", () => {
    // generate_anchors: side = 16 · scale, area = side², w = sqrt(area / ratio), h = w · ratio.
    //   ratio 0.5, side 16: w = sqrt(512) = 16√2, h = 8√2  -> half-extents (8√2, 4√2)
    //   ratio 0.5, side 32: w = sqrt(2048) = 32√2, h = 16√2 -> (16√2, 8√2)
    //   ratio 1,   side 16: 16 × 16 -> (8, 8);  side 32: (16, 16)
    //   ratio 2,   side 16: w = sqrt(128) = 8√2, h = 16√2 -> (4√2, 8√2)
    //   ratio 2,   side 32: w = sqrt(512) = 16√2, h = 32√2 -> (8√2, 16√2)
    // (√2 times a power of two is exact scaling of the double nearest √2, so these are exact.)
    // Grid ceil(16 / 8) = 2 × 2, centres (i + 0.5) · 8 = 4 and 12, rows top to bottom, each
    // left to right, the 6 anchors of a position together (ratio-major).
    const halves = [
      [8 * S2, 4 * S2],
      [16 * S2, 8 * S2],
      [8, 8],
      [16, 16],
      [4 * S2, 8 * S2],
      [8 * S2, 16 * S2],
    ];
    const expected: number[][] = [];
    for (const cy of [4, 12]) {
      for (const cx of [4, 12]) {
        for (const [hw, hh] of halves) expected.push([cx - hw, cy - hh, cx + hw, cy + hh]);
      }
    }
    const anchors = anchorsFor([16, 16], {
      levels: [3],
      sizes: [16],
      strides: [8],
      ratios: [0.5, 1, 2],
      scales: [1, 2],
      dtype: "float64",
    });
    expect(anchors.shape).toEqual([24, 4]);
    expect(anchors.dtype).toBe("float64");
    expect(rows(anchors.data)).toEqual(expected);
  });

  it("the default scales 2^(1/3), 2^(2/3) at one P3 position", () => {
    // size 32, ratio 1: w = h = 32 · 2^(1/3) = 40.31747359663594, 32 · 2^(2/3) = 50.79683366298238;
    // ratio 0.5, scale 2^(1/3): w = 40.3174… · √2 = 57.01751796098172, h = w / 2 = 28.50875898049086.
    // Centre (4, 4) on an 8 × 8 image (one position).
    const a = rows(anchorsFor([8, 8], { levels: [3], dtype: "float64" }).data);
    expect(a).toHaveLength(9);
    const ratio1scale1 = a[4];
    expect(ratio1scale1[0]).toBeCloseTo(4 - 40.31747359663594 / 2, 12);
    expect(ratio1scale1[2]).toBeCloseTo(4 + 40.31747359663594 / 2, 12);
    const ratio1scale2 = a[5];
    expect(ratio1scale2[3]).toBeCloseTo(4 + 50.79683366298238 / 2, 12);
    const ratioHalfScale1 = a[1];
    expect(ratioHalfScale1[0]).toBeCloseTo(4 - 57.01751796098172 / 2, 12);
    expect(ratioHalfScale1[1]).toBeCloseTo(4 - 28.50875898049086 / 2, 12);
    expect(a[0]).toEqual([4 - 16 * S2, 4 - 8 * S2, 4 + 16 * S2, 4 + 8 * S2]);
  });

  it("the default pyramid P3–P7 and P3–P5 only", () => {
    // 64 × 64: grids 8², 4², 2², 1², 1² -> 86 positions · 9 = 774 anchors; P3–P5: 84 · 9 = 756.
    expect(anchorsFor([64, 64]).shape).toEqual([774, 4]);
    expect(anchorsFor([64, 64], { levels: [3, 4, 5] }).shape).toEqual([756, 4]);
    // 100 × 60 on P3: ceil(100 / 8) = 13 rows, ceil(60 / 8) = 8 columns.
    const [p3] = anchorLevels([100, 60], { levels: [3] });
    expect(p3.featureShape).toEqual([13, 8]);
    expect(p3.count).toBe(13 * 8 * 9);
  });

  it("float32 anchors are the float64 ones rounded once", () => {
    const f64 = anchorsFor([40, 56], { levels: [3, 4], dtype: "float64" }).data;
    const f32 = anchorsFor([40, 56], { levels: [3, 4] }).data;
    expect(f32).toBeInstanceOf(Float32Array);
    expect(Array.from(f32)).toEqual(Array.from(f64, Math.fround));
  });
});

describe("anchorsFor, torchvision convention", () => {
  it("RetinaNet's P3 cell anchors, worked by hand", () => {
    // Sizes int(32 · 2^(k/3)) = 32, 40, 50. In float32: sqrt(0.5) = 0.70710677, 1 / it = 1.4142135.
    //   ratio 0.5: w = 1.4142135 · s, h = 0.70710677 · s; half-extents rounded:
    //     s = 32: 22.627 -> 23, 11.314 -> 11;  s = 40: 28.284 -> 28, 14.142 -> 14;
    //     s = 50: 35.355 -> 35, 17.678 -> 18
    //   ratio 1: 16, 20, 25;  ratio 2: the ratio-0.5 extents swapped.
    // Centres at i · stride: an 8 × 8 image has one position, at (0, 0).
    const a = anchorsFor([8, 8], { levels: [3], convention: "torchvision" });
    expect(a.toArray()).toEqual([
      [-23, -11, 23, 11],
      [-28, -14, 28, 14],
      [-35, -18, 35, 18],
      [-16, -16, 16, 16],
      [-20, -20, 20, 20],
      [-25, -25, 25, 25],
      [-11, -23, 11, 23],
      [-14, -28, 14, 28],
      [-18, -35, 18, 35],
    ]);
  });

  it("half-extents at exactly .5 round half to even, as torch.round", () => {
    // size 41: 41 / 2 = 20.5 -> 20; size 43: 21.5 -> 22. Centre (0, 0).
    const opts = { levels: [3], ratios: [1], scales: [1], convention: "torchvision" as const };
    expect(anchorsFor([8, 8], { ...opts, sizes: [41] }).toArray()).toEqual([[-20, -20, 20, 20]]);
    expect(anchorsFor([8, 8], { ...opts, sizes: [43], dtype: "float64" }).toArray()).toEqual([
      [-22, -22, 22, 22],
    ]);
  });

  it("centres at i · stride, the stride derived from the image and grid as torchvision does", () => {
    // 16 × 24 image, stride 8: grid 2 × 3, stride [16 / 2, 24 / 3] = [8, 8]; base [-16, -16, 16, 16].
    const a = anchorsFor([16, 24], {
      levels: [3],
      ratios: [1],
      scales: [1],
      convention: "torchvision",
    });
    expect(a.toArray()).toEqual([
      [-16, -16, 16, 16],
      [-8, -16, 24, 16],
      [0, -16, 32, 16],
      [-16, -8, 16, 24],
      [-8, -8, 24, 24],
      [0, -8, 32, 24],
    ]);
    // 100 × 100 at stride 8: grid ceil(100 / 8) = 13, stride floor(100 / 13) = 7; the last centre is 12 · 7 = 84.
    const [level] = anchorLevels([100, 100], {
      levels: [3],
      ratios: [1],
      scales: [1],
      convention: "torchvision",
    });
    expect(level.stride).toEqual([7, 7]);
    const last = rows(level.anchors.data).at(-1);
    expect(last).toEqual([84 - 16, 84 - 16, 84 + 16, 84 + 16]);
  });
});

describe("anchorLevels", () => {
  it("levels in order, offsets and counts adding up to anchorsFor's rows", () => {
    const config = { levels: [3, 4, 5] };
    const levels = anchorLevels([64, 48], config);
    const all = anchorsFor([64, 48], config);
    // P3: 8 × 6, P4: 4 × 3, P5: 2 × 2 positions, 9 anchors each.
    expect(levels.map((l) => l.featureShape)).toEqual([
      [8, 6],
      [4, 3],
      [2, 2],
    ]);
    expect(levels.map((l) => l.count)).toEqual([432, 108, 36]);
    expect(levels.map((l) => l.offset)).toEqual([0, 432, 540]);
    expect(levels.map((l) => [l.level, l.size, l.stride[0]])).toEqual([
      [3, 32, 8],
      [4, 64, 16],
      [5, 128, 32],
    ]);
    expect(all.shape[0]).toBe(576);
    for (const l of levels) {
      expect(l.anchorsPerLocation).toBe(9);
      expect(Array.from(l.anchors.data)).toEqual(
        Array.from(all.data.subarray(l.offset * 4, (l.offset + l.count) * 4)),
      );
    }
  });

  it("featureShapes override the grid", () => {
    const levels = anchorLevels([64, 64], {
      levels: [3, 4],
      featureShapes: [
        [7, 7],
        [3, 5],
      ],
    });
    expect(levels.map((l) => l.count)).toEqual([7 * 7 * 9, 3 * 5 * 9]);
  });

  it("every anchor of a level has the centre of its position (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 1, max: 80 }),
        fc.constantFrom("keras-retinanet" as const, "torchvision" as const),
        (h, w, convention) => {
          for (const l of anchorLevels([h, w], { levels: [3, 4], convention, dtype: "float64" })) {
            const [gh, gw] = l.featureShape;
            const offset = convention === "torchvision" ? 0 : 0.5;
            const a = l.anchors.data;
            for (let row = 0; row < l.count; row++) {
              const position = Math.floor(row / l.anchorsPerLocation);
              const cx = ((position % gw) + offset) * l.stride[1];
              const cy = (Math.floor(position / gw) + offset) * l.stride[0];
              expect((a[row * 4] + a[row * 4 + 2]) / 2).toBeCloseTo(cx, 9);
              expect((a[row * 4 + 1] + a[row * 4 + 3]) / 2).toBeCloseTo(cy, 9);
            }
            expect(l.count).toBe(gh * gw * 9);
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe("anchorsPerLocation", () => {
  it("ratios × scales", () => {
    expect(anchorsPerLocation()).toBe(9);
    expect(anchorsPerLocation({ ratios: [1], scales: [1, 2] })).toBe(2);
  });
});

describe("anchor validation", () => {
  it("names the argument, what was given and what was expected", () => {
    expect(() => anchorsFor([0, 8])).toThrow(
      /anchorsFor: imageShape must be \[height, width\], two integers > 0, got \[0,8\]/,
    );
    expect(() => anchorsFor([8, 8, 3] as unknown as [number, number])).toThrow(/imageShape/);
    expect(() => anchorsFor([8, 8], { levels: [] })).toThrow(
      /levels must be a non-empty array of integers >= 0, got \[\]/,
    );
    expect(() => anchorsFor([8, 8], { levels: [3, 3] })).toThrow(/levels must be distinct/);
    expect(() => anchorsFor([8, 8], { levels: [3, 4], sizes: [32] })).toThrow(
      /sizes must be an array of 2 \(one per level\) of finite numbers > 0, got \[32\]/,
    );
    expect(() => anchorsFor([8, 8], { strides: [8, 16, 32, 64, 0] })).toThrow(/strides/);
    expect(() => anchorsFor([8, 8], { ratios: [1, -2] })).toThrow(
      /ratios must be a non-empty array of finite numbers > 0/,
    );
    expect(() => anchorsFor([8, 8], { scales: [Number.NaN] })).toThrow(/scales/);
    expect(() => anchorsFor([8, 8], { convention: "detectron" as "torchvision" })).toThrow(
      /convention must be "keras-retinanet" or "torchvision", got "detectron"/,
    );
    expect(() => anchorsFor([8, 8], { levels: [3], featureShapes: [] })).toThrow(
      /featureShapes must be an array of 1 \[height, width\] pairs/,
    );
    expect(() => anchorsFor([8, 8], { levels: [3], featureShapes: [[1, 0]] })).toThrow(
      /featureShapes\[0\]/,
    );
    expect(() => anchorsFor([8, 8], { dtype: "int32" as "float32" })).toThrow(
      /dtype must be "float32" or "float64"/,
    );
    expect(() => anchorLevels([8, 8], null as unknown as AnchorConfig)).toThrow(
      /anchorLevels: config must be an object/,
    );
    expect(() => anchorsPerLocation({ ratios: [] })).toThrow(/anchorsPerLocation: ratios/);
  });
});
