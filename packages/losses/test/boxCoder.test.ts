import { grad, mul, sum, type Tensor, tensor } from "@focalgrad/core";
import { assertGradcheck, assertGradgradcheck } from "@focalgrad/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { centerBoxCoder, cornerBoxCoder } from "../src/index.js";
import { f64 } from "./helpers.js";

/** Boxes [n, 4] with x2 - x1 and y2 - y1 in [1, 40], as float64. */
const boxes = (n: number) =>
  fc
    .array(
      fc.tuple(
        fc.double({ min: -50, max: 50, noNaN: true }),
        fc.double({ min: -50, max: 50, noNaN: true }),
        fc.double({ min: 1, max: 40, noNaN: true }),
        fc.double({ min: 1, max: 40, noNaN: true }),
      ),
      { minLength: n, maxLength: n },
    )
    .map((b) =>
      f64(
        b.flatMap(([x, y, w, h]) => [x, y, x + w, y + h]),
        [n, 4],
      ),
    );

const deltas = (shape: number[], bound: number) =>
  fc
    .array(fc.double({ min: -bound, max: bound, noNaN: true }), {
      minLength: shape.reduce((a, b) => a * b, 1),
      maxLength: shape.reduce((a, b) => a * b, 1),
    })
    .map((d) => f64(d, shape));

const expectClose = (actual: Tensor, expected: number[], digits = 12) => {
  expect(actual.size).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(actual.data[i]).toBeCloseTo(e, digits);
  });
};

const coders = [
  ["cornerBoxCoder", cornerBoxCoder()],
  [
    "cornerBoxCoder (mean, std)",
    cornerBoxCoder({ mean: [0.1, -0.1, 0, 0.2], std: [0.1, 0.2, 0.3, 0.4] }),
  ],
  ["centerBoxCoder", centerBoxCoder()],
  ["centerBoxCoder (10, 10, 5, 5)", centerBoxCoder({ weights: [10, 10, 5, 5] })],
] as const;

