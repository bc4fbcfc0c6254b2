import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  concat,
  conv2d,
  Generator,
  matmul,
  mean,
  nn,
  relu,
  reshape,
  square,
  sum,
  type Tensor,
  tensor,
  transpose,
  uniform,
  zeros,
} from "../src/index.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../src/testing/index.js";

class TwoLayer extends nn.Module {
  readonly hidden = this.addModule("hidden", new nn.Linear(3, 4, { seed: 0 }));
  readonly norm = this.addModule("norm", new nn.BatchNorm2d(2));
  readonly out = this.addModule("out", new nn.Linear(4, 1, { seed: 1 }));
  readonly scale = this.addParameter("scale", tensor([1]));
  forward(x: Tensor): Tensor {
    return this.out.forward(relu(this.hidden.forward(x)));
  }
}

describe("Module", () => {
  it("names parameters like PyTorch: own first, then submodules in registration order", () => {
    const m = new TwoLayer();
    expect(m.namedParameters().map(([name]) => name)).toEqual([
      "scale",
      "hidden.weight",
      "hidden.bias",
      "norm.weight",
      "norm.bias",
      "out.weight",
      "out.bias",
    ]);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(m.namedBuffers().map(([name]) => name)).toEqual([
      "norm.running_mean",
      "norm.running_var",
      "norm.num_batches_tracked",
    ]);
    // state_dict order: per module its parameters, then its buffers, then its submodules.
    expect([...m.stateDict().keys()]).toEqual([
      "scale",
      "hidden.weight",
      "hidden.bias",
      "norm.weight",
      "norm.bias",
      "norm.running_mean",
      "norm.running_var",
      "norm.num_batches_tracked",
      "out.weight",
      "out.bias",
    ]);
    expect(m.namedModules().map(([name]) => name)).toEqual(["", "hidden", "norm", "out"]);
  });

  it("names the layers of a Sequential 0, 1, …, and lists a shared parameter once", () => {
    const shared = new nn.Linear(2, 2, { seed: 0 });
    const net = new nn.Sequential(shared, new nn.ReLU(), shared);
    expect(net.namedParameters().map(([name]) => name)).toEqual(["0.weight", "0.bias"]);
    expect(net.forward(zeros([5, 2])).shape).toEqual([5, 2]);
  });

  it("switches train and eval mode through the whole tree", () => {
    const m = new TwoLayer();
    expect(m.eval()).toBe(m);
    expect(m.namedModules().every(([, s]) => !s.training)).toBe(true);
    m.train();
    expect(m.norm.training).toBe(true);
  });

  it("clears gradients with zeroGrad", () => {
    const lin = new nn.Linear(2, 1, { seed: 0 });
    sum(lin.forward(tensor([[1, 2]]))).backward();
    expect(lin.weight.grad).not.toBeNull();
    lin.zeroGrad();
    expect(lin.parameters().every((p) => p.grad === null)).toBe(true);
  });

  it("rejects duplicate names, dotted names and non-leaf parameters", () => {
    class Bad extends nn.Module {
      constructor(kind: "duplicate" | "dotted" | "op") {
        super();
        const t = tensor([1]);
        if (kind === "duplicate") {
          this.addParameter("w", t);
          this.addBuffer("w", tensor([2]));
        } else if (kind === "dotted") this.addParameter("a.b", t);
        else this.addParameter("w", add(tensor([1], { requiresGrad: true }), 1));
      }
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    expect(() => new Bad("duplicate")).toThrow('Bad: the name "w" is already registered');
    expect(() => new Bad("dotted")).toThrow(
      'Bad: parameter name must be a non-empty string without ".", got "a.b"',
    );
    expect(() => new Bad("op")).toThrow(
      'Bad: parameter "w" must be a float leaf tensor (not the result of an op)',
    );
  });
});

/** Two pyramid levels in, two out: 1×1 laterals (one per level, in a list) and a top-down sum. */
class TinyPyramid extends nn.Module<[Tensor, Tensor], [Tensor, Tensor]> {
  readonly lateral = this.addModule(
    "lateral",
    new nn.ModuleList([2, 3].map((c, i) => new nn.Conv2d(c, 2, 1, { seed: i, dtype: "float64" }))),
  );
  readonly upsample = this.addModule("upsample", new nn.Upsample({ scaleFactor: 2 }));
  forward(c3: Tensor, c4: Tensor): [Tensor, Tensor] {
    const p4 = this.lateral.at(1).forward(c4);
    const p3 = add(this.lateral.at(0).forward(c3), this.upsample.forward(p4));
    return [p3, p4];
  }
}

/** A head shared over levels, returning both outputs by name, with a parameter of its own. */
class TinyHead extends nn.Module<[Tensor[]], { classification: Tensor; regression: Tensor }> {
  readonly prior = this.addParameter("prior", tensor([0.5], { dtype: "float64" }));
  readonly cls = this.addModule("cls", new nn.Conv2d(2, 1, 1, { seed: 5, dtype: "float64" }));
  readonly box = this.addModule("box", new nn.Conv2d(2, 4, 1, { seed: 6, dtype: "float64" }));
  forward(levels: Tensor[]) {
    const flat = (t: Tensor, channels: number) => reshape(t, [t.shape[0], channels, -1]);
    return {
      classification: add(
        concat(
          levels.map((p) => flat(this.cls.forward(p), 1)),
          2,
        ),
        this.prior,
      ),
      regression: concat(
        levels.map((p) => flat(this.box.forward(p), 4)),
        2,
      ),
    };
  }
}

class TinyDetector extends nn.Module<
  [Tensor, Tensor],
  { classification: Tensor; regression: Tensor }
> {
  readonly fpn = this.addModule("fpn", new TinyPyramid());
  readonly head = this.addModule("head", new TinyHead());
  forward(c3: Tensor, c4: Tensor) {
    return this.head.forward(this.fpn.forward(c3, c4));
  }
}

describe("modules of any forward signature", () => {
  it("take several tensors and return a tuple or an object, with parameters like any module", () => {
    const det = new TinyDetector();
    expect(det.namedParameters().map(([name]) => name)).toEqual([
      "fpn.lateral.0.weight",
      "fpn.lateral.0.bias",
      "fpn.lateral.1.weight",
      "fpn.lateral.1.bias",
      "head.prior",
      "head.cls.weight",
      "head.cls.bias",
      "head.box.weight",
      "head.box.bias",
    ]);
    expect([...det.stateDict().keys()]).toEqual(det.namedParameters().map(([name]) => name));
    expect(det.namedModules().map(([name]) => name)).toEqual([
      "",
      "fpn",
      "fpn.lateral",
      "fpn.lateral.0",
      "fpn.lateral.1",
      "fpn.upsample",
      "head",
      "head.cls",
      "head.box",
    ]);
    const c3 = uniform([1, 2, 4, 4], { seed: 1, dtype: "float64" });
    const c4 = uniform([1, 3, 2, 2], { seed: 2, dtype: "float64" });
    const [p3, p4] = det.fpn.forward(c3, c4);
    expect(p3.shape).toEqual([1, 2, 4, 4]);
    expect(p4.shape).toEqual([1, 2, 2, 2]);
    const { classification, regression } = det.forward(c3, c4);
    expect(classification.shape).toEqual([1, 1, 20]); // 16 + 4 positions
    expect(regression.shape).toEqual([1, 4, 20]);
    add(sum(classification), sum(regression)).backward();
    expect(det.parameters().every((p) => p.grad !== null)).toBe(true);
    // d/d prior of sum(classification) is one per position.
    expect(det.head.prior.grad!.item()).toBe(20);
  });

  it("have the right gradient through several inputs (float64)", () => {
    const fpn = new TinyPyramid();
    fc.assert(
      fc.property(floatTensor([1, 2, 2, 2]), floatTensor([1, 3, 1, 1]), (c3, c4) => {
        assertGradcheck(
          (a, b) => {
            const [p3, p4] = fpn.forward(a, b);
            return add(sum(square(p3)), sum(p4));
          },
          [c3, c4],
        );
      }),
      { numRuns: 30 },
    );
  });

  it("are typed: arguments and results are checked, and only one-tensor layers go in a Sequential", () => {
    const fpn = new TinyPyramid();
    const x = zeros([1, 2, 2, 2], { dtype: "float64" });
    // @ts-expect-error: forward takes two tensors
    expect(() => fpn.forward(x)).toThrow();
    // @ts-expect-error: the result is a tuple of two, not an object
    expect(fpn.forward(x, zeros([1, 3, 1, 1], { dtype: "float64" })).classification).toBe(
      undefined,
    );
    // @ts-expect-error: a module of two inputs is not a layer of a Sequential
    new nn.Sequential(fpn);
    const generic: nn.AnyModule = fpn; // what save and load take
    expect(generic.parameters().length).toBe(4);
  });

  it("ModuleList holds modules by index, iterates, and has no forward of its own", () => {
    const list = new nn.ModuleList<nn.Layer>([new nn.Linear(2, 2, { seed: 0 })]).append(
      new nn.ReLU(),
    );
    expect(list.length).toBe(2);
    expect(list.at(-1)).toBeInstanceOf(nn.ReLU);
    expect([...list].map((m) => m.constructor.name)).toEqual(["Linear", "ReLU"]);
    expect(list.namedParameters().map(([name]) => name)).toEqual(["0.weight", "0.bias"]);
    expect(() => list.at(2)).toThrow("ModuleList: index 2 is out of range for a list of 2 modules");
    expect(() => list.at(0.5)).toThrow("ModuleList: index 0.5 is out of range");
    expect(() => list.forward()).toThrow("ModuleList: has no forward of its own");
  });
});

describe("Linear", () => {
  it("computes x · weightᵀ + bias, for batches and single vectors", () => {
    const lin = new nn.Linear(3, 2, { seed: 0 });
    const x = uniform([4, 3], { seed: 1 });
    const expected = add(matmul(x, transpose(lin.weight)), lin.bias!);
    const got = lin.forward(x);
    got.data.forEach((v, i) => {
      expect(v).toBeCloseTo(expected.data[i], 6);
    });
    expect(lin.forward(tensor([1, 2, 3])).shape).toEqual([2]);
    expect(lin.forward(zeros([5, 4, 3])).shape).toEqual([5, 4, 2]);
    expect(new nn.Linear(3, 2, { seed: 0, bias: false }).namedParameters().length).toBe(1);
  });

  it("starts from U(−1/√in, 1/√in), reproducibly from the seed", () => {
    const a = new nn.Linear(16, 8, { seed: 5 });
    const b = new nn.Linear(16, 8, { generator: new Generator(5) });
    expect([...a.weight.data]).toEqual([...b.weight.data]);
    expect(a.weight.data.every((v) => Math.abs(v) <= 0.25)).toBe(true);
  });

  it("has the right gradients in x and in its parameters (float64)", () => {
    const lin = new nn.Linear(3, 2, { seed: 0, dtype: "float64" });
    fc.assert(
      fc.property(floatTensor([2, 3]), (x) => {
        assertGradcheck((a) => lin.forward(a), [x]);
        assertGradgradcheck((a) => square(lin.forward(a)), [x]);
      }),
      { numRuns: 20 },
    );
    // d/dW sum(x Wᵀ + b) = column sums of x per output row; d/db = batch size.
    const x = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { dtype: "float64" },
    );
    sum(lin.forward(x)).backward();
    expect(lin.weight.grad?.toArray()).toEqual([
      [5, 7, 9],
      [5, 7, 9],
    ]);
    expect(lin.bias?.grad?.toArray()).toEqual([2, 2]);
  });

  it("rejects input whose last axis is not inFeatures, and a missing seed", () => {
    const lin = new nn.Linear(3, 2, { seed: 0 });
    expect(() => lin.forward(zeros([4, 5]))).toThrow(
      "Linear: x of shape [4, 5] must end in inFeatures = 3 (weight [2, 3])",
    );
    expect(() => new nn.Linear(3, 2)).toThrow(
      "Linear: pass { generator } or { seed }, so that the initial weights are reproducible",
    );
    expect(() => new nn.Linear(0, 2, { seed: 0 })).toThrow(
      "Linear: inFeatures must be an integer >= 1, got 0",
    );
  });
});

