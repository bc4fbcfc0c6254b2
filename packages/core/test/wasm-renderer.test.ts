/** The WebAssembly renderer against the JavaScript renderer: the same kernels (the focal loss's, random chains of float32 steps), their outputs within float32 rounding or bit for bit, over contiguous, strided, broadcast and gathered inputs, and what it leaves to JavaScript. */

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { constant, type Expr, input, ir } from "../src/kernels/ir.js";
import { javascript } from "../src/kernels/javascript.js";
import type { InputAccess, Kernel } from "../src/kernels/kernel.js";
import { createWasmRenderer } from "../src/kernels/wasm/renderer.js";
import {
  getNumThreads,
  hasRelaxedSimd,
  setNumThreads,
  WasmRuntime,
} from "../src/kernels/wasm/runtime.js";
import { configureFusion } from "../src/lazy/index.js";
import { withFusion } from "../src/testing/index.js";

const runtime = new WasmRuntime(hasRelaxedSimd());
const renderers = [
  { name: "compiled", wasm: createWasmRenderer(runtime, { minSize: 1 }) },
  { name: "machine", wasm: createWasmRenderer(runtime, { minSize: 1, compiled: false }) },
];

/** Float32 rounding after a step, as the ops write each step in exact mode. */
const f32 = (x: Expr) => ir.convert(x, "float32");
const contiguous: InputAccess = { kind: "strided", dtype: "float32", strides: [1], offset: 0 };

/** A float32 position on the number line in ulp. */
function ordinal(x: number): number {
  const bits = new Int32Array(Float32Array.of(x).buffer)[0];
  return bits < 0 ? -(bits & 0x7fffffff) : bits;
}

/** Indices where `got` and `want` differ by more than `ulps` (NaN only matches NaN). */
function apart(got: Float32Array, want: Float32Array, ulps: number): string[] {
  const wrong: string[] = [];
  for (let i = 0; i < want.length && wrong.length < 5; i++) {
    const [a, b] = [got[i], want[i]];
    const same =
      Number.isNaN(a) || Number.isNaN(b)
        ? Number.isNaN(a) && Number.isNaN(b)
        : ulps === 0
          ? Object.is(a, b)
          : Math.abs(ordinal(a) - ordinal(b)) <= ulps;
    if (!same) wrong.push(`[${i}] ${a} vs ${b}`);
  }
  return wrong;
}

/** Seeded values in (0, 1), with the clip edges and the ends of the interval among them. */
function probabilities(n: number, seed: number): Float32Array {
  const edges = [0, 1, 1e-7, 1 - 1e-7, 1e-8, 0.5, 2 ** -149, 1 - 2 ** -24];
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, (_, i) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return i % 11 === 0 ? edges[(s >>> 8) % edges.length] : s / 2 ** 32;
  });
}

/**
 * The focal loss's object-anchor term as the ops build it (every step rounded): y a 0/1 label,
 * p the probability; w = a · (y ? 1 − p : p)², BCE with Keras' clip; the value is w · BCE.
 */
function focalTerm(): Expr {
  const [y, p] = [input(0, "float32"), input(1, "float32")];
  const positive = ir.eq(y, 1);
  const alpha = ir.select(positive, constant(0.25, "float32"), constant(0.75, "float32"));
  const base = ir.select(positive, f32(ir.sub(1, p)), p);
  const weight = f32(ir.mul(alpha, f32(ir.pow(base, 2))));
  const lo = Math.fround(1e-7);
  const pc = f32(ir.min(ir.max(p, lo), Math.fround(1 - lo)));
  const bce = f32(
    ir.select(positive, ir.neg(f32(ir.log(pc))), ir.neg(f32(ir.log(f32(ir.sub(1, pc)))))),
  );
  return f32(ir.mul(weight, bce));
}

