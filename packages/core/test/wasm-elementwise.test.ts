/** The WebAssembly elementwise machine: each instruction against the float32 arithmetic of JavaScript, gathers and places through row tables, sums, and the same bits for every thread count. */

import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import {
  type BinaryOp,
  ElementwiseKernel,
  runElementwise,
  type UnaryOp,
} from "../src/kernels/wasm/elementwise.js";
import { BLOCK } from "../src/kernels/wasm/elementwise-module.js";
import {
  getNumThreads,
  hasRelaxedSimd,
  setNumThreads,
  WasmRuntime,
} from "../src/kernels/wasm/runtime.js";

const plain = new WasmRuntime(false);
const relaxed = hasRelaxedSimd() ? new WasmRuntime(true) : null;
// The machine interpreting every instruction, and kernels compiled into a module of their own.
const runtimes = [
  { path: "plain SIMD, interpreted", runtime: plain, compiled: false },
  { path: "plain SIMD, compiled", runtime: plain, compiled: true },
  ...(relaxed === null
    ? []
    : [
        { path: "relaxed SIMD, interpreted", runtime: relaxed, compiled: false },
        { path: "relaxed SIMD, compiled", runtime: relaxed, compiled: true },
      ]),
];
const threadsBefore = getNumThreads();
afterAll(() => setNumThreads(threadsBefore));

/** Special values and ordinary ones, repeated to `n` elements with a seeded shuffle of the order. */
function values(n: number, seed: number): Float32Array {
  const specials = [
    0,
    -0,
    1,
    -1,
    0.5,
    2 ** -149,
    -(2 ** -130),
    3.4e38,
    -3.4e38,
    Infinity,
    -Infinity,
    NaN,
  ];
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = i % 7 === 0 ? specials[(s >>> 8) % specials.length] : ((s / 2 ** 32) * 2 - 1) * 10;
  }
  return out;
}

/** Element-by-element equality that tells −0 from +0 and takes NaN as equal to NaN. */
function sameBits(got: Float32Array, want: ArrayLike<number>): string[] {
  const wrong: string[] = [];
  for (let i = 0; i < got.length && wrong.length < 5; i++) {
    if (!Object.is(got[i], Math.fround(want[i]))) wrong.push(`[${i}] ${got[i]} ≠ ${want[i]}`);
  }
  return wrong;
}

const exactUnary: Record<Exclude<UnaryOp, "log" | "log1p" | "exp">, (a: number) => number> = {
  neg: (a) => -a,
  abs: Math.abs,
  sqrt: Math.sqrt,
  floor: Math.floor,
  ceil: Math.ceil,
  trunc: Math.trunc,
};
const arithmetic: Record<
  "add" | "sub" | "mul" | "div" | "min" | "max" | "pmin" | "pmax",
  (a: number, b: number) => number
> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  min: Math.min,
  max: Math.max,
  // The pseudo-minimum and maximum: the first operand unless the second compares below (above) it.
  // biome-ignore lint/complexity/useMathMinMax: not Math.min: a NaN or −0 operand keeps the first
  pmin: (a, b) => (b < a ? b : a),
  // biome-ignore lint/complexity/useMathMinMax: not Math.max, for the same reason
  pmax: (a, b) => (a < b ? b : a),
};
const comparisons: Record<
  "lt" | "le" | "gt" | "ge" | "eq" | "ne",
  (a: number, b: number) => boolean
> = {
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
};

// Sizes around a vector and a block: a partial last vector, one element past a block.
const SIZES = [1, 3, 4, 5, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7];

