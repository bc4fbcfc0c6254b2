import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  avgPool2d,
  maxPool2d,
  type Pool2dOptions,
  sum,
  Tensor,
  tensor,
  upsampleNearest2d,
  zeros,
} from "../src/index.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../src/testing/index.js";
import { describeOnBackends } from "./backends.js";

/** Tensors whose values are all distinct and at least 0.05 apart, so no window has a tie. */
function distinctTensor(shape: number[]): fc.Arbitrary<Tensor> {
  const n = shape.reduce((a, b) => a * b, 1);
  return fc
    .shuffledSubarray(
      Array.from({ length: 4 * n }, (_, i) => i),
      { minLength: n, maxLength: n },
    )
    .map(
      (picks) =>
        new Tensor(
          Float64Array.from(picks, (v) => v * 0.05 - n * 0.1),
          shape,
          "float64",
        ),
    );
}

const poolCase = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    channels: fc.integer({ min: 1, max: 2 }),
    height: fc.integer({ min: 2, max: 5 }),
    width: fc.integer({ min: 2, max: 5 }),
    kernel: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 })),
    stride: fc.option(fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })), {
      nil: undefined,
    }),
    padding: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 1 })),
  })
  .filter(
    (c) =>
      2 * c.padding[0] <= c.kernel[0] &&
      2 * c.padding[1] <= c.kernel[1] &&
      c.kernel[0] <= c.height &&
      c.kernel[1] <= c.width,
  );

function optionsOf(c: PoolCase): Pool2dOptions {
  return { kernelSize: c.kernel, stride: c.stride, padding: c.padding };
}
type PoolCase = {
  batch: number;
  channels: number;
  height: number;
  width: number;
  kernel: [number, number];
  stride: [number, number] | undefined;
  padding: [number, number];
};

