/** Tests of randperm and DataLoader: permutations, epochs, batch contents, reproducibility. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  arange,
  DataLoader,
  manualSeed,
  randperm,
  reshape,
  sum,
  type Tensor,
  tensor,
} from "../src/index.js";
import { assertGradcheck, floatTensor } from "../src/testing/index.js";

const sorted = (values: number[]) => [...values].sort((a, b) => a - b);

describe("randperm", () => {
  it("is a permutation of 0 … n − 1, int32, the same for a seed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 50 }), fc.integer(), (n, seed) => {
        const p = randperm(n, { seed });
        expect(p.dtype).toBe("int32");
        expect(sorted(p.toArray() as number[])).toEqual([...Array(n).keys()]);
        expect(randperm(n, { seed }).toArray()).toEqual(p.toArray());
      }),
      { numRuns: 50 },
    );
  });

  it("draws from the default generator, and shuffles (not the identity, for 20 elements)", () => {
    manualSeed(2);
    const a = randperm(20).toArray();
    manualSeed(2);
    expect(randperm(20).toArray()).toEqual(a);
    expect(a).not.toEqual([...Array(20).keys()]);
    expect(() => randperm(-1)).toThrow("randperm: n must be an integer >= 0, got -1");
  });
});

describe("DataLoader", () => {
  const images = () => reshape(arange(0, 10, 1, { dtype: "float64" }), [10, 1]);
  const labels = () => arange(100, 110);

  it("yields batches in order, a smaller last one unless dropLast", () => {
    const loader = new DataLoader([images(), labels()], { batchSize: 4 });
    expect(loader.length).toBe(3);
    const batches = [...loader];
    expect(batches.map(([x]) => x.shape[0])).toEqual([4, 4, 2]);
    expect(batches[2][0].toArray()).toEqual([[8], [9]]);
    expect(batches[2][1].toArray()).toEqual([108, 109]);
    const dropping = new DataLoader([images()], { batchSize: 4, dropLast: true });
    expect(dropping.length).toBe(2);
    expect([...dropping].length).toBe(2);
    expect(new DataLoader([images()]).length).toBe(10);
  });

  it("shuffles every epoch anew, keeps each sample's tensors together, and visits all once", () => {
    const loader = new DataLoader([images(), labels()], { batchSize: 3, shuffle: true, seed: 5 });
    const epoch = () =>
      [...loader].flatMap(([x, y]) => {
        const xs = (x.toArray() as number[][]).map(([v]) => v);
        const ys = y.toArray() as number[];
        expect(ys).toEqual(xs.map((v) => 100 + v));
        return xs;
      });
    const first = epoch();
    const second = epoch();
    expect(sorted(first)).toEqual([...Array(10).keys()]);
    expect(sorted(second)).toEqual([...Array(10).keys()]);
    expect(second).not.toEqual(first);
    // The same seed replays the same epochs.
    const again = new DataLoader([images(), labels()], { batchSize: 3, shuffle: true, seed: 5 });
    expect([...again].flatMap(([x]) => (x.toArray() as number[][]).map(([v]) => v))).toEqual(first);
  });

  it("passes gradients back to the samples of the batch", () => {
    fc.assert(
      fc.property(floatTensor([5, 2]), (data) => {
        const f = (t: Tensor) => {
          const [[x]] = [...new DataLoader([t], { batchSize: 3, shuffle: true, seed: 1 })];
          return sum(x.mul(x));
        };
        assertGradcheck(f, [data]);
      }),
      { numRuns: 20 },
    );
  });

  it("rejects tensors of different lengths and a bad batch size", () => {
    expect(() => new DataLoader([images(), arange(3)])).toThrow(
      "DataLoader: every tensor must have the same first axis (the samples), got [10, 1] and [3] at tensors[1]",
    );
    expect(() => new DataLoader([images()], { batchSize: 0 })).toThrow(
      "DataLoader: batchSize must be an integer >= 1, got 0",
    );
    expect(() => new DataLoader([])).toThrow(
      "DataLoader: tensors must be a non-empty array of tensors",
    );
    expect(() => new DataLoader([tensor(1)])).toThrow(/same first axis/);
  });
});