describe.each(runtimes)("the elementwise machine on $path", ({ runtime, compiled }) => {
  const run = (k: ElementwiseKernel, threads?: number) =>
    runElementwise(runtime, k, threads, compiled);
  test.each(SIZES)("unary instructions are float32's own (bit for bit), size %i", (n) => {
    const x = values(n, n);
    for (const [op, reference] of Object.entries(exactUnary)) {
      const out = new Float32Array(n);
      const k = new ElementwiseKernel(n);
      k.store(k.unary(op as UnaryOp, k.load(k.input(x))), k.output(out));
      expect(run(k, 1)).not.toBeNull();
      expect(sameBits(out, Array.from(x, reference)), op).toEqual([]);
    }
  });

  test.each(SIZES)("arithmetic is float32's own and comparisons give masks, size %i", (n) => {
    const x = values(n, 1 + n);
    const y = values(n, 2 + 3 * n);
    for (const [op, reference] of Object.entries(arithmetic)) {
      const out = new Float32Array(n);
      const k = new ElementwiseKernel(n);
      k.store(k.binary(op as BinaryOp, k.load(k.input(x)), k.load(k.input(y))), k.output(out));
      run(k, 1);
      // Math.fround of the double result: a float32 operation rounds the exact result once, and
      // so does the double one followed by fround (double has more than 2 · 24 + 2 bits).
      expect(
        sameBits(
          out,
          Array.from(x, (a, i) => reference(a, y[i])),
        ),
        op,
      ).toEqual([]);
    }
    for (const [op, reference] of Object.entries(comparisons)) {
      const out = new Float32Array(n);
      const k = new ElementwiseKernel(n);
      const mask = k.binary(op as BinaryOp, k.load(k.input(x)), k.load(k.input(y)));
      // A mask as 1 or 0: its all-ones lanes AND the bits of 1.0.
      k.store(k.binary("and", mask, k.constant(1)), k.output(out));
      run(k, 1);
      expect(
        sameBits(
          out,
          Array.from(x, (a, i) => (reference(a, y[i]) ? 1 : 0)),
        ),
        op,
      ).toEqual([]);
      // The same mask stored as bools: a byte of 1 or 0 per element, 16 at a time then the rest,
      // on two threads (whose chunks end where blocks do), nothing written past the end.
      const bools = new Uint8Array(n + 3).fill(7);
      const b = new ElementwiseKernel(n);
      b.storeMask(
        b.binary(op as BinaryOp, b.load(b.input(x)), b.load(b.input(y))),
        b.output(bools.subarray(0, n)),
      );
      run(b, 2);
      expect([...bools.subarray(0, n)], op).toEqual(
        Array.from(x, (a, i) => (reference(a, y[i]) ? 1 : 0)),
      );
      expect([...bools.subarray(n)]).toEqual([7, 7, 7]);
    }
  });

  test("andnot keeps a where the mask is false and gives +0 where it is true", () => {
    const n = 1001;
    const [x, y] = [values(n, 15), values(n, 16)];
    const out = new Float32Array(n);
    const k = new ElementwiseKernel(n);
    const [a, b] = [k.load(k.input(x)), k.load(k.input(y))];
    k.store(k.binary("andnot", a, k.binary("lt", a, b)), k.output(out));
    run(k, 1);
    expect(
      sameBits(
        out,
        Array.from(x, (v, i) => (v < y[i] ? 0 : v)),
      ),
    ).toEqual([]);
  });

  test("select, or and constants: where(x < y or x is NaN, 2x, y)", () => {
    const n = 1000;
    const [x, y] = [values(n, 5), values(n, 6)];
    const out = new Float32Array(n);
    const k = new ElementwiseKernel(n);
    const [a, b] = [k.load(k.input(x)), k.load(k.input(y))];
    const mask = k.binary("or", k.binary("lt", a, b), k.binary("ne", a, a));
    k.store(k.select(mask, k.binary("mul", a, k.constant(2)), b), k.output(out));
    run(k, 1);
    const want = Array.from(x, (v, i) => (v < y[i] || Number.isNaN(v) ? 2 * v : y[i]));
    expect(sameBits(out, want)).toEqual([]);
  });

  test("gather and place through a row table match the JavaScript loops (any rows, widths, strides)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }), // rows of the source
        fc.integer({ min: 1, max: 23 }), // width
        fc.integer({ min: 1, max: 3 }), // column stride
        fc.integer({ min: 0, max: 2 }), // start
        fc.integer(),
        (rows, width, colStride, start, seed) => {
          const rowLength = width * colStride + start;
          const source = values(rows * rowLength, seed);
          // Distinct rows, in a shuffled order, about half of them.
          const picked = Array.from({ length: rows }, (_, r) => r).filter(
            (r) => (seed >>> (r % 31)) & 1,
          );
          const index = Int32Array.from(picked.reverse());
          const n = index.length * width;
          const table = { index, scale: rowLength, start };
          const gathered = new Float32Array(n);
          const placed = new Float32Array(source.length);
          const scattered = Float32Array.from(source);
          const k = new ElementwiseKernel(n);
          const g = k.gather(k.input(source), table, width, colStride);
          k.store(g, k.output(gathered));
          k.place(k.unary("neg", g), k.output(placed), table, width, colStride);
          k.place(g, k.output(scattered, "values"), table, width, colStride, true);
          run(k, 1);
          const wantGathered: number[] = [];
          const wantPlaced = new Float32Array(source.length);
          const wantScattered = Float32Array.from(source);
          for (let r = 0; r < index.length; r++) {
            for (let c = 0; c < width; c++) {
              const at = start + index[r] * rowLength + c * colStride;
              wantGathered.push(source[at]);
              wantPlaced[at] = -source[at];
              wantScattered[at] += source[at];
            }
          }
          expect(sameBits(gathered, wantGathered)).toEqual([]);
          expect(sameBits(placed, wantPlaced)).toEqual([]);
          expect(sameBits(scattered, wantScattered)).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("a gather of broadcast rows (columns 0 apart) repeats each row's element across it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }), // rows
        fc.integer({ min: 1, max: 23 }), // width
        fc.integer(),
        (rows, width, seed) => {
          const source = values(rows * 3, seed);
          const index = Int32Array.from({ length: rows }, (_, r) => rows - 1 - r);
          const n = rows * width;
          const out = new Float32Array(n);
          const k = new ElementwiseKernel(n);
          k.store(
            k.gather(k.input(source), { index, scale: 3, start: 1 }, width, 0),
            k.output(out),
          );
          run(k, 1);
          const want = Array.from(out, (_, e) => source[1 + 3 * index[Math.floor(e / width)]]);
          expect(sameBits(out, want)).toEqual([]);
        },
      ),
      { numRuns: 40 },
    );
  });

  test.each(SIZES)("sums are the double-precision sums of the float32 values, size %i", (n) => {
    // Finite values only: the order of a double sum of n float32 values changes it by at most
    // n · 2^-53 · Σ|x|.
    const x = values(n, 9).map((v) => (Number.isFinite(v) && Math.abs(v) < 1e30 ? v : 0.25));
    const k = new ElementwiseKernel(n);
    const v = k.load(k.input(x));
    const [plain, squares] = [k.sum(v), k.sum(k.binary("mul", v, v))];
    const sums = run(k, 1) as Float64Array;
    let [want, wantSquares, magnitude] = [0, 0, 0];
    for (const a of x) {
      want += a;
      wantSquares += Math.fround(a * a);
      magnitude += Math.abs(a);
    }
    expect(Math.abs(sums[plain] - want)).toBeLessThanOrEqual(n * 2 ** -53 * magnitude);
    expect(Math.abs(sums[squares] - wantSquares)).toBeLessThanOrEqual(n * 2 ** -53 * wantSquares);
  });

  test("a kernel of every kind of instruction gives the same bits on 1, 2 and 3 threads", () => {
    // Large enough for three shares (each thread gets at least 2^16 elements).
    const width = 20;
    const rows = 11_000;
    const source = values(rows * width, 3).map((v) => Math.abs(v) / 10);
    const index = Int32Array.from({ length: rows }, (_, r) => (r * 7919) % rows);
    const table = { index, scale: width, start: 0 };
    const onThreads = (threads: number) => {
      setNumThreads(threads);
      const k = new ElementwiseKernel(rows * width);
      const p = k.gather(k.input(source), table, width, 1);
      const logs = k.binary("add", k.unary("log", p), k.unary("log1p", k.unary("neg", p)));
      const grad = new Float32Array(source.length);
      k.place(k.binary("mul", k.unary("exp", logs), p), k.output(grad), table, width, 1);
      const total = k.sum(logs);
      const sums = run(k) as Float64Array;
      return { grad, total: sums[total] };
    };
    const [one, two, three] = [onThreads(1), onThreads(2), onThreads(3)];
    expect(sameBits(two.grad, one.grad)).toEqual([]);
    expect(sameBits(three.grad, one.grad)).toEqual([]);
    expect(Object.is(two.total, one.total) && Object.is(three.total, one.total)).toBe(true);
    // And it computed something: exp(log p + log(1 − p)) · p = p²(1 − p) within float32 rounding.
    const at = index[5] * width + 3;
    const p = source[at];
    expect(one.grad[at]).toBeCloseTo(p * p * (1 - p), 5);
  });

  test("a scalar changes from call to call without a new kernel: x · s for s = 2, then 3", () => {
    const x = values(300, 4);
    for (const s of [2, 3]) {
      const out = new Float32Array(300);
      const k = new ElementwiseKernel(300);
      k.store(k.binary("mul", k.load(k.input(x)), k.scalar(s)), k.output(out));
      run(k, 1);
      expect(
        sameBits(
          out,
          Array.from(x, (v) => v * s),
        ),
      ).toEqual([]);
    }
  });

  test("an empty kernel does nothing and sums to 0", () => {
    const k = new ElementwiseKernel(0);
    const total = k.sum(k.load(k.input(new Float32Array(0))));
    expect(Array.from(run(k) as Float64Array)).toEqual([0]);
    expect(total).toBe(0);
  });
});

