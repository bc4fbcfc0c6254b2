import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as F from "../src/index.js";
import { exp, mul, sum, type Tensor, tensor } from "../src/index.js";
import { broadcastShapes } from "../src/shape.js";
import {
  broadcastPair,
  floatTensor,
  gradcheck,
  gradgradcheck,
  indexTensor,
  shape,
  withFusion,
} from "../src/testing/index.js";

describe("gradcheck's report", () => {
  it("gives the errors, the element compared and how many were checked", () => {
    const x = tensor([0.1, 0.2, 0.3], { dtype: "float64" });
    const report = gradcheck((t) => sum(exp(t)), [x]);
    expect(report.ok).toBe(true);
    expect(report.checked).toBe(3);
    expect(report.maxAbsError).toBeLessThan(1e-8);
    expect(report.worst?.input).toBe(0);
  });

  it("checks a non-scalar output through a projection, and only the inputs in wrt", () => {
    const a = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: "float64" },
    );
    const b = tensor([0.5, -1], { dtype: "float64" });
    const report = gradcheck((x, y) => mul(x, y), [a, b], { wrt: [1] });
    expect(report.ok).toBe(true);
    expect(report.checked).toBe(2);
    expect(gradgradcheck((x: Tensor) => mul(mul(x, x), x), [b]).ok).toBe(true);
  });

  it("rejects a wrt index that names no float input", () => {
    const idx = tensor([0], { dtype: "int32" });
    expect(() => gradcheck((x) => sum(x), [idx], { wrt: [0] })).toThrow(
      /wrt index 0 does not name a float input/,
    );
  });
});

describe("arbitraries", () => {
  it("shape respects its bounds", () => {
    fc.assert(
      fc.property(shape({ minRank: 1, maxRank: 2, minSide: 2, maxSide: 3 }), (s) => {
        expect(s.length).toBeGreaterThanOrEqual(1);
        expect(s.length).toBeLessThanOrEqual(2);
        for (const d of s) expect(d === 2 || d === 3).toBe(true);
      }),
    );
  });

  it("broadcastPair gives shapes that broadcast", () => {
    fc.assert(
      fc.property(broadcastPair(), ([a, b]) => {
        expect(() => broadcastShapes("test", a, b)).not.toThrow();
      }),
    );
  });

  it("floatTensor stays in range, finite, and away from the points to avoid", () => {
    fc.assert(
      fc.property(floatTensor([5], { min: -1, max: 1, avoid: [0], margin: 0.1 }), (t) => {
        for (const v of t.data) {
          expect(Number.isFinite(v)).toBe(true);
          expect(Math.abs(v)).toBeGreaterThanOrEqual(0.1);
          expect(Math.abs(v)).toBeLessThanOrEqual(1.1);
        }
      }),
    );
  });

  it("indexTensor stays in range and usually repeats an index", () => {
    let repeats = 0;
    fc.assert(
      fc.property(indexTensor(50, [6]), (idx) => {
        expect(idx.dtype).toBe("int32");
        for (const i of idx.data) expect(i >= 0 && i < 50).toBe(true);
        if (new Set(idx.data).size < idx.size) repeats++;
      }),
      { numRuns: 100 },
    );
    // With 50 values and 6 draws, repeats would be rare by chance; the copies make them common.
    expect(repeats).toBeGreaterThan(40);
  });
});

describe("withFusion", () => {
  it("runs code fused and op by op with bit-identical results, and restores the settings", () => {
    const f = () => {
      const p = F.tensor([0.1, 0.5, 0.9]);
      return Array.from(F.log(F.sub(1, F.mul(p, p))).read());
    };
    const fusedPending = withFusion("fused", () => F.mul(F.tensor([1, 2]), 2).isPending);
    const eagerPending = withFusion("opByOp", () => F.mul(F.tensor([1, 2]), 2).isPending);
    expect([fusedPending, eagerPending]).toEqual([true, false]);
    expect(withFusion("fused", f)).toEqual(withFusion("opByOp", f));
    expect(F.mul(F.tensor([1, 2]), 2).isPending).toBe(false); // back to the default below 16 384
    expect(() => withFusion("lazy" as never, f)).toThrow(/mode must be "fused" or "opByOp"/);
  });
});
