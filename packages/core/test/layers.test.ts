/** Tests of the PyTorch-named layers: activations, Dropout, BatchNorm1d, LayerNorm, containers, summaries. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  interpolate,
  manualSeed,
  nn,
  ones,
  sum,
  type Tensor,
  tensor,
  zeros,
} from "../src/index.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../src/testing/index.js";

const f64 = (values: number[] | number[][]) => tensor(values, { dtype: "float64" });

describe("activations", () => {
  it("Identity returns its input", () => {
    const x = tensor([1, 2]);
    expect(new nn.Identity().forward(x)).toBe(x);
  });

  it("LeakyReLU: x above 0, slope · x below; subgradient at 0 is the slope (PyTorch's)", () => {
    expect(new nn.LeakyReLU(0.1).forward(f64([-2, 3])).toArray()).toEqual([-0.2, 3]);
    const x = f64([0, -1, 2]);
    x.requiresGrad = true;
    sum(new nn.LeakyReLU(0.25).forward(x)).backward();
    // d/dx: 0.25 at 0 and below 0, 1 above.
    expect(x.grad!.toArray()).toEqual([0.25, 0.25, 1]);
    expect(new nn.LeakyReLU().negativeSlope).toBe(0.01);
    expect(() => new nn.LeakyReLU(Number.NaN)).toThrow(
      "LeakyReLU: negativeSlope must be a finite number, got NaN",
    );
    expect(() => new nn.LeakyReLU().forward(tensor([1], { dtype: "int32" }))).toThrow(
      /^LeakyReLU: x must be/,
    );
  });

  it("SiLU is x · sigmoid(x)", () => {
    // sigmoid(1) = 1 / (1 + e^-1) = 0.7310585786300049; SiLU(-1) = -sigmoid(-1) = -0.2689414213699951.
    const y = new nn.SiLU().forward(f64([0, 1, -1])).toArray() as number[];
    expect(y[0]).toBe(0);
    expect(y[1]).toBeCloseTo(0.7310585786300049, 15);
    expect(y[2]).toBeCloseTo(-0.2689414213699951, 15);
  });

  it("GELU is x · Φ(x), or PyTorch's tanh approximation", () => {
    // Φ(1) = 0.8413447460685429 and Φ(−1) = 1 − Φ(1); the tanh form at 1: (1 + tanh(√(2/π) ·
    // 1.044715)) / 2 = (1 + 0.68238398121655) / 2 = 0.8411919906082768.
    const exact = new nn.GELU().forward(f64([1, -1, 0])).toArray() as number[];
    expect(exact[0]).toBeCloseTo(0.8413447460685429, 15);
    expect(exact[1]).toBeCloseTo(-0.15865525393145705, 15);
    expect(exact[2]).toBe(0);
    const tanhForm = new nn.GELU({ approximate: "tanh" });
    expect(tanhForm.approximate).toBe("tanh");
    expect(new nn.GELU().approximate).toBe("none");
    expect(tanhForm.forward(f64([1])).item()).toBeCloseTo(0.8411919906082768, 15);
    expect(tanhForm.parameters()).toEqual([]);
    expect(() => new nn.GELU({ approximate: "exact" as "none" })).toThrow(
      'GELU: approximate must be "none" or "tanh", got "exact"',
    );
    expect(() => new nn.GELU({ approximation: "tanh" } as never)).toThrow(
      'GELU: unknown option "approximation" (expected approximate)',
    );
    expect(() => new nn.GELU().forward(tensor([1], { dtype: "int32" }))).toThrow(
      /^GELU: x must be/,
    );
  });

  it("Sigmoid, Tanh and Softmax are their functions", () => {
    expect(new nn.Sigmoid().forward(f64([0])).toArray()).toEqual([0.5]);
    expect(new nn.Tanh().forward(f64([0])).toArray()).toEqual([0]);
    // softmax([0, ln 3]) = [1/4, 3/4].
    const p = new nn.Softmax(-1).forward(f64([[0, Math.log(3)]])).toArray() as number[][];
    expect(p[0][0]).toBeCloseTo(0.25, 15);
    expect(p[0][1]).toBeCloseTo(0.75, 15);
    expect(() => new nn.Softmax(0.5)).toThrow("Softmax: axis must be an integer, got 0.5");
  });

  it.each([
    ["LeakyReLU", new nn.LeakyReLU(0.2)],
    ["SiLU", new nn.SiLU()],
    ["GELU", new nn.GELU()],
    ["GELU tanh", new nn.GELU({ approximate: "tanh" })],
    ["Softmax", new nn.Softmax(1)],
  ] as const)(
    "%s has gradients that match finite differences, first and second order",
    (_, layer) => {
      fc.assert(
        fc.property(floatTensor([2, 3], { avoid: [0] }), (x) => {
          assertGradcheck((t: Tensor) => layer.forward(t), [x]);
          assertGradgradcheck((t: Tensor) => layer.forward(t), [x]);
        }),
        { numRuns: 20 },
      );
    },
  );
});

describe("Dropout", () => {
  it("zeroes elements with probability p and scales the rest by 1 / (1 - p) in training", () => {
    const drop = new nn.Dropout({ p: 0.25, seed: 0 });
    const y = drop.forward(ones([100, 100], { dtype: "float64" })).data;
    let kept = 0;
    for (const v of y) {
      expect(v === 0 || v === 4 / 3).toBe(true);
      if (v !== 0) kept++;
    }
    // 10 000 Bernoulli(0.75) draws: standard deviation √(10⁴ · 0.75 · 0.25) ≈ 43.
    expect(Math.abs(kept - 7500)).toBeLessThan(300);
  });

  it("is the identity in eval mode and for p = 0; p = 1 zeroes everything", () => {
    const x = tensor([1, 2, 3]);
    expect(new nn.Dropout({ p: 0.5, seed: 1 }).eval().forward(x)).toBe(x);
    expect(new nn.Dropout({ p: 0 }).forward(x)).toBe(x);
    expect(new nn.Dropout({ p: 1 }).forward(x).toArray()).toEqual([0, 0, 0]);
  });

  it("draws from the default generator unless given a seed, and masks the gradient too", () => {
    manualSeed(4);
    const a = new nn.Dropout().forward(ones([64])).toArray();
    manualSeed(4);
    expect(new nn.Dropout().forward(ones([64])).toArray()).toEqual(a);
    fc.assert(
      fc.property(floatTensor([3, 4]), (x) => {
        // A fresh layer of the same seed per call: the same mask for every evaluation.
        assertGradcheck((t: Tensor) => new nn.Dropout({ p: 0.4, seed: 9 }).forward(t), [x]);
      }),
      { numRuns: 20 },
    );
  });

  it("rejects p outside [0, 1]", () => {
    expect(() => new nn.Dropout({ p: 1.5 })).toThrow(
      "Dropout: p must be a probability in [0, 1], got 1.5",
    );
  });
});

describe("BatchNorm1d", () => {
  it("normalises each channel over the batch and updates the running statistics", () => {
    const bn = new nn.BatchNorm1d(2, { dtype: "float64" });
    // Channel 0: [1, 3], mean 2, biased variance 1; channel 1: [10, 30], mean 20, variance 100.
    const y = bn
      .forward(
        f64([
          [1, 10],
          [3, 30],
        ]),
      )
      .toArray() as number[][];
    expect(y[0][0]).toBeCloseTo(-1 / Math.sqrt(1 + 1e-5), 12);
    expect(y[1][1]).toBeCloseTo(10 / Math.sqrt(100 + 1e-5), 12);
    // Running mean 0.9 · 0 + 0.1 · mean; running variance 0.9 · 1 + 0.1 · unbiased (2 and 200).
    expect(bn.runningMean.toArray()).toEqual([0.2, 2]);
    const runningVar = bn.runningVar.toArray() as number[];
    expect(runningVar[0]).toBeCloseTo(1.1, 12);
    expect(runningVar[1]).toBeCloseTo(20.9, 12);
    expect(bn.forward(zeros([4, 2, 5], { dtype: "float64" })).shape).toEqual([4, 2, 5]);
    // Eval mode uses the running statistics: an input equal to the running mean maps to 0.
    bn.eval();
    const atMean = bn.forward(f64([[bn.runningMean.data[0], bn.runningMean.data[1]]]));
    expect(atMean.toArray()).toEqual([[0, 0]]);
    expect(bn instanceof nn.BatchNorm2d).toBe(true);
  });

  it("has the gradient of its batch statistics", () => {
    fc.assert(
      fc.property(floatTensor([4, 3]), (x) => {
        const bn = new nn.BatchNorm1d(3, { dtype: "float64" });
        assertGradcheck((t: Tensor) => bn.forward(t), [x]);
      }),
      { numRuns: 30 },
    );
  });

  it("rejects inputs of other ranks", () => {
    expect(() => new nn.BatchNorm1d(2).forward(zeros([2, 2, 2, 2]))).toThrow(
      "BatchNorm1d: x must have rank 2 [batch, channels] or 3 [batch, channels, length], got shape [2, 2, 2, 2]",
    );
    expect(() => new nn.BatchNorm1d(0)).toThrow(
      "BatchNorm1d: numFeatures must be an integer >= 1, got 0",
    );
  });
});

describe("LayerNorm", () => {
  it("normalises the trailing axes of each sample", () => {
    const ln = new nn.LayerNorm(4, { dtype: "float64" });
    // [1, 2, 3, 4]: mean 2.5, biased variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    const y = ln.forward(f64([[1, 2, 3, 4]])).toArray() as number[][];
    const s = Math.sqrt(1.25 + 1e-5);
    expect(y[0].map((v) => Number(v.toFixed(12)))).toEqual(
      [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s].map((v) => Number(v.toFixed(12))),
    );
    expect(ln.weight!.shape).toEqual([4]);
    expect(new nn.LayerNorm([2, 3]).forward(zeros([5, 2, 3])).shape).toEqual([5, 2, 3]);
    expect(new nn.LayerNorm(3, { elementwiseAffine: false }).parameters()).toEqual([]);
  });

  it("has gradients that match finite differences, first and second order", () => {
    fc.assert(
      fc.property(floatTensor([2, 2, 3]), (x) => {
        const ln = new nn.LayerNorm([2, 3], { dtype: "float64" });
        assertGradcheck((t: Tensor) => ln.forward(t), [x]);
        assertGradgradcheck((t: Tensor) => ln.forward(t), [x]);
      }),
      { numRuns: 20 },
    );
  });

  it("rejects an input that does not end in normalizedShape, and a bad shape", () => {
    expect(() => new nn.LayerNorm([2, 3]).forward(zeros([2, 3, 2]))).toThrow(
      "LayerNorm: x of shape [2, 3, 2] must end in normalizedShape [2, 3]",
    );
    expect(() => new nn.LayerNorm([])).toThrow(
      "LayerNorm: normalizedShape must be one or more integers >= 1, got []",
    );
  });
});

describe("MaxPool2d", () => {
  it("takes the kernel size first, as PyTorch's does, or one options object", () => {
    const x = tensor([1, 5, 2, 0, 3, 4, 8, 7, 6, 9, 1, 2, 0, 0, 3, 4], { shape: [1, 1, 4, 4] });
    // 2 × 2 windows: max(1, 5, 3, 4) = 5, max(2, 0, 8, 7) = 8, max(6, 9, 0, 0) = 9, max(1, 2, 3, 4) = 4.
    const expected = [
      [
        [
          [5, 8],
          [9, 4],
        ],
      ],
    ];
    expect(new nn.MaxPool2d(2).forward(x).toArray()).toEqual(expected);
    expect(new nn.MaxPool2d([2, 2]).forward(x).toArray()).toEqual(expected);
    expect(new nn.MaxPool2d({ kernelSize: 2 }).forward(x).toArray()).toEqual(expected);
    // Window 3, stride 1, no padding: the 2 × 2 maxima of 3 × 3 blocks: 9, 9, 9, 9.
    expect(new nn.MaxPool2d(3, { stride: 1 }).forward(x).toArray()).toEqual([
      [
        [
          [9, 9],
          [9, 9],
        ],
      ],
    ]);
  });
});

describe("Upsample", () => {
  it("is interpolate in every mode, and the integer-factor kernel in nearest mode", () => {
    const x = tensor([0, 2, 4, 6], { shape: [1, 1, 2, 2], dtype: "float64" });
    // Nearest, factor 2: every pixel a 2 × 2 block, as interpolate gives.
    const nearest = new nn.Upsample({ scaleFactor: 2 }).forward(x);
    expect(nearest.toArray()).toEqual(interpolate(x, { scaleFactor: 2 }).toArray());
    // Bilinear with corners aligned, 2 × 2 → 3 × 3: the centre is the mean 3.
    const bilinear = new nn.Upsample({ size: 3, mode: "bilinear", alignCorners: true }).forward(x);
    expect(bilinear.toArray()).toEqual([
      [
        [
          [0, 1, 2],
          [2, 3, 4],
          [4, 5, 6],
        ],
      ],
    ]);
    // A fractional nearest factor goes through interpolate: 2 × 1.5 = 3 columns.
    expect(new nn.Upsample({ scaleFactor: 1.5 }).forward(x).shape).toEqual([1, 1, 3, 3]);
  });
});

describe("containers", () => {
  it("ModuleList registers its modules as 0, 1, … and iterates over them", () => {
    const list = new nn.ModuleList([new nn.Linear(2, 3), new nn.ReLU()]);
    list.append(new nn.Linear(3, 1));
    expect(list.length).toBe(3);
    expect(list.namedParameters().map(([name]) => name)).toEqual([
      "0.weight",
      "0.bias",
      "2.weight",
      "2.bias",
    ]);
    expect(list.at(-1)).toBe([...list][2]);
    expect(() => list.at(3)).toThrow("ModuleList: index 3 is out of range for a list of 3 modules");
    expect(() => list.forward()).toThrow(
      "ModuleList: has no forward of its own; call the modules it holds instead",
    );
  });

  it("ModuleDict registers its modules by name", () => {
    const heads = new nn.ModuleDict({ cls: new nn.Linear(2, 3), box: new nn.Linear(2, 4) });
    expect(heads.keys()).toEqual(["cls", "box"]);
    expect(heads.get("box").parameters()[0].shape).toEqual([4, 2]);
    expect(heads.has("cls")).toBe(true);
    expect(heads.stateDict().has("box.bias")).toBe(true);
    expect(() => heads.get("mask")).toThrow(
      'ModuleDict: no module named "mask" (it has "cls", "box")',
    );
    expect(() => (heads as nn.ModuleDict).set("a.b", new nn.ReLU())).toThrow(
      /name must be a non-empty string/,
    );
    expect(() => heads.forward()).toThrow(
      "ModuleDict: has no forward of its own; call the modules it holds instead",
    );
  });
});

describe("parameterCount and summary", () => {
  const net = () =>
    new nn.Sequential(
      new nn.Linear(4, 8, { seed: 0 }),
      new nn.ReLU(),
      new nn.Linear(8, 1, { seed: 1 }),
    );

  it("count parameter elements: 4 · 8 + 8 + 8 · 1 + 1 = 49", () => {
    expect(nn.parameterCount(new nn.Linear(4, 2, { seed: 0 }))).toBe(10);
    expect(nn.parameterCount(net())).toBe(49);
  });

  it("summary lists each module's own parameters and the total", () => {
    expect(nn.summary(net()).split("\n")).toEqual([
      "name    module      parameters   count",
      "(root)  Sequential                   0",
      "0       Linear      [8, 4], [8]     40",
      "1       ReLU                         0",
      "2       Linear      [1, 8], [1]      9",
      "total                               49",
    ]);
  });
});
