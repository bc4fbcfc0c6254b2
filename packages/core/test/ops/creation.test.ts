/** Tests of ops/creation.ts and of a tensor's read-outs: values, dtypes, seeds and errors. */

import { describe, expect, it } from "vitest";
import {
  arange,
  type DType,
  full,
  Generator,
  linspace,
  logicalAnd,
  logicalNot,
  normal,
  ones,
  onesLike,
  type Shape,
  sum,
  tensor,
  uniform,
  zeros,
  zerosLike,
} from "../../src/index.js";

describe("tensor()", () => {
  it("infers shape and dtype from nested arrays", () => {
    const t = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe("float32");
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(tensor([[[true], [false]]]).dtype).toBe("bool");
    expect(tensor([]).shape).toEqual([0]);
    expect(tensor([[]]).shape).toEqual([1, 0]);
  });

  it("makes scalars from numbers and booleans", () => {
    const x = tensor(3.5);
    expect(x.shape).toEqual([]);
    expect(x.item()).toBe(3.5);
    expect(tensor(true).dtype).toBe("bool");
    expect(tensor(true).item()).toBe(1);
  });

  it("reads a flat array with an explicit shape", () => {
    const t = tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] });
    expect(t.toArray()).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
  });

  it("copies a typed array (of its own dtype or converted), as torch.tensor does", () => {
    const f64 = new Float64Array([1, 2, 3, 4, 5, 6]);
    const a = tensor(f64, { shape: [2, 3] });
    expect(a.dtype).toBe("float64");
    expect(a.data).not.toBe(f64);
    f64[0] = 100; // the caller's array is its own
    expect(a.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(tensor(new Int32Array([1, 2])).dtype).toBe("int32");
    expect(tensor(new Uint8Array([1, 0])).toArray()).toEqual([true, false]);
    const b = tensor(new Float32Array([1.5, 2.5]), { dtype: "float64" });
    expect(b.data).toBeInstanceOf(Float64Array);
    expect(b.toArray()).toEqual([1.5, 2.5]);
    // A typed array without a dtype of its own becomes float32.
    expect(tensor(new Int16Array([-3])).dtype).toBe("float32");
  });

  it("converts values to the requested dtype", () => {
    // int32 takes integers only (a fraction is an error, see test/adversarial/numbers.test.ts);
    // bool is "not 0".
    expect(tensor([7, -7], { dtype: "int32" }).toArray()).toEqual([7, -7]);
    expect(tensor([0, 2, -1], { dtype: "bool" }).toArray()).toEqual([false, true, true]);
    // NaN is not 0, so it is true, as cast() has it; −0 is 0.
    const nan = Number.NaN;
    expect(tensor([nan, -0], { dtype: "bool" }).toArray()).toEqual([true, false]);
    expect(tensor(new Float32Array([nan]), { dtype: "bool" }).toArray()).toEqual([true]);
    expect(full([1], nan, { dtype: "bool" }).toArray()).toEqual([true]);
    expect(tensor([true, false], { dtype: "float64" }).toArray()).toEqual([1, 0]);
    expect(tensor([0.1], { dtype: "float32" }).item()).toBe(Math.fround(0.1));
  });

  it("bytes other than 0 and 1 read as bool are normalised, so logic stays right", () => {
    const bytes = new Uint8Array([2, 0, 255]);
    const flags = tensor(bytes);
    expect(flags.dtype).toBe("bool");
    expect(flags.toArray()).toEqual([true, false, true]);
    // 2 & 1 would be 0 and 2 ^ 1 would be 3: the stored values must be 0 or 1.
    expect(logicalAnd(flags, tensor([true, true, true])).toArray()).toEqual([true, false, true]);
    expect(logicalNot(flags).toArray()).toEqual([false, true, false]);
    expect(sum(flags).item()).toBe(2);
    expect(Array.from(bytes)).toEqual([2, 0, 255]); // the caller's array is left alone
  });

  it("can require gradients, floats only", () => {
    expect(tensor([1], { requiresGrad: true }).requiresGrad).toBe(true);
    expect(() => tensor([1], { dtype: "int32", requiresGrad: true })).toThrow(
      "requiresGrad: only float32 and float64 tensors can require gradients, got int32",
    );
  });

  it("rejects ragged nested arrays", () => {
    expect(() => tensor([[1, 2], [3]])).toThrow(
      "tensor: nested arrays are ragged: expected 2 elements at depth 1, as in the first row",
    );
    expect(() => tensor([[1], 2] as number[][])).toThrow(
      "tensor: nested arrays are ragged: expected 1 elements at depth 1",
    );
    expect(() => tensor([1, [2]])).toThrow(
      "tensor: nested arrays are ragged (deeper than the first element)",
    );
  });

  it("rejects values that do not fill the shape, bad shapes and bad elements", () => {
    expect(() => tensor([1, 2, 3], { shape: [2, 2] })).toThrow(
      "tensor: 3 values do not fill shape [2, 2] (4 expected)",
    );
    expect(() => tensor([1], { shape: [-1] })).toThrow(
      "tensor: shape [-1] must hold non-negative integers",
    );
    expect(() => tensor(["1"] as unknown as number[])).toThrow(
      "tensor: element 0 is string; only numbers and booleans can be tensor elements",
    );
    expect(() => tensor("1" as unknown as number)).toThrow(
      "tensor: cannot make a tensor from string; pass a number, an array or a typed array",
    );
    expect(() => tensor(null as unknown as number)).toThrow(
      "tensor: cannot make a tensor from object",
    );
  });

  it("rejects an unknown dtype", () => {
    expect(() => tensor([1], { dtype: "uint8" as DType })).toThrow(
      'tensor: unknown dtype "uint8" (expected float32, float64, int32 or bool)',
    );
  });
});