describe.each(renderers)("the wasm renderer ($name)", ({ wasm }) => {
  const n = 3001;
  const labels = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const p = probabilities(n, 7);

  test("the focal term: stores within 2 ulp, the sum within float32 rounding, every element", () => {
    const value = focalTerm();
    const kernel: Kernel = {
      shape: [n],
      inputs: [contiguous, contiguous],
      value,
      output: { kind: "store", dtype: "float32" },
      sums: [value],
    };
    expect(wasm.supports(kernel)).toBe(true);
    const [got, want] = [new Float32Array(n), new Float32Array(n)];
    const [gotSums, wantSums] = [new Float64Array(1), new Float64Array(1)];
    wasm.run(kernel, { inputs: [labels, p], out: got, sums: gotSums });
    javascript.run(kernel, { inputs: [labels, p], out: want, sums: wantSums });
    // The logarithms are within an ulp; the two products after them add a rounding each.
    expect(apart(got, want, 2)).toEqual([]);
    expect(Math.abs(gotSums[0] - wantSums[0])).toBeLessThanOrEqual(4 * 2 ** -24 * wantSums[0]);
  });

  test("gathered rows, scatters with repeated rows, places and a scalar, as the JavaScript renderer", () => {
    // Rows of 5 out of a [40, 6] array, starting at column 1; a scatter back with a repeated row.
    const source = probabilities(240, 3);
    const index = Int32Array.from([3, 17, 3, 0, 39, 22, 8]);
    const rows = { index, scale: 6, start: 1 };
    const gathered: InputAccess = { kind: "rows", dtype: "float32", rows, width: 5, colStride: 1 };
    const scalar: InputAccess = { kind: "scalar", dtype: "float32", offset: 2 };
    const [g, s] = [input(0, "float32"), input(1, "float32")];
    const value = f32(ir.mul(f32(ir.log1p(ir.neg(g))), s));
    for (const kind of ["scatter", "place"] as const) {
      const distinct = { index: Int32Array.from([3, 17, 4, 0, 39, 22, 8]), scale: 6, start: 1 };
      const kernel: Kernel = {
        shape: [7, 5],
        inputs: [gathered, scalar],
        value: kind === "place" ? ir.mul(value, -0) : value,
        output: { kind, dtype: "float32", rows: kind === "place" ? distinct : rows, width: 5 },
        sums: [],
      };
      expect(wasm.supports(kernel)).toBe(true);
      const scalars = Float32Array.from([9, 9, -1.5]);
      const got = kind === "place" ? new Float32Array(240) : probabilities(240, 5);
      const want = Float32Array.from(got);
      wasm.run(kernel, { inputs: [source, scalars], out: got, sums: null });
      javascript.run(kernel, { inputs: [source, scalars], out: want, sums: null });
      // log1p within an ulp, then the product; a place of −0 gives +0 as adding would.
      expect(apart(got, want, kind === "place" ? 0 : 2)).toEqual([]);
    }
  });

  test("rows over most of their array, gathered and scattered in wasm, as the JavaScript renderer", () => {
    // 30 of 40 rows (past the quarter below which rows are gathered in JavaScript), a repeat among them.
    const source = probabilities(240, 4);
    const index = Int32Array.from({ length: 30 }, (_, r) => (r === 29 ? 5 : (r * 7) % 40));
    const rows = { index, scale: 6, start: 0 };
    const gathered: InputAccess = { kind: "rows", dtype: "float32", rows, width: 6, colStride: 1 };
    const value = f32(ir.add(f32(ir.mul(input(0, "float32"), 3)), 0.25));
    const kernel: Kernel = {
      shape: [30, 6],
      inputs: [gathered],
      value,
      output: { kind: "scatter", dtype: "float32", rows, width: 6 },
      sums: [value],
    };
    const got = probabilities(240, 6);
    const want = Float32Array.from(got);
    const [gotSums, wantSums] = [new Float64Array(1), new Float64Array(1)];
    wasm.run(kernel, { inputs: [source], out: got, sums: gotSums });
    javascript.run(kernel, { inputs: [source], out: want, sums: wantSums });
    expect(apart(got, want, 0)).toEqual([]);
    expect(gotSums[0]).toBeCloseTo(wantSums[0], 9);
  });

  test("strided inputs: broadcasts along and across rows, slices and columns, as the JavaScript renderer", () => {
    // The loop is [64, 9]: a is a [64, 10] array read without its last column (rows 10 apart), b
    // a row of 9 broadcast down (strides [0, 1]), c a column of 64 broadcast across (strides [1, 0]).
    const a = probabilities(640, 9);
    const b = probabilities(9, 10);
    const c = probabilities(64, 11);
    const access = (strides: number[], offset = 0): InputAccess => ({
      kind: "strided",
      dtype: "float32",
      strides,
      offset,
    });
    const [x, y, z] = [input(0, "float32"), input(1, "float32"), input(2, "float32")];
    const value = f32(ir.sub(f32(ir.mul(x, y)), z));
    for (const offset of [0, 1]) {
      const kernel: Kernel = {
        shape: [64, 9],
        inputs: [access([10, 1], offset), access([0, 1]), access([1, 0])],
        value,
        output: { kind: "store", dtype: "float32" },
        sums: [],
      };
      expect(wasm.supports(kernel)).toBe(true);
      const [got, want] = [new Float32Array(576), new Float32Array(576)];
      wasm.run(kernel, { inputs: [a, b, c], out: got, sums: null });
      javascript.run(kernel, { inputs: [a, b, c], out: want, sums: null });
      expect(apart(got, want, 0)).toEqual([]);
      // Element [r, j] is a[10 r + j + offset] · b[j] − c[r], worked out here in float32.
      const [r, j] = [37, 4];
      const expected = Math.fround(Math.fround(a[10 * r + j + offset] * b[j]) - c[r]);
      expect(got[9 * r + j]).toBe(expected);
    }
    // Three axes, the middle one broadcast: rows restart at each outer step.
    const kernel: Kernel = {
      shape: [4, 5, 6],
      inputs: [access([6, 0, 1]), access([0, 0, 1]), access([0, 1, 0])],
      value,
      output: { kind: "store", dtype: "float32" },
      sums: [],
    };
    const [got, want] = [new Float32Array(120), new Float32Array(120)];
    wasm.run(kernel, { inputs: [a, b, c], out: got, sums: null });
    javascript.run(kernel, { inputs: [a, b, c], out: want, sums: null });
    expect(apart(got, want, 0)).toEqual([]);
    // Columns read element by element: a seen transposed ([10, 64], strides [1, 10]; element
    // [i, j] is a[10 j + i]), and a's column 3 from its last row up (offset 633, stride −10).
    const columns: [Kernel, number][] = [
      [
        {
          shape: [10, 64],
          inputs: [access([1, 10]), access([0, 0]), access([1, 0])],
          value,
          output: { kind: "store", dtype: "float32" },
          sums: [],
        },
        640,
      ],
      [
        {
          shape: [64],
          inputs: [access([-10], 633), access([0]), access([1])],
          value,
          output: { kind: "store", dtype: "float32" },
          sums: [],
        },
        64,
      ],
    ];
    for (const [column, size] of columns) {
      expect(wasm.supports(column)).toBe(true);
      const [got, want] = [new Float32Array(size), new Float32Array(size)];
      wasm.run(column, { inputs: [a, b, c], out: got, sums: null });
      javascript.run(column, { inputs: [a, b, c], out: want, sums: null });
      expect(apart(got, want, 0)).toEqual([]);
    }
    // Element [7, 21] of the transposed read is a[217] · b[0] − c[7]; element 5 of the reversed
    // column is a[633 − 50] · b[0] − c[5].
    const transposed = new Float32Array(640);
    wasm.run(columns[0][0], { inputs: [a, b, c], out: transposed, sums: null });
    expect(transposed[64 * 7 + 21]).toBe(Math.fround(Math.fround(a[217] * b[0]) - c[7]));
    const reversed = new Float32Array(64);
    wasm.run(columns[1][0], { inputs: [a, b, c], out: reversed, sums: null });
    expect(reversed[5]).toBe(Math.fround(Math.fround(a[583] * b[0]) - c[5]));
  });

  test("random chains of exact float32 steps give the JavaScript renderer's bits", () => {
    const ops = [
      "add",
      "sub",
      "mul",
      "div",
      "min",
      "max",
      "neg",
      "abs",
      "sqrt",
      "floor",
      "ceil",
      "square",
      "select",
    ] as const;
    const a = input(0, "float32");
    const b = input(1, "float32");
    const x = probabilities(400, 1).map((v, i) => (i % 5 === 0 ? -v * 1e30 : v * 8 - 4));
    const y = probabilities(400, 2).map((v, i) => (i % 7 === 0 ? v * 3e38 : v - 0.5));
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...ops), { minLength: 1, maxLength: 12 }), (chain) => {
        let v: Expr = a;
        for (const op of chain) {
          if (op === "neg" || op === "abs" || op === "sqrt" || op === "floor" || op === "ceil")
            v = f32(ir[op](v));
          else if (op === "square") v = f32(ir.pow(v, 2));
          else if (op === "select") v = ir.select(ir.lt(v, b), v, b);
          else v = f32(ir[op](v, b));
        }
        const kernel: Kernel = {
          shape: [400],
          inputs: [contiguous, contiguous],
          value: v,
          output: { kind: "store", dtype: "float32" },
          sums: [],
        };
        const [got, want] = [new Float32Array(400), new Float32Array(400)];
        wasm.run(kernel, { inputs: [x, y], out: got, sums: null });
        javascript.run(kernel, { inputs: [x, y], out: want, sums: null });
        expect(apart(got, want, 0)).toEqual([]);
      }),
      { numRuns: 40 },
    );
  });

  test("log(1 − p) unrounded, as binaryCrossEntropy writes it, keeps its digits for small p", () => {
    // 1 − p rounded to float32 is off by up to 2^-25, a relative 2^-25 / p of log(1 − p) ≈ −p:
    // 1e-3 at p = 1.6e-5. Rendered as log1p(∓p), within 3 ulp of the double-precision value
    // (which the JavaScript renderer, with 1 − p in double, only approaches for p ≫ 2^-53).
    const q = input(0, "float32");
    const kernel: Kernel = {
      shape: [n],
      inputs: [contiguous],
      value: f32(ir.add(f32(ir.neg(ir.log(ir.sub(1, q)))), f32(ir.log(ir.add(q, 1))))),
      output: { kind: "store", dtype: "float32" },
      sums: [],
    };
    const small = p.map((v) => v * 1e-4);
    const [got, want] = [new Float32Array(n), new Float32Array(n)];
    wasm.run(kernel, { inputs: [small], out: got, sums: null });
    want.set(small.map((v) => -Math.log1p(-v) + Math.log1p(v)));
    expect(apart(got, want, 3)).toEqual([]);
  });

  test("bools: comparisons, and, or, not and a bool converted to float32", () => {
    const [x, y] = [input(0, "float32"), input(1, "float32")];
    const mask = ir.or(ir.and(ir.lt(x, 0.5), ir.not(ir.eq(y, 1))), ir.ne(x, x));
    const kernel: Kernel = {
      shape: [n],
      inputs: [contiguous, contiguous],
      value: ir.convert(mask, "float32"),
      output: { kind: "sum" },
      sums: [],
    };
    const total = wasm.run(kernel, { inputs: [p, labels], out: null, sums: null });
    expect(total).toBe(javascript.run(kernel, { inputs: [p, labels], out: null, sums: null }));
    expect(total).toBeGreaterThan(0);
    // The mask itself stored as a bool array (what equal() or greater() gives), and a bool
    // constant: the JavaScript renderer's bytes.
    for (const value of [mask, ir.and(mask, constant(1, "bool"))]) {
      const stored: Kernel = { ...kernel, value, output: { kind: "store", dtype: "bool" } };
      expect(wasm.supports(stored)).toBe(true);
      const [got, want] = [new Uint8Array(n), new Uint8Array(n)];
      wasm.run(stored, { inputs: [p, labels], out: got, sums: null });
      javascript.run(stored, { inputs: [p, labels], out: want, sums: null });
      expect(got).toEqual(want);
      // Element 4 (not a multiple of 3: label 0) is p[4] < 0.5, p[4] not being NaN.
      expect(got[4]).toBe(p[4] < 0.5 ? 1 : 0);
    }
  });
});

