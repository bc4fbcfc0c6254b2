// Sizes and counts: a shape whose element count a tensor cannot hold is an error naming the op
// and the shape, from every op that makes a new shape, never a bare RangeError or a wrapped count.

import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";
import { maxElements } from "../../src/shape.js";

const huge = [1e9, 1e9, 1e9]; // 1e27 elements: "Invalid typed array length: 1e+27" before
const over = 2 ** 31; // one more than the limit

describe("the element limit", () => {
  it("is 2^31 − 1, so that flat positions and int32 indices stay exact", () => {
    expect(maxElements).toBe(2147483647);
  });

  it("creation ops name themselves and the shape", () => {
    for (const [op, make] of [
      ["zeros", () => F.zeros(huge)],
      ["ones", () => F.ones(huge)],
      ["full", () => F.full(huge, 2)],
      ["uniform", () => F.uniform(huge, { seed: 0 })],
      ["normal", () => F.normal(huge, { seed: 0 })],
    ] as const) {
      expect(make, op).toThrow(
        `${op}: shape [1000000000, 1000000000, 1000000000] has 1.000e+27 elements`,
      );
    }
    // One past the limit, and a single axis past it even when another axis is 0.
    expect(() => F.zeros([over])).toThrow("zeros: shape [2147483648] has 2.147e+9 elements");
    expect(() => F.zeros([over, 0])).toThrow(
      "zeros: shape [2147483648, 0] has an axis of size 2147483648",
    );
    expect(() => F.arange(0, 3e9)).toThrow("arange: shape [3000000000]");
    expect(() => F.arange(0, 1, 1e-12)).toThrow("arange: shape [1000000000000]");
  });

  it("broadcasts are checked where the shape is made", () => {
    // Before: sum(broadcastTo(tensor(1), [65536, 65536])) returned 0 (a loop count of 2^32
    // wrapped in an Int32Array). 65536² = 2^32 elements.
    expect(() => F.sum(F.broadcastTo(F.tensor(1), [65536, 65536]))).toThrow(
      "broadcastTo: shape [65536, 65536] has 4.295e+9 elements",
    );
    const column = F.zeros([65536, 1]);
    const row = F.zeros([1, 65536]);
    expect(() => F.add(column, row)).toThrow("add: shape [65536, 65536]");
    expect(() => F.mul(column, row)).toThrow("mul: shape [65536, 65536]");
    expect(() => F.where(F.greater(column, 0), column, row)).toThrow("where: shape [65536, 65536]");
    expect(() => F.broadcastTo(F.tensor(1), [-1])).toThrow(
      "broadcastTo: shape [-1] must hold non-negative integers",
    );
  });

  it("matmul, pad, concat, stack, gather and the scatters check their output shapes", () => {
    const tall = F.zeros([65536, 1]);
    expect(() => F.matmul(tall, F.zeros([1, 65536]))).toThrow("matmul: shape [65536, 65536]");
    expect(() => F.pad(F.zeros([1]), [[0, over]])).toThrow("pad: shape [2147483649]");
    const big = F.zeros([1 << 20, 1024], { dtype: "bool" }); // 2^30 elements: allowed
    expect(big.size).toBe(2 ** 30);
    expect(() => F.concat([big, big], 0)).toThrow("concat: shape [2097152, 1024]");
    expect(() => F.stack([big, big], 0)).toThrow("concat: shape [2, 1048576, 1024]");
    const indices = F.zeros([65536], { dtype: "int32" });
    expect(() => F.gather(F.zeros([1, 65536]), indices, 0)).toThrow("gather: shape [65536, 65536]");
    const rows = F.zeros([65536, 1], { dtype: "int32" });
    expect(() => F.gatherNd(F.zeros([1, 65536]), rows)).toThrow("gatherNd: shape [65536, 65536]");
    expect(() => F.scatterNd(rows, F.zeros([65536, 65536 * 0]), huge)).toThrow(
      "scatterNd: shape [1000000000, 1000000000, 1000000000]",
    );
    expect(() => F.scatterAdd(indices, F.zeros([65536]), 0, [over])).toThrow(
      "scatterAdd: shape [2147483648]",
    );
  });

  it("conv, pool and upsample outputs are checked before anything is allocated", () => {
    const x = F.zeros([1, 1, 1, 1]);
    expect(() => F.upsampleNearest2d(x, { scaleFactor: [65536, 65536] })).toThrow(
      "upsampleNearest2d: shape [1, 1, 65536, 65536]",
    );
    // A 1 × 1 kernel with 2^16 rows of zero padding on each side: (1 + 2^17)² outputs.
    const w = F.zeros([1, 1, 1, 1]);
    expect(() => F.conv2d(x, w, { padding: 65536 })).toThrow(
      "conv2d: shape [1, 1, 131073, 131073]",
    );
  });

  it("shapes up to the limit in one axis of size 0 are fine (empty)", () => {
    expect(F.zeros([maxElements, 0]).size).toBe(0);
    expect(F.add(F.zeros([0, 3]), F.zeros([1, 3])).shape).toEqual([0, 3]);
  });
});

describe("the grid and repetition ops", () => {
  it("linspace, tile, meshgrid and oneHot name themselves", () => {
    expect(() => F.linspace(0, 1, 2 ** 31)).toThrow("linspace: shape [2147483648]");
    expect(() => F.tile(F.zeros([65536]), [65536])).toThrow("tile: shape [4294967296]");
    const axis = F.zeros([65536]);
    expect(() => F.meshgrid([axis, axis])).toThrow("meshgrid: shape [65536, 65536]");
    expect(() => F.oneHot(F.zeros([65536], { dtype: "int32" }), 65536)).toThrow(
      "oneHot: shape [65536, 65536]",
    );
  });
});

describe("reshape", () => {
  it("keeps the size, and no axis of an empty tensor may pass the limit", () => {
    expect(F.reshape(F.zeros([0]), [65536, 0]).shape).toEqual([65536, 0]);
    expect(() => F.reshape(F.zeros([0]), [2 ** 31, 0])).toThrow(
      "reshape: shape [2147483648, 0] has an axis of size 2147483648",
    );
  });
});
