import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Conv2dOptions,
  conv2d,
  pad,
  type Tensor,
  tensor,
  uniform,
  zeros,
} from "../src/index.js";
import { setColumnBlock } from "../src/kernels/conv.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../src/testing/index.js";
import { describeOnBackends } from "./backends.js";

interface Case {
  batch: number;
  inGroup: number;
  outGroup: number;
  groups: number;
  height: number;
  width: number;
  kh: number;
  kw: number;
  stride: [number, number];
  dilation: [number, number];
  padding: Conv2dOptions["padding"];
}

/** Direct six-loop convolution in float64, with explicit padding sizes: the reference. */
function referenceConv(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  stride: [number, number],
  padTop: number,
  padLeft: number,
  dilation: [number, number],
  groups: number,
  outH: number,
  outW: number,
): number[] {
  const [B, Cin, H, W] = x.shape;
  const [Cout, CinG, kh, kw] = w.shape;
  const CoutG = Cout / groups;
  const out: number[] = [];
  for (let b = 0; b < B; b++)
    for (let co = 0; co < Cout; co++)
      for (let oy = 0; oy < outH; oy++)
        for (let ox = 0; ox < outW; ox++) {
          let s = bias === null ? 0 : bias.data[co];
          const g = Math.floor(co / CoutG);
          for (let ci = 0; ci < CinG; ci++)
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * stride[0] - padTop + ky * dilation[0];
                const ix = ox * stride[1] - padLeft + kx * dilation[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const c = g * CinG + ci;
                s +=
                  x.data[((b * Cin + c) * H + iy) * W + ix] *
                  w.data[((co * CinG + ci) * kh + ky) * kw + kx];
              }
          out.push(s);
        }
  return out;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    inGroup: fc.integer({ min: 1, max: 2 }),
    outGroup: fc.integer({ min: 1, max: 2 }),
    groups: fc.integer({ min: 1, max: 2 }),
    height: fc.integer({ min: 3, max: 5 }),
    width: fc.integer({ min: 3, max: 5 }),
    kh: fc.integer({ min: 1, max: 3 }),
    kw: fc.integer({ min: 1, max: 2 }),
    stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.constant(1)),
    padding: fc.oneof(
      fc.constant<"same">("same"),
      fc.constant<"valid">("valid"),
      fc.integer({ min: 0, max: 1 }),
      fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 1 })),
    ),
  })
  // Keep the dilated kernel inside the (unpadded) image so that every case has an output.
  .filter((c) => c.dilation[0] * (c.kh - 1) + 1 <= c.height && c.kw <= c.width);

function operands(c: Case, withBias: boolean) {
  const Cin = c.inGroup * c.groups;
  const Cout = c.outGroup * c.groups;
  return fc.tuple(
    floatTensor([c.batch, Cin, c.height, c.width]),
    floatTensor([Cout, c.inGroup, c.kh, c.kw]),
    withBias ? floatTensor([Cout]) : fc.constant(null),
  );
}

function optionsOf(c: Case, bias: Tensor | null): Conv2dOptions {
  return {
    stride: c.stride,
    dilation: c.dilation,
    padding: c.padding,
    groups: c.groups,
    ...(bias === null ? {} : { bias }),
  };
}

/** The padding before and the output size on one axis, worked out independently of the op. */
function axis(
  size: number,
  k: number,
  s: number,
  d: number,
  p: Conv2dOptions["padding"],
  i: 0 | 1,
): [number, number] {
  const extent = d * (k - 1) + 1;
  if (p === "same") {
    const out = Math.ceil(size / s);
    return [Math.floor(Math.max(0, (out - 1) * s + extent - size) / 2), out];
  }
  const before = p === "valid" || p === undefined ? 0 : typeof p === "number" ? p : p[i];
  return [before, Math.floor((size + 2 * before - extent) / s) + 1];
}