test("the wasm renderer leaves to JavaScript what it has no float32 vector form of", () => {
  const wasm = createWasmRenderer(runtime);
  const f = input(0, "float32");
  const over = (value: Expr, size = 1 << 14, access: InputAccess = contiguous): Kernel => ({
    shape: [size],
    inputs: [access],
    value,
    output: { kind: "store", dtype: "float32" },
    sums: [],
  });
  expect(wasm.supports(over(f32(ir.exp(f))))).toBe(true);
  // Below its size threshold, float64, tanh, pow by a non-integer, a broadcast input.
  expect(wasm.supports(over(f32(ir.exp(f)), 100))).toBe(false);
  expect(wasm.supports(over(ir.exp(input(0, "float64"))))).toBe(false);
  expect(wasm.supports(over(f32(ir.tanh(f))))).toBe(false);
  // … and runs such a kernel on the JavaScript renderer: tanh(x) rounded, as JavaScript gives it.
  const x = probabilities(1 << 14, 8);
  const [got, want] = [new Float32Array(1 << 14), new Float32Array(1 << 14)];
  wasm.run(over(f32(ir.tanh(f))), { inputs: [x], out: got, sums: null });
  want.set(x.map((v) => Math.tanh(v)));
  expect(apart(got, want, 0)).toEqual([]);
  expect(wasm.supports(over(f32(ir.pow(f, 0.5))))).toBe(false);
});

