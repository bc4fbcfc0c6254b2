// Lazy fusion is invisible: every elementwise op, alone and in chains, gives bit for bit the same
// values and gradients fused (as on tensors above the 16 384-element threshold) and op by op (as
// below it), at the edges of the float range too: ±0, subnormals, 1 ± 1e-8, ±1e4, ±3e38, ±∞, NaN.
// On the WebAssembly renderer the exact steps give the same bits, and every result is as accurate
// as JavaScript's against float64 (within float32 rounding of each step).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";
import { withFusion } from "../../src/testing/index.js";

type Unary = (x: F.Tensor) => F.Tensor;
const unary: Record<string, Unary> = {
  neg: F.neg,
  square: F.square,
  exp: F.exp,
  log: F.log,
  log1p: F.log1p,
  sqrt: F.sqrt,
  abs: F.abs,
  sign: F.sign,
  sigmoid: F.sigmoid,
  logSigmoid: F.logSigmoid,
  softplus: F.softplus,
  tanh: F.tanh,
  erf: F.erf,
  gelu: F.gelu,
  relu: F.relu,
  clip: (x) => F.clip(x, 1e-7, 1 - 1e-7),
  pow2: (x) => F.pow(x, 2),
  pow05: (x) => F.pow(x, 0.5),
  pow0: (x) => F.pow(x, 0),
  powNeg: (x) => F.pow(x, -1.5),
  scale: (x) => F.mul(x, 3e38),
  shrink: (x) => F.mul(x, 1e-30),
  oneMinus: (x) => F.sub(1, x),
  castRoundTrip: (x) => F.cast(F.cast(x, x.dtype === "float32" ? "float64" : "float32"), x.dtype),
};
type Binary = (x: F.Tensor, y: F.Tensor) => F.Tensor;
const binary: Record<string, Binary> = {
  add: F.add,
  sub: F.sub,
  mul: F.mul,
  div: F.div,
  pow: F.pow,
  maximum: F.maximum,
  minimum: F.minimum,
  where: (x, y) => F.where(F.greater(x, y), x, y),
  bce: (x, y) => F.binaryCrossEntropy(F.clip(y, 0, 1), F.sigmoid(x)),
  bceWithLogits: (x, y) => F.bceWithLogits(x, F.clip(y, 0, 1)),
};
const edges = [
  0,
  -0,
  1,
  -1,
  0.5,
  2,
  1e-45,
  -1e-45,
  1e-8,
  1 - 1e-8,
  1e-7,
  1 - 1e-7,
  1e4,
  -1e4,
  3e38,
  -3e38,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.NaN,
];
const value = fc.oneof(fc.constantFrom(...edges), fc.double({ min: -10, max: 10, noNaN: true }));

function bits(t: F.Tensor): number[] {
  return Array.from(t.read(), (v) => (Number.isNaN(v) ? Number.NaN : v));
}

/** The value of `f(x, y)` and the gradients of Σ f(x, y) · w, computed fused or op by op. */
function evaluate(
  f: Binary,
  xs: number[],
  ys: number[],
  dtype: "float32" | "float64",
  mode: "fused" | "opByOp",
  renderer: "javascript" | "wasm" = "javascript",
): number[][] {
  return withFusion(
    mode,
    () => {
      const x = F.tensor(xs, { dtype, requiresGrad: true });
      const y = F.tensor(ys, { dtype, requiresGrad: true });
      const w = F.tensor(
        xs.map((_, i) => (i % 3) - 1),
        { dtype },
      );
      const out = f(x, y);
      const loss = F.sum(F.mul(out, w));
      if (loss.requiresGrad) loss.backward(); // not through sign alone
      return [bits(out), bits(x.grad ?? F.zerosLike(x)), bits(y.grad ?? F.zerosLike(y))];
    },
    { renderer },
  );
}

/**
 * Whether a float32 result `w` of the WebAssembly renderer is as good as `j`, the JavaScript
 * renderer's op-by-op one, against `t`, the same chain in float64 on the float32-rounded inputs:
 * equal to `j` (NaN for NaN, both beyond 2^127 with one sign: a last-ulp difference at the edge of
 * overflow), or off from `t` by at most 4 × what `j` is off plus 1e-5 relative and 1e-6 absolute.
 * A bound on `w − j` alone cannot hold: a step within an ulp (σ near 1 rounded up to 1) turns a
 * later 1 − σ into 0 where JavaScript's gives 6e-8, though the truth, 3.7e-8, is far from both.
 */
function asGood(w: number, j: number, t: number): boolean {
  if (Object.is(w, j) || (Number.isNaN(w) && Number.isNaN(j))) return true;
  if (Number.isNaN(w) || Number.isNaN(j)) return false;
  if (Math.abs(w) >= 2 ** 127 && Math.abs(j) >= 2 ** 127) return Math.sign(w) === Math.sign(j);
  const truth = Number.isFinite(t) ? t : j;
  return Math.abs(w - truth) <= 4 * Math.abs(j - truth) + 1e-5 * Math.abs(truth) + 1e-6;
}

/** The elements of the wasm results `got` that are not `asGood` as JavaScript's `want` against `truth`. */
function disagreements(got: number[][], want: number[][], truth: number[][]): string[] {
  const wrong: string[] = [];
  got.forEach((values, k) => {
    values.forEach((v, i) => {
      if (!asGood(v, want[k][i], truth[k][i])) {
        wrong.push(`result ${k}[${i}]: ${v} vs ${want[k][i]} (float64: ${truth[k][i]})`);
      }
    });
  });
  return wrong;
}

