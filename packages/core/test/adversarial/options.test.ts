// Plain-JavaScript callers: an options object of the wrong type, with an unknown key or with a
// wrongly typed value is an error naming the op and the key, in every op, layer and optimiser.

import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";
import { checkOptions } from "../../src/ops/util.js";

// Calls as plain JavaScript would make them: no types to stop them.
// biome-ignore lint/suspicious/noExplicitAny: these calls are the point of the test
const js = F as any;
const x = F.uniform([2, 3], { seed: 0 });

describe("checkOptions", () => {
  const spec = { axis: "axes", keepdims: "boolean" } as const;
  it("accepts undefined, a plain object and undefined values", () => {
    expect(checkOptions("op", undefined, spec)).toEqual({});
    expect(checkOptions("op", { axis: [0, 1], keepdims: undefined }, spec)).toEqual({
      axis: [0, 1],
      keepdims: undefined,
    });
    expect(checkOptions("op", Object.create(null), spec)).toEqual({});
  });

  it("rejects numbers, arrays, tensors, null, unknown keys and wrong types", () => {
    const bad = (options: unknown) => () => checkOptions("op", options as object, spec);
    expect(bad(0)).toThrow(
      "op: options must be an object such as { axis: … } (keys: axis, keepdims), got 0",
    );
    expect(bad([0])).toThrow(
      "op: options must be an object such as { axis: … } (keys: axis, keepdims), got an array [0]",
    );
    expect(bad(x)).toThrow("got a float32 tensor of shape [2, 3]");
    expect(bad(new Float32Array(2))).toThrow("got a Float32Array");
    expect(bad(null)).toThrow("got null");
    expect(bad("axis")).toThrow('got the string "axis"');
    expect(bad({ axes: 0 })).toThrow('op: unknown option "axes" (expected axis, keepdims)');
    expect(bad({ keepdims: 1 })).toThrow("op: option keepdims must be true or false, got 1");
    expect(bad({ axis: "0" })).toThrow(
      'op: option axis must be an integer axis or an array of them, got the string "0"',
    );
    expect(
      bad({ axis: 0, [Symbol("hidden")]: 1, keepdims: true }),
      "symbols are not options keys",
    ).not.toThrow();
  });
});

describe("ops", () => {
  it("reductions: sum(x, 0) and sum(x, { axes: 0 }) no longer reduce everything", () => {
    expect(() => js.sum(x, 0)).toThrow(
      "sum: options must be an object such as { axis: … } (keys: axis, keepdims), got 0",
    );
    expect(() => js.sum(x, { axes: 0 })).toThrow('sum: unknown option "axes"');
    expect(() => js.mean(x, { axis: 0, keepDims: true })).toThrow(
      'mean: unknown option "keepDims"',
    );
    expect(() => js.max(x, { keepdims: "yes" })).toThrow(
      "max: option keepdims must be true or false",
    );
    expect(() => js.min(x, [1])).toThrow("min: options must be an object");
    expect(() => js.logSumExp(x, { axis: [0], dims: 1 })).toThrow(
      'logSumExp: unknown option "dims"',
    );
    // The right calls still work.
    expect(F.sum(x, { axis: 0 }).shape).toEqual([3]);
  });

  it("softmax and logSoftmax take a number axis, not an options object", () => {
    expect(() => js.softmax(x, { axis: 0 })).toThrow(
      "softmax: axis must be an integer (the second argument, default -1), got an object (Object)",
    );
    expect(() => js.logSoftmax(x, [0])).toThrow("logSoftmax: axis must be an integer");
    expect(() => F.softmax(x, 2)).toThrow("softmax: axis 2 is out of range");
  });

  it("conv2d(x, w, bias) is an error, not a convolution without its bias", () => {
    const image = F.zeros([1, 1, 3, 3]);
    const w = F.zeros([2, 1, 1, 1]);
    const bias = F.ones([2]);
    expect(() => js.conv2d(image, w, bias)).toThrow(
      "conv2d: options must be an object such as { bias: … } (keys: bias, stride, padding, dilation, groups), got a float32 tensor of shape [2]",
    );
    expect(() => js.conv2d(image, w, { bias: [1, 1] })).toThrow(
      "conv2d: option bias must be a Tensor, got an array [1, 1]",
    );
    expect(() => js.conv2d(image, w, { strides: 2 })).toThrow('conv2d: unknown option "strides"');
    expect(F.conv2d(image, w, { bias }).toArray()).toEqual([
      [
        [
          [1, 1, 1],
          [1, 1, 1],
          [1, 1, 1],
        ],
        [
          [1, 1, 1],
          [1, 1, 1],
          [1, 1, 1],
        ],
      ],
    ]);
  });

  it("pools, upsample, creation and cross-entropy", () => {
    const image = F.zeros([1, 1, 4, 4]);
    expect(() => js.maxPool2d(image, 2)).toThrow("maxPool2d: options must be an object");
    expect(() => js.avgPool2d(image, { kernel: 2 })).toThrow('avgPool2d: unknown option "kernel"');
    expect(() => js.upsampleNearest2d(image, { scale: 2 })).toThrow(
      'upsampleNearest2d: unknown option "scale"',
    );
    expect(() => js.zeros([2], "float64")).toThrow("zeros: options must be an object");
    expect(() => js.ones([2], { dtype: "float64", grad: true })).toThrow(
      'ones: unknown option "grad"',
    );
    expect(() => js.tensor([1], { requiresGrad: "yes" })).toThrow(
      "tensor: option requiresGrad must be true or false",
    );
    expect(() => js.tensor([1], { dtpe: "int32" })).toThrow('tensor: unknown option "dtpe"');
    expect(() => js.arange(0, 4, 1, { dtype: "int32", shape: [4] })).toThrow(
      'arange: unknown option "shape"',
    );
    expect(() => js.uniform([2], { seed: 0, min: -1 })).toThrow('uniform: unknown option "min"');
    expect(() => js.normal([2], { seed: 0, stddev: 1 })).toThrow('normal: unknown option "stddev"');
    expect(() => js.uniform([2], { generator: { seed: 0 } })).toThrow(
      "uniform: option generator must be a Generator",
    );
    expect(() => js.binaryCrossEntropy(x, x, { eps: 0.1 })).toThrow(
      'binaryCrossEntropy: unknown option "eps"',
    );
  });
});