describeOnBackends("conv2d", () => {
  it("computes a hand-worked 3 × 3 ⋆ 2 × 2 example", () => {
    // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, 0], [0, -1]], bias 10:
    // out[0][0] = 1 - 5 + 10 = 6, out[0][1] = 2 - 6 + 10 = 6, and so on: every entry is -4 + 10.
    const x = tensor([
      [
        [
          [1, 2, 3],
          [4, 5, 6],
          [7, 8, 9],
        ],
      ],
    ]);
    const w = tensor([
      [
        [
          [1, 0],
          [0, -1],
        ],
      ],
    ]);
    expect(conv2d(x, w, { bias: tensor([10]) }).toArray()).toEqual([
      [
        [
          [6, 6],
          [6, 6],
        ],
      ],
    ]);
    // With padding 1 the corner sees only x[0][0] under w[1][1] = -1: out[0][0] = -1.
    expect(conv2d(x, w, { padding: 1 }).toArray()).toEqual([
      [
        [
          [-1, -2, -3, 0],
          [-4, -4, -4, 3],
          [-7, -4, -4, 6],
          [0, 7, 8, 9],
        ],
      ],
    ]);
  });

  it("matches a direct six-loop convolution for strides, paddings, dilations and groups", () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) => fc.tuple(fc.constant(c), operands(c, true))),
        ([c, [x, w, bias]]) => {
          const out = conv2d(x, w, optionsOf(c, bias));
          const [pt, oh] = axis(c.height, c.kh, c.stride[0], c.dilation[0], c.padding, 0);
          const [pl, ow] = axis(c.width, c.kw, c.stride[1], c.dilation[1], c.padding, 1);
          expect(out.shape).toEqual([c.batch, c.outGroup * c.groups, oh, ow]);
          const expected = referenceConv(
            x,
            w,
            bias,
            c.stride,
            pt,
            pl,
            c.dilation,
            c.groups,
            oh,
            ow,
          );
          out.data.forEach((v, i) => {
            expect(v).toBeCloseTo(expected[i], 12);
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it("keeps the spatial size with 'same' (stride 1) and gives ceil(H / stride) with stride 2", () => {
    const x = zeros([1, 1, 7, 6]);
    for (const k of [1, 2, 3, 4, 5]) {
      expect(conv2d(x, zeros([1, 1, k, k]), { padding: "same" }).shape).toEqual([1, 1, 7, 6]);
      expect(conv2d(x, zeros([1, 1, k, k]), { padding: "same", stride: 2 }).shape).toEqual([
        1, 1, 4, 3,
      ]);
    }
    // An even kernel pads one more after than before (PyTorch and TensorFlow): with x = 1..4 in
    // a row and w = [1, 1], 'same' gives [1+2, 2+3, 3+4, 4+0].
    const row = conv2d(tensor([[[[1, 2, 3, 4]]]]), tensor([[[[1, 1]]]]), { padding: "same" });
    expect(row.toArray()).toEqual([[[[3, 5, 7, 4]]]]);
  });

  it("has the right first derivatives in x, w and bias", () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) => fc.tuple(fc.constant(c), operands(c, true))),
        ([c, [x, w, bias]]) => {
          assertGradcheck((a, k, b) => conv2d(a, k, optionsOf(c, b)), [x, w, bias as Tensor]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("has the right second derivatives (through the backward-input and backward-weight ops)", () => {
    fc.assert(
      fc.property(
        caseArb.chain((c) => fc.tuple(fc.constant(c), operands(c, true))),
        ([c, [x, w, bias]]) => {
          assertGradgradcheck((a, k, b) => conv2d(a, k, optionsOf(c, b)), [x, w, bias as Tensor]);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("has the right second derivatives through a nonlinear composition, conv(conv(x, w), w)", () => {
    const x = uniform([1, 2, 4, 4], { low: -1, high: 1, seed: 3, dtype: "float64" });
    const w = uniform([2, 2, 3, 3], { low: -1, high: 1, seed: 4, dtype: "float64" });
    // Quadratic in w and bilinear in (x, w): the Hessian mixes both backward ops with the forward.
    assertGradgradcheck(
      (a, k) => conv2d(conv2d(a, k, { padding: "same" }), k, { padding: 1, stride: 2 }),
      [x, w],
    );
  });

  it("gives the same values and gradients when im2col runs one output row at a time", () => {
    // Real images are split into blocks of output rows; the small test images fit in one block.
    const previous = setColumnBlock(1);
    try {
      fc.assert(
        fc.property(
          caseArb.chain((c) => fc.tuple(fc.constant(c), operands(c, true))),
          ([c, [x, w, bias]]) => {
            const out = conv2d(x, w, optionsOf(c, bias));
            const [pt, oh] = axis(c.height, c.kh, c.stride[0], c.dilation[0], c.padding, 0);
            const [pl, ow] = axis(c.width, c.kw, c.stride[1], c.dilation[1], c.padding, 1);
            const expected = referenceConv(
              x,
              w,
              bias,
              c.stride,
              pt,
              pl,
              c.dilation,
              c.groups,
              oh,
              ow,
            );
            out.data.forEach((v, i) => {
              expect(v).toBeCloseTo(expected[i], 12);
            });
            assertGradcheck((a, k, b) => conv2d(a, k, optionsOf(c, b)), [x, w, bias as Tensor]);
          },
        ),
        { numRuns: 50 },
      );
    } finally {
      setColumnBlock(previous);
    }
  });

  it("computes float32 like float64, and mixed dtypes in float64", () => {
    const x = uniform([2, 3, 9, 9], { low: -1, high: 1, seed: 1 });
    const w = uniform([4, 3, 3, 3], { low: -1, high: 1, seed: 2 });
    const x64 = uniform([2, 3, 9, 9], { low: -1, high: 1, seed: 1, dtype: "float64" });
    const w64 = uniform([4, 3, 3, 3], { low: -1, high: 1, seed: 2, dtype: "float64" });
    const out32 = conv2d(x, w, { padding: 1, stride: 2 });
    const out64 = conv2d(x64, w64, { padding: 1, stride: 2 });
    expect(out32.dtype).toBe("float32");
    out32.data.forEach((v, i) => {
      expect(v).toBeCloseTo(out64.data[i], 5);
    });
    expect(conv2d(x, w64).dtype).toBe("float64");
  });

  it("takes the pointwise (1 × 1) fast path with the same results and gradients", () => {
    fc.assert(
      fc.property(floatTensor([2, 3, 2, 3]), floatTensor([4, 3, 1, 1]), (x, w) => {
        assertGradcheck((a, k) => conv2d(a, k), [x, w]);
        assertGradgradcheck((a, k) => conv2d(a, k), [x, w]);
      }),
      { numRuns: 20 },
    );
  });

  describe("errors", () => {
    const x = zeros([1, 4, 5, 5]);
    const w = zeros([2, 4, 3, 3]);
    it("names x's shape when it is not NCHW", () => {
      expect(() => conv2d(zeros([4, 5, 5]), w)).toThrow(
        "conv2d: x must have rank 4 [batch, channels, height, width] (NCHW), got shape [4, 5, 5]",
      );
    });
    it("names w's shape when it has the wrong rank", () => {
      expect(() => conv2d(x, zeros([2, 4, 3]))).toThrow(
        "conv2d: w must have rank 4 [outChannels, inChannels / groups, kernelHeight, kernelWidth], got shape [2, 4, 3]",
      );
    });
    it("names both shapes on a channel mismatch", () => {
      expect(() => conv2d(x, zeros([2, 3, 3, 3]))).toThrow(
        "conv2d: w of shape [2, 3, 3, 3] expects 3 input channels but x of shape [1, 4, 5, 5] has 4",
      );
    });
    it("rejects groups that do not divide the channels", () => {
      expect(() => conv2d(x, zeros([3, 2, 3, 3]), { groups: 2 })).toThrow(
        "conv2d: groups (2) must divide both the input channels (4, x of shape [1, 4, 5, 5]) and the output channels (3",
      );
      expect(() => conv2d(x, w, { groups: 0 })).toThrow(
        "conv2d: groups must be an integer >= 1, got 0",
      );
    });
    it("rejects a bias of the wrong shape", () => {
      expect(() => conv2d(x, w, { bias: zeros([3]) })).toThrow(
        "conv2d: bias must have shape [2] (one per output channel of w [2, 4, 3, 3]), got [3]",
      );
    });
    it("rejects bad strides, dilations and paddings", () => {
      expect(() => conv2d(x, w, { stride: 0 })).toThrow(
        "conv2d: stride must be an integer >= 1 or a pair [h, w] of them, got 0",
      );
      expect(() => conv2d(x, w, { stride: [1, 1.5] })).toThrow(
        "conv2d: stride must be an integer >= 1 or a pair [h, w] of them, got [1, 1.5]",
      );
      expect(() => conv2d(x, w, { dilation: -1 })).toThrow(
        "conv2d: dilation must be an integer >= 1 or a pair [h, w] of them, got -1",
      );
      expect(() => conv2d(x, w, { padding: -1 })).toThrow(
        "conv2d: padding must be an integer >= 0 or a pair [h, w] of them, got -1",
      );
      expect(() => conv2d(x, w, { padding: "full" as "same" })).toThrow(
        'conv2d: padding must be "same", "valid", an integer >= 0 or a pair [h, w] of them, got "full"',
      );
    });
    it("rejects a kernel larger than the padded input", () => {
      expect(() => conv2d(x, zeros([2, 4, 3, 3]), { dilation: 3 })).toThrow(
        "conv2d: the kernel's height extent 7 (size 3, dilation 3) exceeds the padded input height 5",
      );
    });
    it("rejects integer inputs", () => {
      expect(() => conv2d(zeros([1, 4, 5, 5], { dtype: "int32" }), w)).toThrow(
        "conv2d: x must be float32 or float64, got int32",
      );
    });
  });
});

describe("pad", () => {
  it("pads the spatial axes of an NCHW tensor and slices its gradient back, to every order", () => {
    fc.assert(
      fc.property(
        floatTensor([1, 2, 2, 3]),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 2 }),
        (x, top, right) => {
          const f = (a: Tensor) =>
            pad(a, [
              [0, 0],
              [0, 0],
              [top, 1],
              [0, right],
            ]);
          expect(f(x).shape).toEqual([1, 2, 2 + top + 1, 3 + right]);
          assertGradcheck(f, [x]);
          assertGradgradcheck(f, [x]);
        },
      ),
      { numRuns: 30 },
    );
  });
});