test("ElementwiseKernel stores masks into bool arrays only", () => {
  const k = new ElementwiseKernel(4);
  const mask = k.binary("eq", k.constant(1), k.constant(1));
  expect(() => k.storeMask(mask, k.output(new Float32Array(4)))).toThrow(
    "ElementwiseKernel.storeMask: the array must be a Uint8Array (bool)",
  );
});

test("ElementwiseKernel rejects a size that is not an element count", () => {
  expect(() => new ElementwiseKernel(-1)).toThrow(
    "ElementwiseKernel: size must be an integer in [0, 2^31), got -1",
  );
  expect(() => new ElementwiseKernel(2.5)).toThrow("got 2.5");
});

test("ElementwiseKernel rejects arrays and row tables that do not cover the kernel", () => {
  const k = new ElementwiseKernel(6);
  const short = k.input(new Float32Array(5));
  expect(() => k.load(short)).toThrow(
    "ElementwiseKernel.load: the array has 5 elements, the kernel 6",
  );
  const v = k.constant(1);
  expect(() => k.store(v, k.output(new Float32Array(7)))).toThrow(
    "ElementwiseKernel.store: the array has 7 elements, the kernel 6",
  );
  const source = k.input(new Float32Array(12));
  const rows = (index: number[], scale = 3) => ({ index: Int32Array.from(index), scale, start: 0 });
  expect(() => k.gather(source, rows([0, 1]), 0, 1)).toThrow(
    "ElementwiseKernel.gather: width must be an integer >= 1, got 0",
  );
  expect(() => k.gather(source, rows([0, 1, 2]), 3, 1)).toThrow(
    "ElementwiseKernel.gather: 3 rows of 3 are 9 elements, the kernel has 6",
  );
  // Row 3 starts at element 9 and ends at 11 with stride 1 (inside), at 13 with stride 2 (outside).
  expect(() => k.gather(source, rows([0, 3]), 3, 2)).toThrow(
    "ElementwiseKernel.gather: row 3 (elements 9 to 13) is outside the array of 12",
  );
  expect(() => k.place(v, k.output(new Float32Array(12)), rows([-1, 0]), 3, 1, true)).toThrow(
    "ElementwiseKernel.scatter: row -1 (elements -3 to -1) is outside the array of 12",
  );
  expect(() => k.gather(source, rows([0, 3]), 3, 1)).not.toThrow();
});