test("the wasm renderer leaves to JavaScript a step held in double that a later op would amplify", () => {
  const wasm = createWasmRenderer(runtime);
  const [x, y] = [input(0, "float32"), input(1, "float32")];
  const over = (value: Expr): Kernel => ({
    shape: [1 << 14],
    inputs: [contiguous, contiguous],
    value: f32(value),
    output: { kind: "store", dtype: "float32" },
    sums: [],
  });
  // bceWithLogits' max(x, 0) − x·y at x = 1e4, y = 0.99999988: x·y rounded first is 9999.99902,
  // so the difference would be 2^-10 = 0.000977 against the exact 1e4 · 2^-23 · 1 = 0.00119.
  expect(wasm.supports(over(ir.sub(ir.max(x, 0), ir.mul(x, y))))).toBe(false);
  // 1 − σ(x) with σ(x) = 1 / (1 + exp(−x)) unrounded: σ(17) rounds to 1, so 1 − σ would be 0.
  const s = ir.div(1, ir.add(1, ir.exp(ir.neg(x))));
  expect(wasm.supports(over(ir.sub(1, s)))).toBe(false);
  // A floor, a comparison or a logarithm of a product held in double.
  expect(wasm.supports(over(ir.floor(ir.mul(x, y))))).toBe(false);
  expect(wasm.supports(over(ir.select(ir.gt(ir.mul(x, y), 1), x, y)))).toBe(false);
  expect(wasm.supports(over(ir.log(ir.mul(x, y))))).toBe(false);
  // What cannot cancel it takes: 1 + exp(−x) (terms of one sign), σ itself, log(1 − x·y) as
  // log1p(−x·y), and any step of rounded values.
  expect(wasm.supports(over(ir.add(1, ir.exp(ir.neg(x)))))).toBe(true);
  expect(wasm.supports(over(s))).toBe(true);
  expect(wasm.supports(over(ir.log(ir.sub(1, ir.mul(x, y)))))).toBe(true);
  expect(wasm.supports(over(ir.sub(ir.max(x, 0), f32(ir.mul(x, y)))))).toBe(true);
});