describe("constants", () => {
  it("zeros, ones and full default to float32", () => {
    expect(zeros([2, 3]).toArray()).toEqual([
      [0, 0, 0],
      [0, 0, 0],
    ]);
    expect(ones([2]).dtype).toBe("float32");
    expect(ones([2], { dtype: "int32" }).toArray()).toEqual([1, 1]);
    expect(full([2, 2], 0.5).toArray()).toEqual([
      [0.5, 0.5],
      [0.5, 0.5],
    ]);
    expect(full([], 7, { dtype: "float64" }).item()).toBe(7);
    expect(zeros([0, 4]).size).toBe(0);
    expect(zeros([1], { requiresGrad: true }).requiresGrad).toBe(true);
  });

  it("full of bool stores true as 1", () => {
    const t = full([2], 5, { dtype: "bool" });
    expect(t.toArray()).toEqual([true, true]);
    expect(Array.from(t.data)).toEqual([1, 1]);
    expect(full([1], 0, { dtype: "bool" }).toArray()).toEqual([false]);
  });

  it("zerosLike and onesLike take the shape and dtype of their model", () => {
    const model = tensor([[1, 2, 3]], { dtype: "int32" });
    const z = zerosLike(model);
    expect(z.shape).toEqual([1, 3]);
    expect(z.dtype).toBe("int32");
    expect(z.toArray()).toEqual([[0, 0, 0]]);
    const o = onesLike(model, { dtype: "float64" });
    expect(o.dtype).toBe("float64");
    expect(o.toArray()).toEqual([[1, 1, 1]]);
  });

  it("reject bad shapes and dtypes", () => {
    expect(() => zeros([2.5])).toThrow("zeros: shape [2.5] must hold non-negative integers");
    expect(() => ones(3 as unknown as Shape)).toThrow(
      "ones: shape must be an array of sizes, got number",
    );
    expect(() => full([1], 1, { dtype: "complex64" as DType })).toThrow(
      'full: unknown dtype "complex64"',
    );
  });
});