test("the extremes of long row tables in wasm memory are found in wasm, with the JavaScript scan's results", () => {
  // Lengths around the vector width and the threshold, a table of one entry, negative entries.
  for (const n of [1, 3, 4, 5, 17, 4095, 4096, 4099, 50_001]) {
    const table = plain.tensorArray("int32", n) as Int32Array;
    let s = n;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      table[i] = (s % 2001) - 1000;
    }
    table[n - 1] = -5000; // the smallest in the scalar tail (or the only one)
    if (n > 2) table[n >> 1] = 7000;
    expect(plain.extremesOf(table)).toEqual([Math.min(...table), Math.max(...table)]);
  }
  expect(plain.extremesOf(new Int32Array(8))).toBeNull();
  expect(plain.extremesOf(plain.tensorArray("int32", 0) as Int32Array)).toBeNull();
  // A kernel that knows its runtime checks a resident table of 5000 rows this way: row 4999 is
  // 1000, whose row of 3 (elements 3000 to 3002) lies outside an array of 3000.
  const k = new ElementwiseKernel(15_000, plain);
  const rows = plain.tensorArray("int32", 5000) as Int32Array;
  for (let i = 0; i < 5000; i++) rows[i] = i % 1000;
  rows[4999] = 1000;
  expect(() =>
    k.gather(k.input(new Float32Array(3000)), { index: rows, scale: 3, start: 0 }, 3, 1),
  ).toThrow(
    "ElementwiseKernel.gather: row 1000 (elements 3000 to 3002) is outside the array of 3000",
  );
});

test("the runtime's fill sets exactly the elements asked, a vector at a time and then the rest", () => {
  // Scratch above the heap's arrays, as the kernels use it: its first element in either view.
  const bytes = Math.ceil(plain.residentBytes / 64) * 64;
  plain.reserve(bytes + 8 * 1100);
  for (const single of [true, false]) {
    const at = bytes / (single ? 4 : 8);
    for (const [from, to] of [
      [0, 0],
      [3, 4],
      [5, 12],
      [16, 1043],
    ]) {
      const region = () => (single ? plain.f32 : plain.f64).subarray(at, at + 1100);
      region().fill(7);
      plain.fill(single, 0.1, at + from, at + to);
      // 0.1 rounded to float32 in the float32 view; every element outside [from, to) keeps 7.
      const value = single ? Math.fround(0.1) : 0.1;
      const want = Array.from({ length: 1100 }, (_, i) => (i >= from && i < to ? value : 7));
      expect(Array.from(region())).toEqual(want);
    }
  }
});