describe("Conv2d", () => {
  it("is conv2d with its own weight [out, in / groups, kh, kw] and bias", () => {
    const conv = new nn.Conv2d(4, 6, [3, 1], { seed: 0, padding: "same", groups: 2 });
    expect(conv.weight.shape).toEqual([6, 2, 3, 1]);
    const x = uniform([2, 4, 5, 5], { seed: 1 });
    const expected = conv2d(x, conv.weight, { bias: conv.bias!, padding: "same", groups: 2 });
    expect([...conv.forward(x).data]).toEqual([...expected.data]);
    // PyTorch's default bound 1/√fanIn with fanIn = 2 · 3 · 1.
    expect(conv.weight.data.every((v) => Math.abs(v) <= 1 / Math.sqrt(6))).toBe(true);
  });

  it("rejects groups that do not divide the channels", () => {
    expect(() => new nn.Conv2d(3, 4, 3, { seed: 0, groups: 2 })).toThrow(
      "Conv2d: groups (2) must divide inChannels (3) and outChannels (4)",
    );
  });
});

describe("GroupNorm", () => {
  it("normalises each group of each sample to mean 0 and variance 1", () => {
    const gn = new nn.GroupNorm(2, 4, { dtype: "float64" });
    const x = uniform([3, 4, 2, 2], { low: -3, high: 5, seed: 2, dtype: "float64" });
    const y = gn.forward(x);
    for (let b = 0; b < 3; b++)
      for (let g = 0; g < 2; g++) {
        const values = Array.from(y.data.subarray(b * 16 + g * 8, b * 16 + g * 8 + 8));
        const mu = values.reduce((s, v) => s + v, 0) / 8;
        const variance = values.reduce((s, v) => s + (v - mu) ** 2, 0) / 8;
        expect(mu).toBeCloseTo(0, 10);
        expect(variance).toBeCloseTo(1, 4);
      }
  });

  it("has the right first and second derivatives in x, weight and bias", () => {
    const gn = new nn.GroupNorm(2, 4, { dtype: "float64" });
    gn.weight!.data.set([0.5, -1, 2, 1.5]);
    gn.bias!.data.set([0.1, 0.2, -0.3, 0]);
    fc.assert(
      fc.property(floatTensor([2, 4, 2, 1]), (x) => {
        assertGradcheck((a) => gn.forward(a), [x]);
        assertGradgradcheck((a) => gn.forward(a), [x]);
      }),
      { numRuns: 20 },
    );
  });

  it("rejects a group count that does not divide the channels, and the wrong channel count", () => {
    expect(() => new nn.GroupNorm(3, 4)).toThrow(
      "GroupNorm: numGroups (3) must be an integer >= 1 that divides numChannels (4)",
    );
    expect(() => new nn.GroupNorm(2, 4).forward(zeros([1, 6, 2, 2]))).toThrow(
      "GroupNorm: x of shape [1, 6, 2, 2] must be [batch, 4, ...] (4 channels)",
    );
  });
});