describe("arange", () => {
  it("counts like numpy.arange", () => {
    const r = arange(4);
    expect(r.dtype).toBe("int32");
    expect(r.toArray()).toEqual([0, 1, 2, 3]);
    expect(arange(1, 7, 2).toArray()).toEqual([1, 3, 5]);
    expect(arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
    expect(arange(3, 1).shape).toEqual([0]);
    expect(arange(0, 3, 1, { dtype: "float64" }).dtype).toBe("float64");
  });

  it("is float32 as soon as any argument is fractional", () => {
    const quarter = arange(0, 1, 0.25);
    expect(quarter.dtype).toBe("float32");
    expect(quarter.toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    expect(arange(0.5, 3).toArray()).toEqual([0.5, 1.5, 2.5]);
    // numpy.arange(0, 2.5) is [0., 1., 2.]: a fractional stop makes floats too.
    const r = arange(0, 2.5);
    expect(r.dtype).toBe("float32");
    expect(r.toArray()).toEqual([0, 1, 2]);
  });

  it("rejects a zero step and non-finite bounds", () => {
    expect(() => arange(0, 1, 0)).toThrow("arange: step must not be 0");
    expect(() => arange(Number.POSITIVE_INFINITY)).toThrow(
      "arange: stop must be a finite number, got Infinity",
    );
    expect(() => arange(0, 1, Number.NaN)).toThrow("arange: step must be a finite number, got NaN");
  });
});

describe("uniform and normal", () => {
  it("are reproducible for a seed and differ between seeds", () => {
    const a = uniform([3, 4], { seed: 42 });
    const b = uniform([3, 4], { seed: 42 });
    const c = uniform([3, 4], { seed: 43 });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(c.data));
    expect(Array.from(normal([5], { seed: 1 }).data)).toEqual(
      Array.from(normal([5], { seed: 1 }).data),
    );
    expect(Array.from(normal([5], { seed: 1 }).data)).not.toEqual(
      Array.from(normal([5], { seed: 2 }).data),
    );
  });

  it("draw from a shared generator in sequence", () => {
    const gen = new Generator(7);
    const first = uniform([4], { generator: gen, dtype: "float64" });
    const second = uniform([4], { generator: gen, dtype: "float64" });
    expect(Array.from(first.data)).not.toEqual(Array.from(second.data));
    // The two draws together are one draw of 8 from a fresh generator with the same seed.
    const both = uniform([8], { generator: new Generator(7), dtype: "float64" });
    expect([...first.data, ...second.data]).toEqual(Array.from(both.data));
  });

  it("respect their ranges and moments", () => {
    const u = uniform([2000], { low: -1, high: 3, seed: 5, dtype: "float64" });
    const us = Array.from(u.data);
    expect(Math.min(...us)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...us)).toBeLessThan(3);
    const n = Array.from(normal([4000], { mean: 2, std: 0.5, seed: 9, dtype: "float64" }).data);
    const m = n.reduce((a, b) => a + b, 0) / n.length;
    const sd = Math.sqrt(n.reduce((a, b) => a + (b - m) ** 2, 0) / n.length);
    // Standard errors: 0.5/√4000 ≈ 0.008 for the mean, ≈ 0.006 for the deviation.
    expect(Math.abs(m - 2)).toBeLessThan(0.05);
    expect(Math.abs(sd - 0.5)).toBeLessThan(0.05);
    expect(uniform([2], { seed: 0 }).dtype).toBe("float32");
    expect(normal([2], { seed: 0, requiresGrad: true }).requiresGrad).toBe(true);
  });

  it("require a seed or a generator", () => {
    expect(() => uniform([2])).toThrow(
      "uniform: pass a seed or a generator, so that the draw is reproducible",
    );
    expect(() => normal([2])).toThrow(
      "normal: pass a seed or a generator, so that the draw is reproducible",
    );
  });

  it("reject non-float dtypes and bad parameters", () => {
    expect(() => uniform([2], { seed: 0, dtype: "int32" })).toThrow(
      "uniform: dtype must be float32 or float64, got int32",
    );
    expect(() => uniform([2], { seed: 0, low: 1, high: 0 })).toThrow(
      "uniform: low (1) must not exceed high (0)",
    );
    expect(() => normal([2], { seed: 0, std: -1 })).toThrow("normal: std must be >= 0, got -1");
    expect(() => normal([-2], { seed: 0 })).toThrow(
      "normal: shape [-2] must hold non-negative integers",
    );
    expect(() => new Generator(Number.NaN)).toThrow(
      "Generator: seed must be a finite number, got NaN",
    );
  });
});

