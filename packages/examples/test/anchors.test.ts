/** Tests of the seeded synthetic anchor batches: shapes, exact counts, labels, reproducibility. */

import { describe, expect, it } from "vitest";
import { syntheticAnchorBatch } from "../src/data/anchors.js";

const small = { batch: 3, anchors: 200, classes: 4 };

describe("syntheticAnchorBatch", () => {
  it("shapes yTrue [B, N, C + 1] and yPred [B, N, C] in the requested dtype", () => {
    const b = syntheticAnchorBatch({ ...small, dtype: "float64" });
    expect(b.yTrue.shape).toEqual([3, 200, 5]);
    expect(b.yPred.shape).toEqual([3, 200, 4]);
    expect(b.yTrue.dtype).toBe("float64");
    expect(b.yPred.dtype).toBe("float64");
    expect(syntheticAnchorBatch(small).yPred.dtype).toBe("float32");
  });

  it("assigns exactly round(fraction · B · N) object and ignored anchors, the rest background", () => {
    const b = syntheticAnchorBatch({
      ...small,
      objectFraction: 0.05,
      ignoredFraction: 0.1,
      seed: 3,
    });
    expect(b.objectAnchors).toBe(30);
    expect(b.ignoredAnchors).toBe(60);
    expect(b.backgroundAnchors).toBe(510);
    const counts = new Map<number, number>();
    for (let a = 0; a < 600; a++) {
      const state = b.yTrue.data[a * 5 + 4];
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ "1": 30, "-1": 60, "0": 510 });
  });

  it("labels one class of each object anchor and none of the others", () => {
    const b = syntheticAnchorBatch({ ...small, objectFraction: 0.2, seed: 5 });
    for (let a = 0; a < 600; a++) {
      const row = Array.from(b.yTrue.data.subarray(a * 5, a * 5 + 4));
      const positives = row.filter((v) => v === 1).length;
      expect(row.every((v) => v === 0 || v === 1)).toBe(true);
      expect(positives).toBe(b.yTrue.data[a * 5 + 4] === 1 ? 1 : 0);
    }
  });

  it("keeps predictions strictly inside the cross-entropy's clip", () => {
    const { yPred } = syntheticAnchorBatch({ ...small, seed: 9 });
    const values = Array.from(yPred.data);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(Math.fround(1 / (1 + Math.exp(12))));
    expect(Math.max(...values)).toBeLessThanOrEqual(Math.fround(1 / (1 + Math.exp(-12))));
  });

  it("is reproducible from its seed and differs across seeds", () => {
    const a = syntheticAnchorBatch({ ...small, seed: 42 });
    const b = syntheticAnchorBatch({ ...small, seed: 42 });
    const c = syntheticAnchorBatch({ ...small, seed: 43 });
    expect(Array.from(a.yPred.data)).toEqual(Array.from(b.yPred.data));
    expect(Array.from(a.yTrue.data)).toEqual(Array.from(b.yTrue.data));
    expect(Array.from(a.yPred.data)).not.toEqual(Array.from(c.yPred.data));
  });

  it("rejects sizes that are not positive integers and fractions that do not fit", () => {
    expect(() => syntheticAnchorBatch({ ...small, batch: 0 })).toThrow(
      "syntheticAnchorBatch: batch must be a positive integer, got 0",
    );
    expect(() => syntheticAnchorBatch({ ...small, classes: 2.5 })).toThrow(/classes must be/);
    expect(() =>
      syntheticAnchorBatch({ ...small, objectFraction: 0.6, ignoredFraction: 0.5 }),
    ).toThrow(/must be >= 0 and sum to at most 1/);
  });
});