/** `f` on the wasm renderer fused, on JavaScript op by op, and in float64 on the same float32 inputs. */
function onWasm(f: Binary, xs: number[], ys: number[]): string[] {
  const [x32, y32] = [xs.map(Math.fround), ys.map(Math.fround)];
  return disagreements(
    evaluate(f, xs, ys, "float32", "fused", "wasm"),
    evaluate(f, xs, ys, "float32", "opByOp"),
    evaluate(f, x32, y32, "float64", "opByOp"),
  );
}

describe("fused and op-by-op evaluation agree bit for bit", () => {
  for (const dtype of ["float32", "float64"] as const) {
    it(`every unary op and chains of them, values and gradients (${dtype})`, () => {
      const names = Object.keys(unary);
      fc.assert(
        fc.property(
          fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 4 }),
          fc.array(value, { minLength: 1, maxLength: 7 }),
          (chain, xs) => {
            const f: Binary = (x) => chain.reduce((t, name) => unary[name](t), x);
            const ys = xs.map(() => 0);
            expect(evaluate(f, xs, ys, dtype, "fused")).toEqual(
              evaluate(f, xs, ys, dtype, "opByOp"),
            );
          },
        ),
        { numRuns: 300 },
      );
    });

    it(`every binary op, followed by a unary one, values and gradients (${dtype})`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...Object.keys(binary)),
          fc.constantFrom(...Object.keys(unary)),
          fc.array(fc.tuple(value, value), { minLength: 1, maxLength: 7 }),
          (b, u, pairs) => {
            const f: Binary = (x, y) => unary[u](binary[b](x, y));
            const xs = pairs.map((p) => p[0]);
            const ys = pairs.map((p) => p[1]);
            expect(evaluate(f, xs, ys, dtype, "fused")).toEqual(
              evaluate(f, xs, ys, dtype, "opByOp"),
            );
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it("log(square(3e38)) overflows fused as op by op (float32)", () => {
    const f: Binary = (x) => F.log(F.square(x));
    // 3e38² = 9e76 overflows float32 to ∞, and log(∞) = ∞; in double it would be 176.9.
    expect(evaluate(f, [3e38], [0], "float32", "fused")[0]).toEqual([Number.POSITIVE_INFINITY]);
    expect(evaluate(f, [3e38], [0], "float32", "opByOp")[0]).toEqual([Number.POSITIVE_INFINITY]);
  });
});

describe("fused on the WebAssembly renderer, results as accurate as op-by-op JavaScript", () => {
  // Every kernel of these tiny tensors runs on the wasm renderer (withFusion's renderer "wasm");
  // what it has no vector form of (tanh, erf, pow by a non-integer, float64) on JavaScript's.
  // Each result is compared with JavaScript's op-by-op one against float64 (see asGood).
  it("every unary op and chains of them, values and gradients (float32)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...Object.keys(unary)), { minLength: 1, maxLength: 4 }),
        fc.array(value, { minLength: 1, maxLength: 7 }),
        (chain, xs) => {
          const f: Binary = (x) => chain.reduce((t, name) => unary[name](t), x);
          const ys = xs.map(() => 0);
          expect(onWasm(f, xs, ys)).toEqual([]);
        },
      ),
      // Found by earlier runs: σ(17.1) rounded to 1 on wasm, then 1 − σ in the gradient.
      { numRuns: 300, examples: [[["log", "oneMinus", "sigmoid", "neg"], [1e-7]]] },
    );
  });

  it("every binary op, followed by a unary one, values and gradients (float32)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(binary)),
        fc.constantFrom(...Object.keys(unary)),
        fc.array(fc.tuple(value, value), { minLength: 1, maxLength: 7 }),
        (b, u, pairs) => {
          const f: Binary = (x, y) => unary[u](binary[b](x, y));
          const xs = pairs.map((p) => p[0]);
          const ys = pairs.map((p) => p[1]);
          expect(onWasm(f, xs, ys)).toEqual([]);
        },
      ),
      {
        numRuns: 300,
        // Found by earlier runs: max(x, 0) − x·y rounded first (bceWithLogits), σ'(x / y) near
        // σ = 1, and a one-ulp exp under log p − log(1 − p), scaled by 3e38.
        examples: [
          ["bceWithLogits", "neg", [[10000, 0.9999999]]],
          ["div", "sigmoid", [[1e-8, 5.770780242553286e-10]]],
          [
            "bce",
            "scale",
            [
              [1e-7, 0],
              [0, 0],
            ],
          ],
        ],
      },
    );
  });

  it("exact steps (+ − × ÷ √, min, max, selections, casts) give the same bits as op by op", () => {
    const exact = ["neg", "square", "sqrt", "abs", "sign", "relu", "clip", "pow2", "pow0"];
    const exactBinary = ["add", "sub", "mul", "div", "maximum", "minimum", "where"];
    fc.assert(
      fc.property(
        fc.constantFrom(...exactBinary),
        fc.array(fc.constantFrom(...exact, "scale", "shrink", "oneMinus", "castRoundTrip"), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.array(fc.tuple(value, value), { minLength: 1, maxLength: 7 }),
        (b, chain, pairs) => {
          const f: Binary = (x, y) => chain.reduce((t, name) => unary[name](t), binary[b](x, y));
          const xs = pairs.map((p) => p[0]);
          const ys = pairs.map((p) => p[1]);
          expect(evaluate(f, xs, ys, "float32", "fused", "wasm")).toEqual(
            evaluate(f, xs, ys, "float32", "opByOp"),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