describe("read-outs", () => {
  it("toArray nests by shape; bools come back as booleans", () => {
    expect(tensor(2).toArray()).toBe(2);
    expect(tensor([[true, false]]).toArray()).toEqual([[true, false]]);
    expect(
      tensor([1, 2, 3, 4, 5, 6, 7, 8], { shape: [2, 2, 2], dtype: "int32" }).toArray(),
    ).toEqual([
      [
        [1, 2],
        [3, 4],
      ],
      [
        [5, 6],
        [7, 8],
      ],
    ]);
    expect(zeros([2, 0]).toArray()).toEqual([[], []]);
  });

  it("item needs exactly one element", () => {
    expect(tensor([[4]]).item()).toBe(4);
    expect(() => tensor([1, 2]).item()).toThrow(
      "item: only a tensor with exactly one element has an item, got shape [2]",
    );
    expect(() => zeros([0]).item()).toThrow("got shape [0]");
  });

  it("toString shows values, shape, dtype and requiresGrad", () => {
    expect(
      tensor([
        [1, 2],
        [3, 4],
      ]).toString(),
    ).toBe("tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2], dtype=float32)");
    expect(tensor([1, 2], { dtype: "int32" }).toString()).toBe(
      "tensor([1, 2], shape=[2], dtype=int32)",
    );
    expect(tensor([true, false]).toString()).toBe("tensor([true, false], shape=[2], dtype=bool)");
    expect(tensor(0.1).toString()).toBe("tensor(0.1, shape=[], dtype=float32)");
    expect(tensor([0.5], { dtype: "float64", requiresGrad: true }).toString()).toBe(
      "tensor([0.5], shape=[1], dtype=float64, requiresGrad=true)",
    );
  });

  it("toString summarises large tensors", () => {
    expect(arange(2000).toString()).toBe(
      "tensor([0, 1, 2, ..., 1997, 1998, 1999], shape=[2000], dtype=int32)",
    );
  });
});

describe("linspace", () => {
  it("spaces steps values evenly from start to end, both exact", () => {
    const quarters = linspace(0, 1, 5);
    expect(quarters.dtype).toBe("float32");
    expect(Array.from(quarters.data)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    // 0 … 10 in 4 steps of 10/3: the first half counts up from 0 (0, 10/3), the second down from
    // 10 (10 − 10/3, 10), as PyTorch, so 10 is exact.
    const thirds = linspace(0, 10, 4, { dtype: "float64" });
    expect(Array.from(thirds.data)).toEqual([0, 10 / 3, 10 - 10 / 3, 10]);
    expect(Array.from(linspace(5, -5, 3).data)).toEqual([5, 0, -5]);
    expect(Array.from(linspace(2, 7, 1).data)).toEqual([2]);
    expect(linspace(0, 1, 0).shape).toEqual([0]);
    // In float32 the step is a float32: (float32(0.3) − 0) / 2, rounded.
    const step = Math.fround(Math.fround(0.3) / 2);
    expect(Array.from(linspace(0, 0.3, 3).data)).toEqual([
      0,
      Math.fround(0.3) - step,
      Math.fround(0.3),
    ]);
    // int32 truncates, as PyTorch: 0, 3.33…, 6.66…, 10.
    expect(Array.from(linspace(0, 10, 4, { dtype: "int32" }).data)).toEqual([0, 3, 6, 10]);
  });

  it("rejects non-finite ends, bad steps and a bool dtype", () => {
    expect(() => linspace(0, Number.NaN, 3)).toThrow(
      "linspace: end must be a finite number, got NaN",
    );
    expect(() => linspace(Infinity, 1, 3)).toThrow(
      "linspace: start must be a finite number, got Infinity",
    );
    expect(() => linspace(0, 1, 2.5)).toThrow("linspace: steps must be an integer >= 0, got 2.5");
    expect(() => linspace(0, 1, -1)).toThrow("linspace: steps must be an integer >= 0, got -1");
    expect(() => linspace(0, 1, 3, { dtype: "bool" })).toThrow(
      "linspace: dtype must be numeric, got bool",
    );
  });
});