test("withFusion's renderer option runs the fused kernels on the renderer it names", () => {
  const seen: string[] = [];
  for (const renderer of ["javascript", "wasm"] as const) {
    withFusion("fused", () => seen.push(configureFusion({}).renderer?.name ?? "none"), {
      renderer,
    });
  }
  expect(seen).toEqual(["javascript", "wasm"]);
  expect(() => withFusion("fused", () => 0, { renderer: "webgpu" as unknown as "wasm" })).toThrow(
    'withFusion: renderer must be "javascript" or "wasm", got "webgpu"',
  );
});

test("a scatter into disjoint rows splits between threads, with the bits of one thread", () => {
  // 3000 rows of 64 (192 000 elements, past the elements a thread must get before another
  // wakes) scattered back into every other row of a [6000, 64] array, which starts non-zero.
  const wasm = createWasmRenderer(runtime);
  const index = Int32Array.from({ length: 3000 }, (_, r) => 2 * r);
  const rows = { index, scale: 64, start: 0 };
  const source = probabilities(6000 * 64, 12);
  const value = f32(ir.mul(f32(ir.exp(input(0, "float32"))), 0.5));
  const kernel = (disjoint: boolean): Kernel => ({
    shape: [3000, 64],
    inputs: [{ kind: "rows", dtype: "float32", rows, width: 64, colStride: 1 }],
    value,
    output: { kind: "scatter", dtype: "float32", rows, width: 64, disjoint },
    sums: [],
  });
  const results = [1, 2].flatMap((threads) =>
    [false, true].map((disjoint) => {
      const before = getNumThreads();
      setNumThreads(threads);
      try {
        const out = probabilities(6000 * 64, 13);
        wasm.run(kernel(disjoint), { inputs: [source], out, sums: null });
        return out;
      } finally {
        setNumThreads(before);
      }
    }),
  );
  for (const out of results.slice(1)) expect(apart(out, results[0], 0)).toEqual([]);
  // Element [2 r, j] gained exp(source[2 r, j]) / 2 (within the 2 ulp of exp); odd rows kept theirs.
  const start = probabilities(6000 * 64, 13);
  const at = 2 * 777 * 64 + 5;
  const gained = Math.fround(Math.exp(source[at]) * 0.5);
  expect(Math.abs(results[3][at] - Math.fround(start[at] + gained))).toBeLessThanOrEqual(
    4 * 2 ** -24 * results[3][at],
  );
  expect(results[3][at + 64]).toBe(start[at + 64]);
});