describe("BatchNorm2d", () => {
  it("normalises with batch statistics in training and updates the running ones", () => {
    const bn = new nn.BatchNorm2d(1, { dtype: "float64" });
    const x = tensor(
      [
        [
          [
            [1, 2],
            [3, 4],
          ],
        ],
      ],
      { dtype: "float64" },
    );
    const y = bn.forward(x);
    // mean 2.5, biased variance 1.25: y = (x − 2.5) / √(1.25 + 1e-5).
    const s = Math.sqrt(1.25 + 1e-5);
    expect([...y.data].map((v) => v.toFixed(8))).toEqual(
      [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s].map((v) => v.toFixed(8)),
    );
    // running_mean = 0.9 · 0 + 0.1 · 2.5 = 0.25; running_var = 0.9 · 1 + 0.1 · (5 / 3) (unbiased).
    expect(bn.runningMean.data[0]).toBeCloseTo(0.25, 12);
    expect(bn.runningVar.data[0]).toBeCloseTo(0.9 + 0.1 * (5 / 3), 12);
    expect(bn.numBatchesTracked.item()).toBe(1);
    // Eval mode uses the running statistics and leaves them alone.
    bn.eval();
    const z = bn.forward(tensor([[[[0.25]]]], { dtype: "float64" }));
    expect(z.item()).toBeCloseTo(0, 12);
    expect(bn.numBatchesTracked.item()).toBe(1);
  });

  it("has the right first and second derivatives in training mode", () => {
    const bn = new nn.BatchNorm2d(2, { dtype: "float64" });
    bn.weight!.data.set([1.5, -0.5]);
    fc.assert(
      fc.property(floatTensor([2, 2, 2, 1]), (x) => {
        assertGradcheck((a) => bn.forward(a), [x]);
        assertGradgradcheck((a) => bn.forward(a), [x]);
      }),
      { numRuns: 20 },
    );
  });

  it("trains its scale and shift", () => {
    const bn = new nn.BatchNorm2d(2);
    sum(mean(bn.forward(uniform([2, 2, 3, 3], { seed: 0 })), { axis: [0, 2, 3] })).backward();
    // The normalised values average 0 per channel, so d/dweight ≈ 0 and d/dbias = 1.
    expect(bn.bias!.grad?.toArray()).toEqual([1, 1]);
    bn.weight!.grad!.data.forEach((v) => {
      expect(Math.abs(v)).toBeLessThan(1e-6);
    });
  });

  it("rejects the wrong channel count and a single value per channel in training", () => {
    expect(() => new nn.BatchNorm2d(3).forward(zeros([2, 4, 2, 2]))).toThrow(
      "BatchNorm2d: x of shape [2, 4, 2, 2] must be [batch, 3, ...] (3 channels)",
    );
    expect(() => new nn.BatchNorm2d(3).forward(zeros([1, 3, 1, 1]))).toThrow(
      "BatchNorm2d: training needs more than one value per channel, got x of shape [1, 3, 1, 1]",
    );
  });
});

