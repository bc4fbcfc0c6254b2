import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tensor } from "../src/index.js";
import * as F from "../src/index.js";
import { configureFusion } from "../src/kernels/elementwise.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../src/testing/index.js";

// Lazy fusion only kicks in on large tensors; these tests force it on small ones so that fused
// programs are checked against op-by-op evaluation on many random chains.
let saved: { enabled: boolean; minSize: number };
beforeAll(() => {
  saved = configureFusion({ enabled: true, minSize: 1 });
});
afterAll(() => {
  configureFusion(saved);
});

type Step = (x: Tensor, y: Tensor) => Tensor;
const steps: Record<string, Step> = {
  add: (x, y) => F.add(x, y),
  sub: (x, y) => F.sub(y, x),
  mul: (x, y) => F.mul(x, y),
  div: (x, y) => F.div(x, F.add(F.abs(y), 0.5)),
  scale: (x) => F.mul(x, 0.75),
  square: (x) => F.square(x),
  pow3: (x) => F.pow(x, 3),
  neg: (x) => F.neg(x),
  exp: (x) => F.exp(F.clip(x, -5, 5)),
  log: (x) => F.log(F.add(F.abs(x), 1)),
  sigmoid: (x) => F.sigmoid(x),
  relu: (x) => F.relu(x),
  maximum: (x, y) => F.maximum(x, y),
  where: (x, y) => F.where(F.greater(y, 0), x, F.mul(x, y)),
  bce: (x, y) => F.binaryCrossEntropy(F.cast(F.greater(y, 0), x.dtype), F.sigmoid(x)),
  castRound: (x) => F.cast(F.cast(x, "float64"), x.dtype),
  broadcast: (x, y) => F.mul(x, F.sum(y, { axis: 0, keepdims: true })),
};
const names = Object.keys(steps);

function evaluate(chain: string[], x: Tensor, y: Tensor): Tensor {
  let a = x;
  for (const name of chain) a = steps[name](a, y);
  return a;
}

function bits(t: Tensor): number[] {
  return Array.from(t.data, (v) => (Number.isNaN(v) ? Number.NaN : v));
}

describe("lazy fusion", () => {
  it("gives bit-identical results to op-by-op evaluation, in float32 and float64", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 12 }),
        fc.constantFrom("float32" as const, "float64" as const),
        floatTensor([3, 4], { min: -3, max: 3 }),
        floatTensor([3, 4], { min: -3, max: 3 }),
        (chain, dtype, x64, y64) => {
          const x = F.cast(x64, dtype);
          const y = F.cast(y64, dtype);
          const fused = evaluate(chain, x, y);
          const fusedSum = F.sum(evaluate(chain, x, y)).item();
          const before = configureFusion({ enabled: false });
          try {
            const eager = evaluate(chain, x, y);
            expect(bits(fused)).toEqual(bits(eager));
            expect(fused.dtype).toBe(eager.dtype);
            const eagerSum = F.sum(eager).item();
            expect(
              Object.is(fusedSum, eagerSum) ||
                Math.abs(fusedSum - eagerSum) <= 1e-12 * Math.abs(eagerSum),
            ).toBe(true);
          } finally {
            configureFusion(before);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("keeps results pending until read, and sums a pending chain without materialising it", () => {
    const x = F.tensor([1, 2, 3], { dtype: "float64" });
    const y = F.mul(F.add(x, 1), 2);
    expect(y.isPending).toBe(true);
    expect(F.sum(y).item()).toBe((2 + 3 + 4) * 2);
    expect(y.isPending).toBe(true);
    expect(Array.from(y.data)).toEqual([4, 6, 8]);
    expect(y.isPending).toBe(false);
  });

  it("refuses to compute a pending result from a tensor modified in place after it was made", () => {
    const w = F.tensor([1, 2], { dtype: "float64" });
    const y = F.mul(w, 10);
    const z = F.mul(w, 10);
    expect(Array.from(z.data)).toEqual([10, 20]); // read before the write: fine
    w.data[0] = 100;
    w.markModified();
    expect(() => y.data).toThrow(/modified in place after the result was made/);
  });

  it("keeps gradients right, first and second order", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.constantFrom("add", "mul", "scale", "square", "sigmoid", "where", "bce", "broadcast"),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        floatTensor([2, 3], { min: -2, max: 2, avoid: [0] }),
        floatTensor([2, 3], { min: -2, max: 2, avoid: [0] }),
        (chain, x, y) => {
          const f = (a: Tensor) => F.sum(evaluate(chain, a, y));
          assertGradcheck(f, [x]);
          assertGradgradcheck(f, [x]);
        },
      ),
      // Every distinct fused program is compiled once, which dominates the run time here.
      { numRuns: 30 },
    );
  }, 60_000);

  it("fuses slices and gathers into their consumers, and scatters pending gradients, exactly as eager ops", () => {
    fc.assert(
      fc.property(
        floatTensor([3, 4, 5], { min: 0.05, max: 0.95 }),
        fc.array(fc.tuple(fc.nat({ max: 2 }), fc.nat({ max: 3 })), { minLength: 1, maxLength: 8 }),
        fc.constantFrom("float32" as const, "float64" as const),
        (yTrue64, pairs, dtype) => {
          const yTrue = F.cast(yTrue64, dtype);
          const index = F.tensor(pairs, { dtype: "int32" });
          const loss = (p: Tensor) => {
            const labels = F.slice(yTrue, [0, 0, 0], [-1, -1, 4]); // a view of the first 4 columns
            const picked = F.gatherNd(labels, index); // [K, 4], repeated pairs allowed
            const probs = F.gatherNd(p, index);
            const weight = F.mul(0.75, F.pow(probs, 2));
            return F.sum(F.mul(weight, F.binaryCrossEntropy(picked, probs)));
          };
          const p = F.cast(F.slice(yTrue64, [0, 0, 1], [-1, -1, 4]), dtype);
          const [fusedValue, fusedGrad] = F.valueAndGrad(loss)(p);
          const before = configureFusion({ enabled: false });
          try {
            const [eagerValue, eagerGrad] = F.valueAndGrad(loss)(p);
            expect(fusedValue.item()).toBe(eagerValue.item());
            expect(bits(fusedGrad)).toEqual(bits(eagerGrad));
          } finally {
            configureFusion(before);
          }
          if (dtype === "float64") assertGradcheck(loss, [p]);
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);

  it("accumulates into an existing .grad in place, scattering straight into it", () => {
    const p = F.tensor(
      [
        [0.2, 0.4],
        [0.6, 0.8],
      ],
      { dtype: "float64", requiresGrad: true },
    );
    const rows = F.tensor([[1], [1]], { dtype: "int32" });
    const loss = () => F.sum(F.mul(F.gatherNd(p, rows), 3)); // row 1 picked twice → gradient 6
    loss().backward();
    const first = p.grad!;
    expect(first.toArray()).toEqual([
      [0, 0],
      [6, 6],
    ]);
    loss().backward();
    expect(p.grad).toBe(first); // the same tensor, added into (PyTorch's accumulation)
    expect(first.toArray()).toEqual([
      [0, 0],
      [12, 12],
    ]);
  });
});