describe("cornerBoxCoder: exact values worked out by hand", () => {
  // anchor [0, 0, 10, 20]: w = 10, h = 20; box [1, 2, 13, 18].
  // offsets: (1 - 0) / 10 = 0.1, (2 - 0) / 20 = 0.1, (13 - 10) / 10 = 0.3, (18 - 20) / 20 = -0.1
  const anchor = f64([[0, 0, 10, 20]]);
  const box = f64([[1, 2, 13, 18]]);

  it("keras-retinanet's defaults: mean 0, std 0.2", () => {
    // / 0.2: [0.5, 0.5, 1.5, -0.5]
    const coder = cornerBoxCoder();
    expectClose(coder.encode(anchor, box), [0.5, 0.5, 1.5, -0.5]);
    // decode: anchor + d · 0.2 · [w, h, w, h] = [0 + 1, 0 + 2, 10 + 3, 20 - 2]
    expectClose(coder.decode(anchor, f64([[0.5, 0.5, 1.5, -0.5]])), [1, 2, 13, 18]);
  });

  it("a mean and a std per coordinate", () => {
    // (0.1 - 0.1) / 0.1 = 0, (0.1 + 0.1) / 0.2 = 1, (0.3 - 0) / 0.3 = 1, (-0.1 - 0.2) / 0.4 = -0.75
    const coder = cornerBoxCoder({ mean: [0.1, -0.1, 0, 0.2], std: [0.1, 0.2, 0.3, 0.4] });
    expectClose(coder.encode(anchor, box), [0, 1, 1, -0.75]);
    // decode [1, 1, 1, 1]: offsets 1 · std + mean = [0.2, 0.1, 0.3, 0.6] · [10, 20, 10, 20]
    //   -> [0 + 2, 0 + 2, 10 + 3, 20 + 12]
    expectClose(coder.decode(anchor, f64([[1, 1, 1, 1]])), [2, 2, 13, 32]);
  });

  it("anchors [N, 4] broadcast against deltas [B, N, 4]", () => {
    const anchors = f64([
      [0, 0, 10, 20],
      [10, 10, 14, 12],
    ]);
    // image 0: zero deltas give the anchors; image 1: d = 1 moves each corner by 0.2 · size:
    //   anchor 0: [2, 4, 12, 24]; anchor 1 (w 4, h 2): [10.8, 10.4, 14.8, 12.4]
    const d = f64([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [2, 2, 4]);
    const decoded = cornerBoxCoder().decode(anchors, d);
    expect(decoded.shape).toEqual([2, 2, 4]);
    expectClose(decoded, [0, 0, 10, 20, 10, 10, 14, 12, 2, 4, 12, 24, 10.8, 10.4, 14.8, 12.4]);
  });

  it("decode keeps the dtype of the deltas", () => {
    const decoded = cornerBoxCoder().decode(anchor, tensor([[0.5, 0.5, 1.5, -0.5]]));
    expect(decoded.dtype).toBe("float32");
    expect(Array.from(decoded.data)).toEqual([1, 2, 13, 18].map(Math.fround));
  });
});

describe("centerBoxCoder: exact values worked out by hand", () => {
  // anchor [0, 0, 10, 20]: w 10, h 20, centre (5, 10); box [1, 2, 13, 18]: w 12, h 16, centre (7, 10).
  // dx = (7 - 5) / 10 = 0.2, dy = 0 / 20 = 0, dw = log(12 / 10) = log 1.2, dh = log(16 / 20) = log 0.8.
  const anchor = f64([[0, 0, 10, 20]]);
  const box = f64([[1, 2, 13, 18]]);

  it("weights (1, 1, 1, 1): torchvision's default and RetinaNet's", () => {
    const coder = centerBoxCoder();
    expectClose(coder.encode(anchor, box), [0.2, 0, Math.log(1.2), Math.log(0.8)]);
    expectClose(
      coder.decode(anchor, f64([[0.2, 0, Math.log(1.2), Math.log(0.8)]])),
      [1, 2, 13, 18],
    );
  });

  it("weights (10, 10, 5, 5)", () => {
    // [10 · 0.2, 10 · 0, 5 log 1.2, 5 log 0.8] = [2, 0, 0.9116077…, -1.1157177…]
    const coder = centerBoxCoder({ weights: [10, 10, 5, 5] });
    expectClose(coder.encode(anchor, box), [2, 0, 5 * Math.log(1.2), 5 * Math.log(0.8)]);
    expectClose(
      coder.decode(anchor, f64([[2, 0, 5 * Math.log(1.2), 5 * Math.log(0.8)]])),
      [1, 2, 13, 18],
    );
  });

  it("decode clamps dw and dh at log(1000 / 16); the gradient is 0 above it and passes at it", () => {
    // dw = 10 > log 62.5 = 4.135…: w = 62.5 · 10 = 625 around cx = 5 -> x from -307.5 to 317.5;
    // dh = 0: the anchor's own y extent.
    const coder = centerBoxCoder();
    expectClose(coder.decode(anchor, f64([[0, 0, 10, 0]])), [-307.5, 0, 317.5, 20], 9);
    // d x2 / d dw = 0.5 · exp(dw) · w where dw is not clamped, 0 where it is.
    const x2 = (d: Tensor) => sum(mul(coder.decode(anchor, d), f64([0, 0, 1, 0])));
    expect(grad(x2)(f64([[0, 0, 10, 0]])).data[2]).toBe(0);
    const atClip = grad(x2)(f64([[0, 0, Math.log(1000 / 16), 0]])).data[2];
    // at the clamp exactly: 0.5 · 62.5 · 10 = 312.5
    expect(atClip).toBeCloseTo(312.5, 9);
  });

  it("a custom clip, and Infinity to turn it off", () => {
    // clip 0: any dw >= 0 gives the anchor's width; clip Infinity: dw = 1 gives e · 10 around 5.
    expectClose(centerBoxCoder({ clip: 0 }).decode(anchor, f64([[0, 0, 3, 0]])), [0, 0, 10, 20]);
    const e = Math.E;
    expectClose(
      centerBoxCoder({ clip: Number.POSITIVE_INFINITY }).decode(anchor, f64([[0, 0, 1, 0]])),
      [5 - 5 * e, 0, 5 + 5 * e, 20],
    );
  });
});

describe("box coders: properties", () => {
  for (const [name, coder] of coders) {
    it(`${name}: decode(encode(boxes)) = boxes and encode(decode(deltas)) = deltas`, () => {
      fc.assert(
        fc.property(
          fc
            .integer({ min: 1, max: 5 })
            .chain((n) => fc.tuple(boxes(n), boxes(n), deltas([n, 4], 2))),
          ([anchors, targets, d]) => {
            const there = coder.decode(anchors, coder.encode(anchors, targets));
            for (let i = 0; i < targets.size; i++)
              expect(there.data[i]).toBeCloseTo(targets.data[i], 8);
            const back = coder.encode(anchors, coder.decode(anchors, d));
            for (let i = 0; i < d.size; i++) expect(back.data[i]).toBeCloseTo(d.data[i], 8);
          },
        ),
        { numRuns: 100 },
      );
    });

    it(`${name}: decode's gradients (deltas and anchors) match central differences`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 2 }).chain((n) => fc.tuple(boxes(n), deltas([2, n, 4], 2))),
          ([anchors, d]) => {
            assertGradcheck((a, x) => coder.decode(a, x), [anchors, d]);
          },
        ),
        { numRuns: 30 },
      );
    });

    it(`${name}: decode's second derivatives match central differences`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 2 }).chain((n) => fc.tuple(boxes(n), deltas([n, 4], 2))),
          ([anchors, d]) => {
            assertGradgradcheck((a, x) => coder.decode(a, x), [anchors, d]);
          },
        ),
        { numRuns: 8 },
      );
    });
  }

  it("centerBoxCoder encode is differentiable too (boxes and anchors)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(boxes(n), boxes(n))),
        ([anchors, targets]) => {
          assertGradcheck((a, b) => centerBoxCoder().encode(a, b), [anchors, targets]);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe("box coders: large tensors (fused lazily) give the values of small ones", () => {
  // 20 000 boxes: every column [20 000, 1] the coders compute with is beyond the fusion threshold
  // of 16 384 elements, so their chains run lazily fused.
  const n = 20000;
  const values = (f: (i: number) => number[]) => Array.from({ length: n }, (_, i) => f(i)).flat();
  const anchorValues = values((i) => [
    i % 97,
    i % 89,
    (i % 97) + 5 + (i % 13),
    (i % 89) + 3 + (i % 7),
  ]);
  const deltaValues = values((i) => [Math.sin(i), Math.cos(i), Math.sin(2 * i), Math.cos(3 * i)]);
  for (const [name, coder] of [coders[0], coders[3]]) {
    for (const dtype of ["float64", "float32"] as const) {
      it(`${name}, ${dtype}`, () => {
        const anchors = tensor(anchorValues, { shape: [n, 4], dtype });
        const d = tensor(deltaValues, { shape: [n, 4], dtype });
        const large = coder.decode(anchors, d).read();
        const encoded = coder.encode(anchors, coder.decode(anchors, d)).read();
        for (const i of [0, 1, 777, 19999]) {
          const one = (t: number[]) => tensor(t.slice(4 * i, 4 * i + 4), { shape: [1, 4], dtype });
          const small = coder.decode(one(anchorValues), one(deltaValues)).read();
          const smallEncoded = coder
            .encode(one(anchorValues), coder.decode(one(anchorValues), one(deltaValues)))
            .read();
          for (let c = 0; c < 4; c++) {
            // float64 is bit for bit; a fused float32 chain rounds once instead of per op.
            const tolerance = dtype === "float64" ? 0 : 1e-5 * Math.max(1, Math.abs(small[c]));
            expect(Math.abs(large[4 * i + c] - small[c])).toBeLessThanOrEqual(tolerance);
            const encodedTolerance = dtype === "float64" ? 0 : 1e-4;
            expect(Math.abs(encoded[4 * i + c] - smallEncoded[c])).toBeLessThanOrEqual(
              encodedTolerance,
            );
          }
        }
      });
    }
  }
});

describe("box coder validation", () => {
  const a = f64([[0, 0, 10, 20]]);
  it("options", () => {
    expect(() => cornerBoxCoder({ std: [0.2, 0.2, 0.2, 0] })).toThrow(
      /cornerBoxCoder: std must be 4 finite numbers > 0, got \[0.2,0.2,0.2,0\]/,
    );
    expect(() => cornerBoxCoder({ mean: [0, 0, 0] })).toThrow(
      /cornerBoxCoder: mean must be 4 finite numbers/,
    );
    expect(() => centerBoxCoder({ weights: [1, 1, 1, -1] })).toThrow(
      /centerBoxCoder: weights must be 4 finite numbers > 0/,
    );
    expect(() => centerBoxCoder({ clip: Number.NaN })).toThrow(
      /centerBoxCoder: clip must be a number/,
    );
  });

  it("arguments", () => {
    const coder = cornerBoxCoder();
    expect(() => coder.encode([[0, 0, 1, 1]] as unknown as Tensor, a)).toThrow(
      /cornerBoxCoder.encode: anchors must be a Tensor, got an array/,
    );
    expect(() => coder.encode(f64([0, 0, 1]), a)).toThrow(
      /cornerBoxCoder.encode: anchors must be a float32 or float64 tensor of shape \[..., 4\] \(x1, y1, x2, y2\), got a float64 tensor of shape \[3\]/,
    );
    expect(() => coder.decode(a, tensor([[0, 0, 0, 0]], { dtype: "int32" }))).toThrow(
      /cornerBoxCoder.decode: deltas must be a float32 or float64 tensor .* got an int32 tensor of shape \[1, 4\]/,
    );
    expect(() =>
      coder.decode(
        f64([0, 0, 1, 1, 0, 0, 2, 2], [2, 4]),
        f64([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [3, 4]),
      ),
    ).toThrow(
      /cornerBoxCoder.decode: the leading axes of anchors \[2, 4\] and deltas \[3, 4\] cannot be broadcast together/,
    );
    expect(() => coder.encode(f64([[0, 0, 0, 20]]), a)).toThrow(
      /cornerBoxCoder.encode: every box of anchors must be finite with x2 > x1 and y2 > y1, got \[0, 0, 0, 20\] at row 0/,
    );
    expect(() => coder.encode(a, f64([[0, Number.NaN, 1, 1]]))).toThrow(
      /cornerBoxCoder.encode: every box of boxes must be finite, got \[0, NaN, 1, 1\] at row 0/,
    );
    // The log-size of a box needs a positive width and height.
    expect(() => centerBoxCoder().encode(a, f64([[5, 5, 5, 9]]))).toThrow(
      /centerBoxCoder.encode: every box of boxes must be finite with x2 > x1 and y2 > y1, got \[5, 5, 5, 9\]/,
    );
  });
});