test("compiled selections that branch on their mask give the interpreting machine's bits", () => {
  // Labels in runs of 8 (vectors of 4 lanes all 1 or all 0, so a compiled kernel computes only
  // one side of each selection) and, every 97 elements, a vector of both (where it computes
  // both and picks lane by lane); the machine always computes both. Nested selections with
  // logarithms on both sides, and a sum beside the store.
  const n = 4096;
  const labels = Float32Array.from({ length: n }, (_, i) =>
    i % 97 < 3 ? i % 2 : Math.floor(i / 8) % 3 === 0 ? 1 : 0,
  );
  const p = probabilities(n, 21);
  const value = focalTerm();
  const [y, q] = [input(0, "float32"), input(1, "float32")];
  const nested = f32(
    ir.select(ir.eq(y, 1), ir.log(q), ir.select(ir.lt(q, 0.5), ir.exp(q), ir.log1p(q))),
  );
  for (const v of [value, nested]) {
    const kernel: Kernel = {
      shape: [n],
      inputs: [contiguous, contiguous],
      value: v,
      output: { kind: "store", dtype: "float32" },
      sums: [v],
    };
    const [compiled, machine] = [new Float32Array(n), new Float32Array(n)];
    const [compiledSum, machineSum] = [new Float64Array(1), new Float64Array(1)];
    renderers[0].wasm.run(kernel, { inputs: [labels, p], out: compiled, sums: compiledSum });
    renderers[1].wasm.run(kernel, { inputs: [labels, p], out: machine, sums: machineSum });
    expect(apart(compiled, machine, 0)).toEqual([]);
    expect(compiledSum[0]).toBe(machineSum[0]);
  }
});