describe("constructor checks", () => {
  it("name the layer, the argument and the value", () => {
    expect(() => new nn.BatchNorm2d(0)).toThrow(
      "BatchNorm2d: numFeatures must be an integer >= 1, got 0",
    );
    expect(() => new nn.BatchNorm2d(2, { momentum: 2 })).toThrow(
      "BatchNorm2d: momentum must be in [0, 1], got 2",
    );
    expect(() => new nn.Conv2d(1, 1, 0, { seed: 0 })).toThrow(
      "Conv2d: kernelSize must be an integer >= 1, got 0",
    );
    expect(() => new nn.Flatten(3).forward(zeros([2, 3]))).toThrow(
      "Flatten: startAxis 3 is out of range for x of shape [2, 3]",
    );
    expect(() => new nn.BatchNorm2d(2).forward(zeros([2, 2, 3]))).toThrow(
      "BatchNorm2d: x must have rank 4 [batch, channels, height, width], got shape [2, 2, 3]",
    );
  });
});

describe("shape layers", () => {
  it("chains ReLU, MaxPool2d, Upsample and Flatten", () => {
    const net = new nn.Sequential(
      new nn.ReLU(),
      new nn.MaxPool2d({ kernelSize: 2 }),
      new nn.Upsample({ scaleFactor: 4 }),
      new nn.Flatten(),
    );
    const y = net.forward(
      tensor([
        [
          [
            [-1, 2],
            [3, -4],
          ],
        ],
      ]),
    );
    expect(y.shape).toEqual([1, 16]);
    expect(y.data.every((v) => v === 3)).toBe(true);
    expect(net.parameters()).toEqual([]);
    expect(() => new nn.Upsample({ scaleFactor: 2, mode: "bilinear" as "nearest" })).toThrow(
      'Upsample: only mode "nearest" is supported, got "bilinear"',
    );
  });
});