describe("the sorting, arg-reduction and grid ops", () => {
  it("name the op and the key", () => {
    expect(() => js.sort(x, { axis: 0, ascending: true })).toThrow(
      'sort: unknown option "ascending"',
    );
    expect(() => js.argsort(x, -1)).toThrow("argsort: options must be an object");
    expect(() => js.topk(x, 1, { axis: [0] })).toThrow(
      "topk: option axis must be an integer axis, got an array [0]",
    );
    expect(() => js.argmax(x, { axes: 0 })).toThrow('argmax: unknown option "axes"');
    expect(() => js.argmin(x, { keepdims: 0 })).toThrow(
      "argmin: option keepdims must be true or false",
    );
    expect(() => js.linspace(0, 1, 3, { step: 1 })).toThrow('linspace: unknown option "step"');
    expect(() => js.oneHot(F.tensor([0], { dtype: "int32" }), 2, "float32")).toThrow(
      "oneHot: options must be an object",
    );
    expect(() => js.meshgrid([F.arange(2)], { index: "xy" })).toThrow(
      'meshgrid: unknown option "index"',
    );
  });
});

describe("nn and optim constructors", () => {
  it("layers and norms", () => {
    expect(() => new js.nn.Linear(2, 3, { seed: 0, bais: false })).toThrow(
      'Linear: unknown option "bais"',
    );
    expect(() => new js.nn.Linear(2, 3, 0)).toThrow("Linear: options must be an object");
    expect(() => new js.nn.Conv2d(1, 2, 3, { seed: 0, pad: 1 })).toThrow(
      'Conv2d: unknown option "pad"',
    );
    expect(() => new js.nn.Conv2d(1, 2, 3, { seed: 0, dtype: "int32" })).toThrow(
      'Conv2d: option dtype must be "float32" or "float64"',
    );
    expect(() => new js.nn.GroupNorm(1, 2, { esp: 1e-5 })).toThrow(
      'GroupNorm: unknown option "esp"',
    );
    expect(() => new js.nn.BatchNorm2d(2, { momentum: "0.1" })).toThrow(
      "BatchNorm2d: option momentum must be a number",
    );
    expect(() => new js.nn.MaxPool2d({ size: 2 })).toThrow('MaxPool2d: unknown option "size"');
    expect(() => new js.nn.Upsample({ scaleFactor: 2, align: true })).toThrow(
      'Upsample: unknown option "align"',
    );
    const w = F.zeros([2, 2]);
    expect(() => js.nn.init.kaimingUniform(w, { seed: 0, fan: "in" })).toThrow(
      'kaimingUniform: unknown option "fan"',
    );
    expect(() => js.nn.init.xavierNormal(w, { seed: 0, gain: "1" })).toThrow(
      "xavierNormal: option gain must be a number",
    );
  });

  it("optimisers and schedules", () => {
    const p = F.zeros([2], { requiresGrad: true });
    expect(() => new js.optim.SGD([p], 0.1)).toThrow("SGD: options must be an object");
    expect(() => new js.optim.SGD([p], { lr: 0.1, nesterow: true })).toThrow(
      'SGD: unknown option "nesterow"',
    );
    expect(() => new js.optim.Adam([p], { learningRate: 0.1 })).toThrow(
      'Adam: unknown option "learningRate"',
    );
    expect(() => new js.optim.AdamW([p], { betas: 0.9 })).toThrow(
      "AdamW: option betas must be a pair [a, b] of numbers, got 0.9",
    );
    expect(() => js.optim.cosineDecay({ lr: 0.1, steps: 10 })).toThrow(
      'cosineDecay: unknown option "steps"',
    );
    expect(() => js.optim.stepDecay(0.1)).toThrow("stepDecay: options must be an object");
  });
});