/** Every window of the reference: its input coordinates, clipped to the image. */
function windows(c: PoolCase, visit: (plane: number, cells: number[], o: number) => void): void {
  const [kh, kw] = c.kernel;
  const [sh, sw] = c.stride ?? c.kernel;
  const [ph, pw] = c.padding;
  const oh = Math.floor((c.height + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((c.width + 2 * pw - kw) / sw) + 1;
  let o = 0;
  for (let p = 0; p < c.batch * c.channels; p++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        const cells: number[] = [];
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const y = oy * sh - ph + ky;
            const x = ox * sw - pw + kx;
            if (y >= 0 && y < c.height && x >= 0 && x < c.width)
              cells.push(p * c.height * c.width + y * c.width + x);
          }
        visit(p, cells, o++);
      }
}

const withInput = poolCase.chain((c) =>
  fc.tuple(fc.constant(c as PoolCase), distinctTensor([c.batch, c.channels, c.height, c.width])),
);

describeOnBackends("maxPool2d", () => {
  it("takes the maximum of each window (padding never wins)", () => {
    fc.assert(
      fc.property(withInput, ([c, x]) => {
        const out = maxPool2d(x, optionsOf(c));
        windows(c, (_, cells, o) => {
          expect(out.data[o]).toBe(Math.max(...cells.map((i) => x.data[i])));
        });
      }),
      { numRuns: 150 },
    );
  });

  it("has the right first and second derivatives away from ties", () => {
    fc.assert(
      fc.property(withInput, ([c, x]) => {
        assertGradcheck((a) => maxPool2d(a, optionsOf(c)), [x]);
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(withInput, ([c, x]) => {
        assertGradgradcheck((a) => maxPool2d(a, optionsOf(c)), [x]);
      }),
      { numRuns: 40 },
    );
  });

  it("gives a tie's whole gradient to the first maximum in row-major window order", () => {
    // Every element is 1: the window's winner is its top-left element, which gets the gradient 1.
    const x = tensor(
      [
        [
          [
            [1, 1, 1, 1],
            [1, 1, 1, 1],
          ],
        ],
      ],
      { requiresGrad: true },
    );
    sum(maxPool2d(x, { kernelSize: 2 })).backward();
    expect(x.grad?.toArray()).toEqual([
      [
        [
          [1, 0, 1, 0],
          [0, 0, 0, 0],
        ],
      ],
    ]);
  });

  it("sends gradient to an element once per overlapping window it wins", () => {
    // 3 × 3 windows with stride 1 over a 3 × 4 image whose maximum 9 is in both windows.
    const x = tensor(
      [
        [
          [
            [0, 1, 2, 0],
            [3, 9, 4, 5],
            [6, 7, 8, 0],
          ],
        ],
      ],
      { requiresGrad: true },
    );
    const out = maxPool2d(x, { kernelSize: 3, stride: 1 });
    expect(out.toArray()).toEqual([[[[9, 9]]]]);
    sum(out).backward();
    expect(x.grad?.data[5]).toBe(2);
  });

  it("rejects padding over half the window, a missing kernelSize and non-NCHW input", () => {
    expect(() => maxPool2d(zeros([1, 1, 4, 4]), { kernelSize: 2, padding: 2 })).toThrow(
      "maxPool2d: padding [2, 2] must be at most half of kernelSize [2, 2]",
    );
    expect(() => maxPool2d(zeros([1, 1, 4, 4]), {} as Pool2dOptions)).toThrow(
      "maxPool2d: options.kernelSize is required",
    );
    expect(() => maxPool2d(zeros([4, 4]), { kernelSize: 2 })).toThrow(
      "maxPool2d: x must have rank 4 [batch, channels, height, width] (NCHW), got shape [4, 4]",
    );
    expect(() => maxPool2d(zeros([1, 1, 4, 4]), { kernelSize: 0 })).toThrow(
      "maxPool2d: kernelSize must be an integer >= 1 or a pair [h, w] of them, got 0",
    );
    expect(() => maxPool2d(zeros([1, 1, 2, 2]), { kernelSize: 3 })).toThrow(
      "maxPool2d: kernelSize [3, 3] is larger than the padded input [2, 2] of x with shape [1, 1, 2, 2]",
    );
  });
});

describeOnBackends("avgPool2d", () => {
  it("averages each window, counting padding as zeros", () => {
    fc.assert(
      fc.property(withInput, ([c, x]) => {
        const out = avgPool2d(x, optionsOf(c));
        const area = c.kernel[0] * c.kernel[1];
        windows(c, (_, cells, o) => {
          const total = cells.reduce((s, i) => s + x.data[i], 0);
          expect(out.data[o]).toBeCloseTo(total / area, 12);
        });
      }),
      { numRuns: 100 },
    );
    // Four padded 2 × 2 windows (stride 1) each see the 4 of [[4]] and three zeros: 4 / 4 = 1.
    expect(
      avgPool2d(tensor([[[[4]]]]), { kernelSize: 2, stride: 1, padding: 1 }).toArray(),
    ).toEqual([
      [
        [
          [1, 1],
          [1, 1],
        ],
      ],
    ]);
  });

  it("has the right first and second derivatives", () => {
    fc.assert(
      fc.property(
        poolCase.chain((c) =>
          fc.tuple(
            fc.constant(c as PoolCase),
            floatTensor([c.batch, c.channels, c.height, c.width]),
          ),
        ),
        ([c, x]) => {
          assertGradcheck((a) => avgPool2d(a, optionsOf(c)), [x]);
          assertGradgradcheck((a) => avgPool2d(a, optionsOf(c)), [x]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("rejects bad strides", () => {
    expect(() => avgPool2d(zeros([1, 1, 4, 4]), { kernelSize: 2, stride: [1, 0] })).toThrow(
      "avgPool2d: stride must be an integer >= 1 or a pair [h, w] of them, got [1, 0]",
    );
  });
});

describe("upsampleNearest2d", () => {
  it("repeats each pixel into a block", () => {
    expect(
      upsampleNearest2d(tensor([[[[1, 2]], [[3, 4]]]]), { scaleFactor: [2, 1] }).toArray(),
    ).toEqual([
      [
        [
          [1, 2],
          [1, 2],
        ],
        [
          [3, 4],
          [3, 4],
        ],
      ],
    ]);
  });

  it("has the right first and second derivatives (the gradient sums each block)", () => {
    fc.assert(
      fc.property(
        floatTensor(
          fc.tuple(
            fc.integer({ min: 1, max: 2 }),
            fc.integer({ min: 1, max: 2 }),
            fc.integer({ min: 1, max: 3 }),
            fc.integer({ min: 1, max: 3 }),
          ),
        ),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }),
        (x, sh, sw) => {
          assertGradcheck((a) => upsampleNearest2d(a, { scaleFactor: [sh, sw] }), [x]);
          assertGradgradcheck((a) => upsampleNearest2d(a, { scaleFactor: [sh, sw] }), [x]);
        },
      ),
      { numRuns: 100 },
    );
    // d/dx sum(upsample(x, 2)) = 4 everywhere: each pixel is copied four times.
    const x = tensor([[[[1, 2]]]], { requiresGrad: true });
    sum(upsampleNearest2d(x, { scaleFactor: 2 })).backward();
    expect(x.grad?.toArray()).toEqual([[[[4, 4]]]]);
  });

  it("rejects fractional scale factors and a missing option", () => {
    expect(() => upsampleNearest2d(zeros([1, 1, 2, 2]), { scaleFactor: 1.5 })).toThrow(
      "upsampleNearest2d: scaleFactor must be an integer >= 1 or a pair [h, w] of them, got 1.5",
    );
    expect(() => upsampleNearest2d(zeros([1, 1, 2, 2]), {} as { scaleFactor: 2 })).toThrow(
      "upsampleNearest2d: options.scaleFactor is required",
    );
  });
});
