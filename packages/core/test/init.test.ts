import { describe, expect, it } from "vitest";
import { Generator, manualSeed, nn, sigmoid, tensor, zeros } from "../src/index.js";

const { init } = nn;

function stats(t: { data: ArrayLike<number> }): { mean: number; std: number; maxAbs: number } {
  const n = t.data.length;
  let s = 0;
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    s += t.data[i];
    maxAbs = Math.max(maxAbs, Math.abs(t.data[i]));
  }
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (t.data[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / n), maxAbs };
}

describe("fans and gains", () => {
  it("computes fan in and fan out as PyTorch does", () => {
    // Conv weight [16, 3, 3, 3]: fanIn = 3 · 9 = 27, fanOut = 16 · 9 = 144.
    expect(init.fans(zeros([16, 3, 3, 3]))).toEqual([27, 144]);
    expect(init.fans(zeros([8, 4]))).toEqual([4, 8]);
    expect(() => init.fans(zeros([8]))).toThrow(
      "fans: fan in and fan out need a tensor of rank >= 2 ([out, in, ...kernel]), got shape [8]",
    );
  });

  it("gives PyTorch's gains", () => {
    expect(init.gain("relu")).toBe(Math.SQRT2);
    expect(init.gain("leakyRelu", 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04), 15);
    expect(init.gain("tanh")).toBe(5 / 3);
    expect(init.gain("linear")).toBe(1);
  });
});

describe("initialisers", () => {
  // Large tensors, so that sample statistics are within a few percent of the distribution's.
  const shape = [256, 128, 3, 3]; // fanIn 1152, fanOut 2304

  it("kaimingUniform draws from U(−b, b), b = √2 · √(3 / fanIn)", () => {
    const t = init.kaimingUniform(zeros(shape), { seed: 0 });
    const bound = Math.SQRT2 * Math.sqrt(3 / 1152);
    const s = stats(t);
    expect(s.maxAbs).toBeLessThanOrEqual(bound);
    expect(s.maxAbs).toBeGreaterThan(0.99 * bound);
    expect(s.std).toBeCloseTo(Math.sqrt(2 / 1152), 3);
  });

  it("kaimingNormal draws from N(0, 2 / fan), with fan out on request", () => {
    const s = stats(init.kaimingNormal(zeros(shape), { seed: 1, mode: "fanOut" }));
    expect(Math.abs(s.mean)).toBeLessThan(1e-3);
    expect(s.std / Math.sqrt(2 / 2304)).toBeCloseTo(1, 2);
    expect(() => init.kaimingNormal(zeros(shape), { seed: 1, mode: "fan" as "fanIn" })).toThrow(
      'kaimingNormal: mode must be "fanIn" or "fanOut", got "fan"',
    );
  });

  it("xavierUniform and xavierNormal use 2 / (fanIn + fanOut)", () => {
    const u = stats(init.xavierUniform(zeros(shape), { seed: 2 }));
    expect(u.maxAbs).toBeLessThanOrEqual(Math.sqrt(6 / 3456));
    expect(u.std / Math.sqrt(2 / 3456)).toBeCloseTo(1, 2);
    const n = stats(init.xavierNormal(zeros(shape), { seed: 3, gain: 2 }));
    expect(n.std / (2 * Math.sqrt(2 / 3456))).toBeCloseTo(1, 2);
  });

  it("normal(std) fills with N(mean, std²)", () => {
    const s = stats(init.normal(zeros([100000]), { std: 0.01, seed: 4 }));
    expect(Math.abs(s.mean)).toBeLessThan(1e-4);
    expect(s.std / 0.01).toBeCloseTo(1, 2);
    expect(() => init.normal(zeros([2]), { std: -1, seed: 0 })).toThrow(
      "normal: std must be a finite number >= 0, got -1",
    );
  });

  it("the prior-probability bias is −log((1 − π) / π): −log 99 for π = 0.01", () => {
    expect(init.priorProbabilityBias()).toBe(-Math.log(99));
    expect(init.priorProbabilityBias(0.01)).toBeCloseTo(-4.59511985013459, 14);
    const bias = init.priorBias(zeros([3], { dtype: "float64" }));
    expect(bias.data.every((v) => v === -Math.log(99))).toBe(true);
    expect(sigmoid(bias).data[0]).toBeCloseTo(0.01, 15);
    expect(() => init.priorProbabilityBias(1)).toThrow(
      "priorProbabilityBias: pi must be a probability in (0, 1), got 1",
    );
  });

  it("is reproducible bit for bit from a seed, and a generator advances", () => {
    const a = init.kaimingUniform(zeros([64, 32]), { seed: 7 });
    const b = init.kaimingUniform(zeros([64, 32]), { seed: 7 });
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    const gen = new Generator(7);
    const first = init.xavierNormal(zeros([4, 4]), { generator: gen });
    const second = init.xavierNormal(zeros([4, 4]), { generator: gen });
    expect([...first.data]).not.toEqual([...second.data]);
    const replay = new Generator(7);
    expect([...init.xavierNormal(zeros([4, 4]), { generator: replay }).data]).toEqual([
      ...first.data,
    ]);
  });

  it("fills in place and returns the same tensor; rejects int tensors", () => {
    const t = zeros([2, 2]);
    expect(init.constant(t, 3)).toBe(t);
    expect(t.toArray()).toEqual([
      [3, 3],
      [3, 3],
    ]);
    // Without a source the default generator is used: reseeded, it repeats a fresh one's draw.
    manualSeed(11);
    const drawn = init.kaimingUniform(zeros([2, 2]));
    expect(drawn.toArray()).toEqual(init.kaimingUniform(zeros([2, 2]), { seed: 11 }).toArray());
    expect(() => init.constant(tensor([1], { dtype: "int32" }), 0)).toThrow(
      "constant: the tensor to fill must be float32 or float64",
    );
  });
});
