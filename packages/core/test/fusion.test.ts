import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tensor } from "../src/index.js";
import * as F from "../src/index.js";
import { configureFusion, type FusionSettings } from "../src/lazy/index.js";
import { assertGradcheck, assertGradgradcheck, floatTensor } from "../src/testing/index.js";

// Lazy fusion only kicks in on large tensors; these tests force it on small ones so that fused
// programs are checked against op-by-op evaluation on many random chains. Loops run in chunks of
// 3 elements (8192 by default), so that every loop also restarts mid-row, mid-gathered-row and
// mid-broadcast, carrying its sums from chunk to chunk.
let saved: FusionSettings;
beforeAll(() => {
  saved = configureFusion({ enabled: true, minSize: 1, chunk: 3 });
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

/** Runs `fn` with `settings` in force, then restores the previous ones. */
function withFusion<T>(settings: Partial<FusionSettings>, fn: () => T): T {
  const before = configureFusion(settings);
  try {
    return fn();
  } finally {
    configureFusion(before);
  }
}

/** Runs `fn` with fusion off: every op computes at once, rounding to its dtype. */
const opByOp = <T>(fn: () => T): T => withFusion({ enabled: false }, fn);

/** Runs `fn` with fused float32 steps rounding one by one (`exact`, the default), bit for bit op-by-op. */
const exactly = <T>(fn: () => T): T => withFusion({ exact: true }, fn);

/** Runs `fn` with fused float32 chains held in double precision (`exact: false`). */
const inDouble = <T>(fn: () => T): T => withFusion({ exact: false }, fn);

describe("lazy fusion", () => {
  it("by default (exact), gives bit-identical results to op-by-op evaluation, in float32 and float64", () => {
    exactly(() => {
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
            const [eager, eagerSum] = opByOp(() => {
              const e = evaluate(chain, x, y);
              return [e, F.sum(e).item()] as const;
            });
            expect(bits(fused)).toEqual(bits(eager));
            expect(fused.dtype).toBe(eager.dtype);
            expect(
              Object.is(fusedSum, eagerSum) ||
                Math.abs(fusedSum - eagerSum) <= 1e-12 * Math.abs(eagerSum),
            ).toBe(true);
          },
        ),
        { numRuns: 150 },
      );
    });
  });

  it("with exact: false, evaluates a smooth float32 chain in double precision and rounds it once", () => {
    inDouble(() => {
      // No step here compares an intermediate value, so nothing rounds before the end: the fused
      // float32 result is the float64 evaluation of the same chain on the same values, rounded.
      const smooth = ["add", "sub", "mul", "div", "scale", "square", "pow3", "neg", "log"];
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(...smooth), { minLength: 1, maxLength: 12 }),
          floatTensor([3, 4], { min: -3, max: 3 }),
          floatTensor([3, 4], { min: -3, max: 3 }),
          (chain, x64, y64) => {
            const x = F.cast(x64, "float32");
            const y = F.cast(y64, "float32");
            const fused = evaluate(chain, x, y);
            const reference = opByOp(() =>
              evaluate(chain, F.cast(x, "float64"), F.cast(y, "float64")),
            );
            expect(fused.dtype).toBe("float32");
            expect(bits(fused)).toEqual(bits(F.cast(reference, "float32")));
            // float64 chains round nowhere, fused or not.
            const fused64 = evaluate(chain, F.cast(x, "float64"), F.cast(y, "float64"));
            expect(bits(fused64)).toEqual(bits(reference));
          },
        ),
        { numRuns: 150 },
      );
    });
  });

  it("with exact: false, stays within float32 error of op-by-op evaluation, or closer to float64", () => {
    inDouble(() => {
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 12 }),
          floatTensor([3, 4], { min: -3, max: 3 }),
          floatTensor([3, 4], { min: -3, max: 3 }),
          (chain, x64, y64) => {
            const x = F.cast(x64, "float32");
            const y = F.cast(y64, "float32");
            const fused = evaluate(chain, x, y).data;
            const [eager, reference] = opByOp(
              () =>
                [
                  evaluate(chain, x, y).data,
                  evaluate(chain, F.cast(x, "float64"), F.cast(y, "float64")).data,
                ] as const,
            );
            for (let i = 0; i < fused.length; i++) {
              const [f, e, r] = [fused[i], eager[i], reference[i]];
              const close = Object.is(f, e) || Math.abs(f - e) <= 1e-4 * Math.max(1, Math.abs(e));
              // Where op-by-op float32 overflows or loses a value that double precision keeps.
              const closer =
                Math.abs(f - r) <= Math.abs(e - r) || (Number.isNaN(e) && !Number.isNaN(r));
              if (!close && !closer) {
                throw new Error(`element ${i}: fused ${f}, op-by-op ${e}, float64 ${r}`);
              }
            }
          },
        ),
        { numRuns: 150 },
      );
    });
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

  it("computes a pending result from the values it was made from, whatever is written later", () => {
    const w = F.tensor([1, 2], { dtype: "float64" });
    const y = F.mul(w, 10);
    const z = F.mul(w, 10);
    expect(Array.from(z.data)).toEqual([10, 20]);
    w.data[0] = 100; // through the handed-out memory
    w.markModified();
    expect(y.isPending).toBe(true);
    expect(Array.from(y.data)).toEqual([10, 20]); // as op-by-op evaluation gave it
    expect(Array.from(F.mul(w, 10).data)).toEqual([1000, 20]);
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
    exactly(() => {
      fc.assert(
        fc.property(
          floatTensor([3, 4, 5], { min: 0.05, max: 0.95 }),
          fc.oneof(
            // Explicit pairs, repeated ones allowed (their gradients add up) …
            fc.array(fc.tuple(fc.nat({ max: 2 }), fc.nat({ max: 3 })), {
              minLength: 1,
              maxLength: 8,
            }),
            // … or the hits of a mask, as argwhere finds them (disjoint rows, flat positions).
            fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
          ),
          fc.constantFrom("float32" as const, "float64" as const),
          (yTrue64, which, dtype) => {
            const yTrue = F.cast(yTrue64, dtype);
            const index =
              typeof which[0] === "boolean"
                ? F.argwhere(F.tensor(which as boolean[], { shape: [3, 4] }))
                : F.tensor(which as [number, number][], { dtype: "int32" });
            const loss = (p: Tensor) => {
              const labels = F.slice(yTrue, [0, 0, 0], [-1, -1, 4]); // a view of the first 4 columns
              const picked = F.gatherNd(labels, index); // [K, 4]
              const probs = F.gatherNd(p, index);
              const weight = F.mul(0.75, F.pow(probs, 2));
              return F.sum(F.mul(weight, F.binaryCrossEntropy(picked, probs)));
            };
            const p = F.cast(F.slice(yTrue64, [0, 0, 1], [-1, -1, 4]), dtype);
            const [fusedValue, fusedGrad] = F.valueAndGrad(loss)(p);
            const [eagerValue, eagerGrad] = opByOp(() => F.valueAndGrad(loss)(p));
            expect(fusedValue.item()).toBe(eagerValue.item());
            expect(bits(fusedGrad)).toEqual(bits(eagerGrad));
            if (dtype === "float64") assertGradcheck(loss, [p]);
          },
        ),
        { numRuns: 40 },
      );
    });
  }, 60_000);

  it("reads gathered rows of different widths in one loop, exactly as eager ops", () => {
    exactly(() => {
      fc.assert(
        fc.property(
          floatTensor([6, 5], { min: -2, max: 2 }),
          floatTensor([10], { min: -2, max: 2 }),
          fc.array(fc.nat({ max: 5 }), { minLength: 1, maxLength: 4 }),
          fc.array(fc.nat({ max: 9 }), { minLength: 20, maxLength: 20 }),
          (a, b, rowsOfA, elementsOfB) => {
            const k = rowsOfA.length;
            const ia = F.tensor(rowsOfA, { shape: [k, 1], dtype: "int32" }); // rows of width 5
            const ib = F.tensor(elementsOfB.slice(0, k * 5), { shape: [k, 5, 1], dtype: "int32" }); // width 1
            const f = (x: Tensor, y: Tensor) =>
              F.sum(F.mul(F.gatherNd(x, ia), F.square(F.gatherNd(y, ib))));
            const [fusedValue, fusedGrads] = F.valueAndGrad(f, { argnums: [0, 1] })(a, b);
            const [eagerValue, eagerGrads] = opByOp(() =>
              F.valueAndGrad(f, { argnums: [0, 1] })(a, b),
            );
            expect(fusedValue.item()).toBe(eagerValue.item());
            expect(bits(fusedGrads[0])).toEqual(bits(eagerGrads[0]));
            expect(bits(fusedGrads[1])).toEqual(bits(eagerGrads[1]));
          },
        ),
        { numRuns: 30 },
      );
    });
  });

  it("defers a differentiated sum into the backward loop, and leaves nothing pending after it", () => {
    const w = F.tensor([0.5, 1.5, -2, 3], { dtype: "float64", requiresGrad: true });
    const x = F.tensor([1, 2, 3, 4], { dtype: "float64" });
    const first = F.sum(F.mul(w, x)); // 0.5 + 3 - 6 + 12 = 9.5
    const second = F.sum(F.square(w)); // 0.25 + 2.25 + 4 + 9 = 15.5
    const loss = F.div(F.add(first, second), 5); // (9.5 + 15.5) / 5 = 5
    expect([first.isPending, second.isPending, loss.isPending]).toEqual([true, true, true]);
    loss.backward();
    expect([first.isPending, second.isPending, loss.isPending]).toEqual([false, false, false]);
    expect([first.item(), second.item(), loss.item()]).toEqual([9.5, 15.5, 5]);
    // d/dw = (x + 2w) / 5 = [1 + 1, 2 + 3, 3 - 4, 4 + 6] / 5 = [0.4, 1, -0.2, 2]
    [0.4, 1, -0.2, 2].forEach((v, i) => {
      expect(w.grad!.data[i]).toBeCloseTo(v, 14);
    });
    // An optimiser step after backward() no longer matters to the loss already computed.
    w.data[0] = 100;
    w.markModified();
    expect(loss.item()).toBe(5);
  });

  it("never computes a deferred sum inside the loop of a tensor the sum reads", () => {
    // 70 steps are more than one loop takes, so the sum reads `a` as an input, still pending when
    // the backward pass computes `a` itself (whose loop must not take the sum that reads it).
    const w = F.tensor([0.5, -1, 2], { dtype: "float64", requiresGrad: true });
    let a = w;
    for (let i = 0; i < 70; i++) a = F.add(a, 1); // a = w + 70
    const s = F.sum(F.mul(a, a)); // 70.5² + 69² + 72² = 4970.25 + 4761 + 5184 = 14915.25
    expect(s.isPending).toBe(true);
    s.backward();
    expect(s.item()).toBe(14915.25);
    expect(Array.from(w.grad!.data)).toEqual([141, 138, 144]); // 2 (w + 70)
  });

  it("computes a sum at once when nothing will differentiate it, or when it is read first", () => {
    const w = F.tensor([1, 2, 3], { dtype: "float64", requiresGrad: true });
    const untracked = F.noGrad(() => F.sum(F.mul(w, 2)));
    expect(untracked.isPending).toBe(false);
    expect(untracked.item()).toBe(12);
    const constant = F.sum(F.mul(F.tensor([1, 2, 3], { dtype: "float64" }), 2));
    expect(constant.isPending).toBe(false);
    const loss = F.sum(F.square(w));
    expect(loss.item()).toBe(14); // read before backward: computed on its own
    loss.backward();
    expect(Array.from(w.grad!.data)).toEqual([2, 4, 6]);
  });

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

describe("the configured renderer", () => {
  it("runs only the kernels it supports; the JavaScript renderer runs the others", () => {
    const seen: string[] = [];
    const before = configureFusion({
      renderer: {
        name: "float64-only",
        supports: (kernel) => kernel.output.kind === "store" && kernel.output.dtype === "float64",
        run(kernel) {
          // A renderer that claims nothing it is not given: it must never see a float32 kernel.
          seen.push(kernel.output.kind === "store" ? kernel.output.dtype : kernel.output.kind);
          throw new Error("this test's renderer computes nothing");
        },
      },
    });
    try {
      // float32: never offered to the test's renderer. exp(0) + 1 = 2, exp(1) + 1 = e + 1.
      const y = F.add(F.exp(F.tensor([0, 1])), 1).read();
      expect(y[0]).toBe(2);
      expect(y[1]).toBeCloseTo(Math.E + 1, 6);
      expect(seen).toEqual([]);
      // float64: offered to it, so its error comes through.
      expect(() => F.add(F.exp(F.tensor([0, 1], { dtype: "float64" })), 1).toArray()).toThrow(
        "this test's renderer computes nothing",
      );
      expect(seen).toContain("float64");
    } finally {
      configureFusion(before);
    }
  });
});
