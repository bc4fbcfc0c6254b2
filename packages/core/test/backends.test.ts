/** Tests of the dense backends against each other: every wasm kernel against a float64 reference within float32 rounding, the thread split bit for bit, and backend selection. */

import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import {
  add,
  argmax,
  argwhere,
  createWasmBackend,
  cumsum,
  type DenseBackend,
  exp,
  gather,
  gatherNd,
  getBackend,
  getNumThreads,
  greater,
  javascriptBackend,
  max,
  maxPool2d,
  setBackend,
  setNumThreads,
  sum,
  takeAlongAxis,
  tensor,
} from "../src/index.js";
import { backendFromEnvironment, type ConvGeometry } from "../src/kernels/backend.js";
import { setColumnBlock } from "../src/kernels/conv.js";
import { javascript } from "../src/kernels/javascript.js";
import { javascriptReductions } from "../src/kernels/javascript-reductions.js";
import type { Renderer } from "../src/kernels/kernel.js";
import { assemble, FunctionBuilder } from "../src/kernels/wasm/assembler.js";
import { chunkArguments, WorkerPool } from "../src/kernels/wasm/pool.js";
import { hasRelaxedSimd } from "../src/kernels/wasm/runtime.js";
import { webAssembly } from "../src/kernels/wasm/webassembly.js";
import { filled, WASM_BACKENDS } from "./backends.js";

const F32_UNIT = 2 ** -24;
const F64_UNIT = 2 ** -53;

const abs = (x: ArrayLike<number>) => Float64Array.from(x, Math.abs);

/**
 * Checks `actual` against `exact` (float64) element by element within the classic bound of a sum
 * of `terms` products in precision `unit`: (terms + 2) · unit · Σ|products| (`magnitude`), the
 * 2 covering the rounding of the sum into C and of C itself.
 */
function expectWithinRounding(
  actual: ArrayLike<number>,
  exact: ArrayLike<number>,
  magnitude: ArrayLike<number>,
  terms: number,
  unit: number,
): void {
  expect(actual.length).toBe(exact.length);
  for (let i = 0; i < exact.length; i++) {
    const bound = (terms + 2) * unit * magnitude[i];
    if (!(Math.abs(actual[i] - exact[i]) <= bound)) {
      throw new Error(`element ${i}: ${actual[i]} vs exact ${exact[i]}, beyond ${bound}`);
    }
  }
}

interface Product {
  m: number;
  n: number;
  k: number;
  transposeA: boolean;
  transposeB: boolean;
}

/** C (offset by one, row stride n + 2, starting at small integers) += op(A) · op(B) on `backend`. */
function runGemm(
  backend: DenseBackend,
  p: Product,
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  c: Float32Array | Float64Array,
): void {
  const { m, n, k, transposeA, transposeB } = p;
  const [aRow, aCol] = transposeA ? [1, m] : [k, 1];
  const [bRow, bCol] = transposeB ? [1, k] : [n, 1];
  backend.gemm(m, n, k, a, 2, aRow, aCol, b, 1, bRow, bCol, c, 1, n + 2);
}

function operandsOf(p: Product, single: boolean) {
  const make = (n: number, seed: number) =>
    single ? Float32Array.from(filled(n, seed)) : filled(n, seed);
  const a = make(p.m * p.k + 2, p.m + 7 * p.k);
  const b = make(p.k * p.n + 1, p.n + 3 * p.k);
  const c = make(1 + p.m * (p.n + 2), 5).map((v) => Math.round(8 * v));
  return { a, b, c };
}

const sides = [1, 3, 4, 8, 17, 33, 65];
const productArb = fc.record({
  m: fc.constantFrom(...sides),
  n: fc.constantFrom(...sides),
  // 600 cuts into two equal depth blocks, 1001 into three of 251 and a last one of 248.
  k: fc.constantFrom(1, 3, 17, 33, 255, 257, 600, 1001),
  transposeA: fc.boolean(),
  transposeB: fc.boolean(),
});

describe("wasm gemm", () => {
  afterEach(() => setNumThreads(2));

  it("has both kernels: relaxed SIMD where the runtime validates it, plain SIMD always", () => {
    // Node 20 validates relaxed SIMD once its V8 flag is set, which hasRelaxedSimd does.
    expect(hasRelaxedSimd()).toBe(true);
    expect(WASM_BACKENDS.map((b) => b.name)).toEqual(["wasm", "wasm-simd"]);
  });

  for (const backend of WASM_BACKENDS) {
    for (const dtype of ["float32", "float64"] as const) {
      it(`${backend.name}, ${dtype}: within rounding of a float64 reference, across tile, block and transposition edges`, () => {
        const single = dtype === "float32";
        fc.assert(
          fc.property(productArb, (p) => {
            const { a, b, c } = operandsOf(p, single);
            // Exact: the same (float32-valued) operands in float64 on the reference kernel; the
            // magnitude bound from |A| · |B| + |C|.
            const exact = Float64Array.from(c);
            runGemm(javascriptBackend, p, Float64Array.from(a), Float64Array.from(b), exact);
            const magnitude = abs(c);
            runGemm(javascriptBackend, p, abs(a), abs(b), magnitude);
            runGemm(backend, p, a, b, c);
            expectWithinRounding(c, exact, magnitude, p.k, single ? F32_UNIT : F64_UNIT);
            // The elements around C's rows (its offset and row padding) are untouched.
            expect(c[0]).toBe(operandsOf(p, single).c[0]);
          }),
          { numRuns: 40 },
        );
      });

      it(`${backend.name}, ${dtype}: the same bits on 1, 2 and 3 threads`, () => {
        const single = dtype === "float32";
        for (const p of [
          { m: 67, n: 45, k: 300, transposeA: false, transposeB: false },
          { m: 5, n: 203, k: 17, transposeA: true, transposeB: false },
          { m: 130, n: 3, k: 513, transposeA: false, transposeB: true },
          // Large enough that the operand read whole (B here, A in the next) is packed by
          // several threads, each writing its panels of every depth block, the last one shorter.
          { m: 130, n: 200, k: 1001, transposeA: false, transposeB: true },
          { m: 72, n: 300, k: 1001, transposeA: true, transposeB: false },
        ]) {
          const results = [1, 2, 3].map((threads) => {
            setNumThreads(threads);
            const { a, b, c } = operandsOf(p, single);
            runGemm(backend, p, a, b, c);
            return Array.from(c);
          });
          expect(results[1]).toEqual(results[0]);
          expect(results[2]).toEqual(results[0]);
        }
      });
    }
  }

  for (const backend of WASM_BACKENDS) {
    it(`${backend.name}: adds into a C in wasm memory in place where its rows are whole tiles, elsewhere through a copy`, () => {
      // C in the backend's memory with rows n apart from offset 3: in place when m is a multiple of
      // 4 and n of the B panel (8 float32, 4 float64), copied otherwise; its neighbours untouched.
      for (const single of [true, false]) {
        const dtype = single ? "float32" : "float64";
        for (const [m, n, k] of [
          [8, 16, 33],
          [64, 256, 100],
          [12, 8, 7],
          [5, 16, 9],
          [8, 10, 300],
        ]) {
          // Operands rounded to the dtype first, so that the float64 reference sees the same values.
          const rounded = (x: Float64Array) =>
            single ? Float64Array.from(Float32Array.from(x)) : x;
          const a = rounded(filled(m * k, m + k));
          const b = rounded(filled(k * n, n + k));
          const start = filled(m * n + 6, 9).map((v) => Math.round(8 * v));
          const exact = start.slice();
          javascriptBackend.gemm(m, n, k, a, 0, k, 1, b, 0, n, 1, exact, 3, n);
          const magnitude = abs(start);
          javascriptBackend.gemm(m, n, k, abs(a), 0, k, 1, abs(b), 0, n, 1, magnitude, 3, n);
          const results = [1, 2].map((threads) => {
            setNumThreads(threads);
            const c = backend.allocate?.(dtype, m * n + 6, false) as Float32Array | Float64Array;
            c.set(start);
            const cast = (x: Float64Array) => (single ? Float32Array.from(x) : x);
            backend.gemm(m, n, k, cast(a), 0, k, 1, cast(b), 0, n, 1, c, 3, n);
            expectWithinRounding(c, exact, magnitude, k, single ? F32_UNIT : F64_UNIT);
            for (const i of [0, 1, 2, m * n + 3, m * n + 4, m * n + 5]) expect(c[i]).toBe(start[i]);
            return Array.from(c);
          });
          expect(results[1]).toEqual(results[0]);
        }
      }
    });
  }

  it("splits large products between threads with the default thresholds, the same bits", () => {
    const backend = createWasmBackend();
    const p = { m: 96, n: 130, k: 200, transposeA: false, transposeB: false };
    const results = [1, 2].map((threads) => {
      setNumThreads(threads);
      const { a, b, c } = operandsOf(p, true);
      runGemm(backend, p, a, b, c);
      return Array.from(c);
    });
    expect(results[1]).toEqual(results[0]);
  });
});

/** A small random convolution geometry (strides, padding and dilation differing between the axes, groups). */
const geometryArb = fc
  .record({
    batch: fc.integer({ min: 1, max: 2 }),
    inGroup: fc.integer({ min: 1, max: 3 }),
    outGroup: fc.integer({ min: 1, max: 3 }),
    groups: fc.integer({ min: 1, max: 2 }),
    height: fc.integer({ min: 4, max: 9 }),
    width: fc.integer({ min: 4, max: 11 }),
    kernelHeight: fc.integer({ min: 1, max: 3 }),
    kernelWidth: fc.integer({ min: 1, max: 3 }),
    strideHeight: fc.integer({ min: 1, max: 2 }),
    strideWidth: fc.integer({ min: 1, max: 3 }),
    padTop: fc.integer({ min: 0, max: 1 }),
    padLeft: fc.integer({ min: 0, max: 2 }),
    dilationHeight: fc.integer({ min: 1, max: 2 }),
    dilationWidth: fc.integer({ min: 1, max: 2 }),
  })
  .map((c): ConvGeometry => {
    const out = (size: number, kernel: number, stride: number, pad: number, dilation: number) =>
      Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
    return {
      batch: c.batch,
      inChannels: c.inGroup * c.groups,
      inHeight: c.height,
      inWidth: c.width,
      outChannels: c.outGroup * c.groups,
      outHeight: out(c.height, c.kernelHeight, c.strideHeight, c.padTop, c.dilationHeight),
      outWidth: out(c.width, c.kernelWidth, c.strideWidth, c.padLeft, c.dilationWidth),
      kernelHeight: c.kernelHeight,
      kernelWidth: c.kernelWidth,
      strideHeight: c.strideHeight,
      strideWidth: c.strideWidth,
      padTop: c.padTop,
      padLeft: c.padLeft,
      dilationHeight: c.dilationHeight,
      dilationWidth: c.dilationWidth,
      groups: c.groups,
    };
  });

/**
 * The three convolution kernels of `backend` on `g` (float32 or float64) against the float64
 * reference, each within the rounding bound of its sums.
 */
function checkConvolution(backend: DenseBackend, g: ConvGeometry, single: boolean): void {
  const cast = (x: Float64Array) => (single ? Float32Array.from(x) : x);
  const unit = single ? F32_UNIT : F64_UNIT;
  const xSize = g.batch * g.inChannels * g.inHeight * g.inWidth;
  const wSize = g.outChannels * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth;
  const ySize = g.batch * g.outChannels * g.outHeight * g.outWidth;
  const x = cast(filled(xSize, 1 + xSize));
  const w = cast(filled(wSize, 2 + wSize));
  const dy = cast(filled(ySize, 3 + ySize));
  const bias = cast(filled(g.outChannels, 4));
  const depth = (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth;
  type Arrays = (Float32Array | Float64Array)[];
  /**
   * `kernel` on this backend against its float64 value and magnitude bound on the reference; the
   * backward kernels add into their output, so it starts at small integers for them.
   */
  const compare = (
    size: number,
    terms: number,
    operands: Arrays,
    kernel: (on: DenseBackend, inputs: Arrays, out: Float32Array | Float64Array) => void,
    adds = true,
  ) => {
    const start = filled(size, 5).map((v) => (adds ? Math.round(8 * v) : 0));
    const actual = single ? Float32Array.from(start) : Float64Array.from(start);
    kernel(backend, operands, actual);
    const exact = Float64Array.from(start);
    kernel(
      javascriptBackend,
      operands.map((t) => Float64Array.from(t)),
      exact,
    );
    const magnitude = abs(start);
    kernel(javascriptBackend, operands.map(abs), magnitude);
    expectWithinRounding(actual, exact, magnitude, terms, unit);
  };
  compare(
    ySize,
    depth + 1,
    [x, w, bias],
    (on, [a, k, b], out) => on.conv2d(a, k, b, out, g),
    false,
  );
  compare(xSize, g.outChannels * depth, [dy, w], (on, [d, k], out) =>
    on.conv2dBackwardInput(d, k, out, g),
  );
  compare(wSize, ySize, [x, dy], (on, [a, d], out) => on.conv2dBackwardWeight(a, d, out, g));
}

describe("wasm convolution kernels", () => {
  for (const backend of WASM_BACKENDS) {
    for (const dtype of ["float32", "float64"] as const) {
      it(`${backend.name}, ${dtype}: forward, backward-input and backward-weight within rounding of float64`, () => {
        fc.assert(
          fc.property(geometryArb, (g) => checkConvolution(backend, g, dtype === "float32")),
          { numRuns: 40 },
        );
      });
    }
  }

  it("batches images into one product, several batches when their columns exceed one, and takes blocks of rows for images too large for a batch", () => {
    const base = {
      outChannels: 4,
      kernelHeight: 3,
      kernelWidth: 3,
      strideHeight: 1,
      strideWidth: 1,
      padTop: 1,
      padLeft: 1,
      dilationHeight: 1,
      dilationWidth: 1,
      groups: 1,
    };
    // 4 · 9 = 36 column rows of 20 · 20 pixels: 14 400 elements per image, 4 images per batch
    // of 2¹⁶, so 5 images make batches of 4 and 1.
    const batches: ConvGeometry = {
      ...base,
      batch: 5,
      inChannels: 4,
      inHeight: 20,
      inWidth: 20,
      outHeight: 20,
      outWidth: 20,
    };
    // 16 · 9 = 144 rows of 24 · 24 pixels: 82 944 elements, more than a batch holds.
    const rows: ConvGeometry = {
      ...base,
      batch: 2,
      inChannels: 16,
      inHeight: 24,
      inWidth: 24,
      outHeight: 24,
      outWidth: 24,
    };
    // 32 · 9 = 288 column rows of 32 · 32 pixels: blocks of 28 output rows (258 048 elements),
    // each block's product split between the threads.
    const split: ConvGeometry = {
      ...base,
      batch: 2,
      inChannels: 32,
      inHeight: 32,
      inWidth: 32,
      outHeight: 32,
      outWidth: 32,
      outChannels: 4,
    };
    for (const g of [batches, rows, split]) checkConvolution(WASM_BACKENDS[0], g, true);
    checkConvolution(WASM_BACKENDS[0], batches, false);
    // The same bits on one thread and on two (every chunk of every product split differently).
    const threads = getNumThreads();
    try {
      for (const g of [batches, split]) {
        const image = g.inChannels * g.inHeight * g.inWidth;
        const x = Float32Array.from(filled(g.batch * image, 1));
        const w = Float32Array.from(filled(g.outChannels * g.inChannels * 9, 2));
        const dy = Float32Array.from(filled(g.batch * g.outChannels * g.outHeight * g.outWidth, 3));
        const [one, two] = [1, 2].map((n) => {
          setNumThreads(n);
          const out = new Float32Array(dy.length);
          const dx = new Float32Array(x.length);
          const dw = new Float32Array(w.length);
          WASM_BACKENDS[0].conv2d(x, w, null, out, g);
          WASM_BACKENDS[0].conv2dBackwardInput(dy, w, dx, g);
          WASM_BACKENDS[0].conv2dBackwardWeight(x, dy, dw, g);
          return [out, dx, dw];
        });
        expect(two).toEqual(one);
      }
    } finally {
      setNumThreads(threads);
    }
  });
});

describe("wasm convolution by whole images", () => {
  // With im2col blocks of at most 40 elements no image fits a batch, so every ungrouped,
  // non-pointwise convolution (and the stride-1 backward-input pass, itself a convolution) takes
  // the per-image path, its output rows a few at a time.
  const manyImages = geometryArb.map((g) => ({ ...g, batch: 2 * g.batch + 3 }));
  it("is within rounding of float64 and the same bits on 1, 2 and 3 threads, images split between chunks", () => {
    const previous = setColumnBlock(40);
    const threads = getNumThreads();
    try {
      fc.assert(
        fc.property(manyImages, fc.boolean(), (g, single) => {
          setNumThreads(1);
          checkConvolution(WASM_BACKENDS[0], g, single);
          const cast = (v: Float64Array) => (single ? Float32Array.from(v) : v);
          const image = g.inChannels * g.inHeight * g.inWidth;
          const wSize = g.outChannels * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth;
          const x = cast(filled(g.batch * image, 1));
          const w = cast(filled(wSize, 2));
          const bias = cast(filled(g.outChannels, 3));
          const dy = cast(filled(g.batch * g.outChannels * g.outHeight * g.outWidth, 4));
          const runs = [1, 2, 3].map((n) => {
            setNumThreads(n);
            const out = single ? new Float32Array(dy.length) : new Float64Array(dy.length);
            const dx = single ? new Float32Array(x.length) : new Float64Array(x.length);
            WASM_BACKENDS[0].conv2d(x, w, bias, out, g);
            WASM_BACKENDS[0].conv2dBackwardInput(dy, w, dx, g);
            return [out, dx];
          });
          expect(runs[1]).toEqual(runs[0]);
          expect(runs[2]).toEqual(runs[0]);
        }),
        { numRuns: 30 },
      );
    } finally {
      setColumnBlock(previous);
      setNumThreads(threads);
    }
  });
});

describe("wasm weight gradient by whole images", () => {
  // Batches of 3 to 23 images: one chunk per image up to 8, then 8 chunks of 2 or 3 images each,
  // whose partial sums are added in chunk order.
  const batches = geometryArb.map((g) => ({
    ...g,
    batch: 3 + 5 * (g.batch - 1) + (g.inHeight % 4) * 4,
  }));
  it("is within rounding of float64 and the same bits on 1, 2 and 3 threads", () => {
    const threads = getNumThreads();
    try {
      fc.assert(
        fc.property(batches, fc.boolean(), (g, single) => {
          setNumThreads(1);
          checkConvolution(WASM_BACKENDS[0], g, single);
          const cast = (v: Float64Array) => (single ? Float32Array.from(v) : v);
          const wSize = g.outChannels * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth;
          const x = cast(filled(g.batch * g.inChannels * g.inHeight * g.inWidth, 1));
          const dy = cast(filled(g.batch * g.outChannels * g.outHeight * g.outWidth, 4));
          const runs = [1, 2, 3].map((n) => {
            setNumThreads(n);
            const dw = cast(filled(wSize, 5));
            WASM_BACKENDS[0].conv2dBackwardWeight(x, dy, dw, g);
            return dw;
          });
          expect(runs[1]).toEqual(runs[0]);
          expect(runs[2]).toEqual(runs[0]);
        }),
        { numRuns: 30 },
      );
    } finally {
      setNumThreads(threads);
    }
  });
});

describe("wasm pooling kernels", () => {
  const poolArb = fc
    .record({
      planes: fc.integer({ min: 1, max: 4 }),
      inHeight: fc.integer({ min: 1, max: 9 }),
      inWidth: fc.integer({ min: 1, max: 9 }),
      kernelHeight: fc.integer({ min: 1, max: 3 }),
      kernelWidth: fc.integer({ min: 1, max: 3 }),
      strideHeight: fc.integer({ min: 1, max: 3 }),
      strideWidth: fc.integer({ min: 1, max: 3 }),
      padTop: fc.integer({ min: 0, max: 1 }),
      padLeft: fc.integer({ min: 0, max: 1 }),
      // Values from a small set, so that windows tie; some NaN.
      values: fc.array(fc.constantFrom(-1, 0, 0.5, 2, Number.NaN), { minLength: 81 * 4 }),
    })
    .filter(
      (c) =>
        2 * c.padTop <= c.kernelHeight &&
        2 * c.padLeft <= c.kernelWidth &&
        c.inHeight + 2 * c.padTop >= c.kernelHeight &&
        c.inWidth + 2 * c.padLeft >= c.kernelWidth,
    )
    .map((c) => ({
      ...c,
      outHeight: Math.floor((c.inHeight + 2 * c.padTop - c.kernelHeight) / c.strideHeight) + 1,
      outWidth: Math.floor((c.inWidth + 2 * c.padLeft - c.kernelWidth) / c.strideWidth) + 1,
    }));

  for (const backend of WASM_BACKENDS) {
    for (const dtype of ["float32", "float64"] as const) {
      it(`${backend.name}, ${dtype}: max and average pooling give the JavaScript loops' bits, ties and NaN included`, () => {
        const make = (n: number) =>
          dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
        fc.assert(
          fc.property(poolArb, (g) => {
            const x = make(g.planes * g.inHeight * g.inWidth);
            x.forEach((_, i) => {
              x[i] = g.values[i % g.values.length];
            });
            const outputs = g.planes * g.outHeight * g.outWidth;
            const [out, expected] = [make(outputs), make(outputs)];
            const [argmax, expectedArgmax] = [new Int32Array(outputs), new Int32Array(outputs)];
            backend.maxPool2d(x, out, argmax, g);
            javascriptBackend.maxPool2d(x, expected, expectedArgmax, g);
            expect(Array.from(out)).toEqual(Array.from(expected));
            expect(Array.from(argmax)).toEqual(Array.from(expectedArgmax));
            const finite = x.map((v) => (Number.isNaN(v) ? 0.25 : v));
            backend.avgPool2d(finite, out, g);
            javascriptBackend.avgPool2d(finite, expected, g);
            expect(Array.from(out)).toEqual(Array.from(expected));
          }),
          { numRuns: 60 },
        );
      });
    }
  }
});

describe("wasm 2 × 2 max-pool", () => {
  /** The 2 × 2, stride-2, unpadded pool of `planes` H × W planes (floor mode). */
  const twoByTwo = (planes: number, inHeight: number, inWidth: number) => ({
    planes,
    inHeight,
    inWidth,
    outHeight: Math.floor(inHeight / 2),
    outWidth: Math.floor(inWidth / 2),
    kernelHeight: 2,
    kernelWidth: 2,
    strideHeight: 2,
    strideWidth: 2,
    padTop: 0,
    padLeft: 0,
  });
  // The SIMD kernel of the 2 × 2, stride-2, unpadded float32 pool: four windows a step, the rest
  // one at a time, so widths around multiples of 8 (odd ones leave a column out, floor mode).
  const twoByTwoArb = fc.record({
    planes: fc.integer({ min: 1, max: 3 }),
    inHeight: fc.integer({ min: 2, max: 7 }),
    inWidth: fc.integer({ min: 2, max: 19 }),
    values: fc.array(fc.constantFrom(-1, 0, 0.5, 2, Number.NaN, -Infinity), { minLength: 64 }),
  });
  for (const backend of WASM_BACKENDS) {
    it(`${backend.name}: the same maxima and winners as the JavaScript loop, ties, NaN and −∞ included`, () => {
      fc.assert(
        fc.property(twoByTwoArb, (c) => {
          const g = twoByTwo(c.planes, c.inHeight, c.inWidth);
          const x = new Float32Array(g.planes * g.inHeight * g.inWidth);
          x.forEach((_, i) => {
            x[i] = c.values[i % c.values.length];
          });
          const outputs = g.planes * g.outHeight * g.outWidth;
          const [out, expected] = [new Float32Array(outputs), new Float32Array(outputs)];
          const [argmax, expectedArgmax] = [new Int32Array(outputs), new Int32Array(outputs)];
          backend.maxPool2d(x, out, argmax, g);
          javascriptBackend.maxPool2d(x, expected, expectedArgmax, g);
          expect(Array.from(out)).toEqual(Array.from(expected));
          expect(Array.from(argmax)).toEqual(Array.from(expectedArgmax));
        }),
        { numRuns: 100 },
      );
    });
  }

  it("picks by hand-worked rules: the first of equal maxima, the first NaN, the top-left of −∞", () => {
    // One plane 2 × 10: windows over columns (0,1) … (8,9) of both rows.
    // Window 0: [1, 3 / 3, 2]: 3 first at index 1. Window 1: [NaN, 5 / NaN, 9]: the first NaN,
    // index 2. Window 2: [−∞, −∞ / −∞, −∞]: index 4 (best stays −∞, the first element wins).
    // Window 3: [0, −0 / 0, 0]: −0 is not > 0, index 6. Window 4 (the scalar tail): [2, 7 / 7, NaN]:
    // 7 at 9 first, then the NaN at 19 wins.
    const top = [1, 3, Number.NaN, 5, -Infinity, -Infinity, 0, -0, 2, 7];
    const bottom = [3, 2, Number.NaN, 9, -Infinity, -Infinity, 0, 0, 7, Number.NaN];
    const x = Float32Array.from([...top, ...bottom]);
    const g = twoByTwo(1, 2, 10);
    const out = new Float32Array(5);
    const argmax = new Int32Array(5);
    WASM_BACKENDS[0].maxPool2d(x, out, argmax, g);
    expect(Array.from(out)).toEqual([3, Number.NaN, -Infinity, 0, Number.NaN]);
    expect(Array.from(argmax)).toEqual([1, 2, 4, 6, 19]);
  });
});

describe("the max-pool's adjoint on the wasm backends", () => {
  afterEach(() => setNumThreads(2));
  type Geometry = Parameters<DenseBackend["maxPool2d"]>[3];
  const geometry = (planes: number, size: number, k: number, s: number, pad: number): Geometry => {
    const outSize = Math.floor((size + 2 * pad - k) / s) + 1;
    return {
      planes,
      inHeight: size,
      inWidth: size,
      outHeight: outSize,
      outWidth: outSize,
      kernelHeight: k,
      kernelWidth: k,
      strideHeight: s,
      strideWidth: s,
      padTop: pad,
      padLeft: pad,
    };
  };
  /** Arrays in `backend`'s wasm memory (where the adjoint runs in wasm), filled from `values`. */
  const resident = (
    backend: DenseBackend,
    dtype: "float32" | "float64",
    values: ArrayLike<number>,
  ) => {
    const array = backend.allocate?.(dtype, values.length, false);
    if (array === null || array === undefined) throw new Error("the backend kept no array");
    array.set(values);
    return array as Float32Array | Float64Array;
  };
  /** The winners maxPool2d gives for values with ties (a small set), as an int32 array in wasm memory. */
  const winners = (backend: DenseBackend, g: Geometry, seed: number) => {
    const x = Float64Array.from(filled(g.planes * g.inHeight * g.inWidth, seed), (v) =>
      Math.round(v * 4),
    );
    const outputs = g.planes * g.outHeight * g.outWidth;
    const argmax = backend.allocate?.("int32", outputs, false) as Int32Array;
    javascriptBackend.maxPool2d(x, new Float64Array(outputs), argmax, g);
    return argmax;
  };

  for (const backend of WASM_BACKENDS) {
    for (const dtype of ["float32", "float64"] as const) {
      it(`${backend.name}, ${dtype}: adds in the JavaScript loop's order, the same bits on 1 and 2 threads`, () => {
        // Overlapping 3 × 3 windows (an element wins up to 9 of them, its sum in window order),
        // a padded 3 × 3 stride 2, and the plain 2 × 2: 256 planes, so that 2 threads get
        // several chunks of whole planes.
        for (const g of [
          geometry(256, 16, 3, 1, 1),
          geometry(256, 17, 3, 2, 1),
          geometry(256, 32, 2, 2, 0),
        ]) {
          const outputs = g.planes * g.outHeight * g.outWidth;
          const argmax = winners(backend, g, 7);
          const dyValues = filled(outputs, 3);
          const dxValues = filled(g.planes * g.inHeight * g.inWidth, 5);
          const expected =
            dtype === "float32" ? Float32Array.from(dxValues) : Float64Array.from(dxValues);
          javascriptBackend.maxPool2dBackward(
            dtype === "float32" ? Float32Array.from(dyValues) : dyValues,
            argmax,
            expected,
            g,
          );
          for (const threads of [1, 2]) {
            setNumThreads(threads);
            const dy = resident(backend, dtype, dyValues);
            const dx = resident(backend, dtype, dxValues);
            backend.maxPool2dBackward(dy, argmax, dx, g);
            const same = Buffer.from(dx.buffer, dx.byteOffset, dx.byteLength).equals(
              Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
            );
            if (!same) {
              const at = dx.findIndex((v, i) => !Object.is(v, expected[i]));
              throw new Error(`${threads} threads, dx[${at}]: ${dx[at]} vs ${expected[at]}`);
            }
          }
        }
      });
    }

    it(`${backend.name}: max-pools into outputs and winners in wasm memory in place, as the JavaScript loop`, () => {
      for (const g of [geometry(3, 9, 3, 2, 1), geometry(5, 12, 2, 2, 0)]) {
        const outputs = g.planes * g.outHeight * g.outWidth;
        const x = resident(
          backend,
          "float32",
          Float32Array.from(filled(g.planes * 81 * 2, 9), (v) => Math.round(v * 8)).subarray(
            0,
            g.planes * g.inHeight * g.inWidth,
          ),
        );
        const out = resident(backend, "float32", new Float32Array(outputs).fill(Number.NaN));
        const argmax = backend.allocate?.("int32", outputs, false) as Int32Array;
        argmax.fill(-1);
        const [expected, expectedArgmax] = [new Float32Array(outputs), new Int32Array(outputs)];
        backend.maxPool2d(x, out, argmax, g);
        javascriptBackend.maxPool2d(x, expected, expectedArgmax, g);
        expect(Array.from(out)).toEqual(Array.from(expected));
        expect(Array.from(argmax)).toEqual(Array.from(expectedArgmax));
      }
    });

    it(`${backend.name}: a winner outside its own plane is a named error, not a write elsewhere`, () => {
      const g = geometry(4, 8, 2, 2, 0);
      const argmax = winners(backend, g, 1);
      // Output 0 of plane 2 (elements 128 … 191 of x) sent to element 0, in plane 0; then one past
      // the end of x.
      for (const bad of [0, 4 * 64]) {
        const wrong = backend.allocate?.("int32", argmax.length, false) as Int32Array;
        wrong.set(argmax);
        wrong[2 * 16] = bad;
        const dx = resident(backend, "float32", new Float32Array(4 * 64));
        const dy = resident(backend, "float32", new Float32Array(4 * 16).fill(1));
        expect(() => backend.maxPool2dBackward(dy, wrong, dx, g)).toThrow(
          /maxPool2dBackward: a winner in argmax lies outside its own plane of x/,
        );
      }
      // Arrays of the wrong size for the geometry, too.
      const dx = resident(backend, "float32", new Float32Array(4 * 64));
      const short = resident(backend, "float32", new Float32Array(4 * 16 - 1));
      expect(() => backend.maxPool2dBackward(short, argmax, dx, g)).toThrow(
        /maxPool2dBackward: expected 64 gradients and winners and 256 inputs, got 63, 64 and 256/,
      );
    });
  }
});

describe("row sums on the wasm backends", () => {
  afterEach(() => setNumThreads(2));
  const sumsArb = fc.record({
    outer: fc.integer({ min: 1, max: 70 }),
    extra: fc.integer({ min: 0, max: 300 }),
    single: fc.boolean(),
    residentOut: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1000 }),
  });
  for (const backend of WASM_BACKENDS) {
    it(`${backend.name}: sums rows of arrays in wasm memory to the JavaScript loop's bits on 1 and 2 threads`, () => {
      fc.assert(
        fc.property(sumsArb, ({ outer, extra, single, residentOut, seed }) => {
          // At least 2¹⁴ elements (smaller sums stay in JavaScript).
          const length = Math.ceil((1 << 14) / outer) + extra;
          const dtype = single ? "float32" : "float64";
          const x = backend.allocate?.(dtype, outer * length, false) as Float32Array | Float64Array;
          // Values of very different sizes, so that the order of the additions shows in the bits.
          x.set(filled(outer * length, seed).map((v, i) => v * 2 ** ((i * 7) % 40)));
          const expected = single ? new Float32Array(outer) : new Float64Array(outer);
          javascriptBackend.reduce("sum", x, outer, length, 1, expected);
          for (const threads of [1, 2]) {
            setNumThreads(threads);
            const out = residentOut
              ? (backend.allocate?.(dtype, outer, false) as Float32Array | Float64Array)
              : single
                ? new Float32Array(outer)
                : new Float64Array(outer);
            out.fill(Number.NaN);
            backend.reduce("sum", x, outer, length, 1, out);
            expect(Array.from(out)).toEqual(Array.from(expected));
          }
        }),
        { numRuns: 40 },
      );
      // 512 rows of 8192: four chunks on two threads.
      const x = backend.allocate?.("float32", 512 * 8192, false) as Float32Array;
      x.set(filled(x.length, 3));
      const [expected, out] = [new Float32Array(512), new Float32Array(512)];
      javascriptBackend.reduce("sum", x, 512, 8192, 1, expected);
      backend.reduce("sum", x, 512, 8192, 1, out);
      expect(Array.from(out)).toEqual(Array.from(expected));
    });

    it(`${backend.name}: a row count beyond the array is a named error, not a read past it`, () => {
      const x = backend.allocate?.("float32", 1 << 15, false) as Float32Array;
      expect(() => backend.reduce("sum", x, 5, 1 << 13, 1, new Float32Array(5))).toThrow(
        /reduce: expected 40960 elements and 5 outputs, got 32768 and 5/,
      );
    });
  }
});

describe("argwhere's positions on the wasm backends", () => {
  /** The positions of the non-zero bytes, by the definition. */
  const expected = (mask: ArrayLike<number>) => {
    const at: number[] = [];
    for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) at.push(i);
    return at;
  };

  it("are the definition's for bool arrays in wasm memory of any length and density", () => {
    for (const backend of WASM_BACKENDS) {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 40_000 }),
          fc.constantFrom(0, 0.01, 0.5, 0.97, 1),
          fc.integer(),
          (n, density, seed) => {
            const mask = backend.allocate?.("bool", n, true) as Uint8Array;
            let s = seed >>> 0;
            for (let i = 0; i < n; i++) {
              s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
              // Any non-zero byte is true, not only 1.
              mask[i] = s / 2 ** 32 < density ? 1 + (s & 0x7f) : 0;
            }
            expect([...backend.nonzeroPositions(mask)]).toEqual(expected(mask));
          },
        ),
        { numRuns: 40 },
      );
    }
  });

  it("fall back to the JavaScript loop for arrays in JavaScript memory and for numbers", () => {
    const backend = WASM_BACKENDS[0];
    const mask = Uint8Array.from({ length: 5000 }, (_, i) => (i % 7 === 3 ? 1 : 0));
    expect([...backend.nonzeroPositions(mask)]).toEqual(expected(mask));
    // NaN is not 0, so it counts, as in NumPy's nonzero.
    const numbers = Float32Array.of(0, Number.NaN, -0, 2, 0);
    expect([...backend.nonzeroPositions(numbers)]).toEqual([1, 3]);
    expect([...javascriptBackend.nonzeroPositions(numbers)]).toEqual([1, 3]);
  });
});

describe("backend selection", () => {
  it("selects built-in backends by name and returns the previous one", () => {
    const before = getBackend();
    const previous = setBackend("js");
    try {
      expect(previous).toBe(before);
      expect(getBackend()).toBe(javascriptBackend);
      setBackend("wasm");
      expect(getBackend().name).toBe("wasm");
      setBackend("javascript");
      expect(getBackend().name).toBe("javascript");
    } finally {
      setBackend(before);
    }
  });

  it("reads FOCALGRAD_BACKEND, defaulting to wasm where the runtime has SIMD", () => {
    expect(backendFromEnvironment(undefined).name).toBe("wasm");
    expect(backendFromEnvironment("").name).toBe("wasm");
    expect(backendFromEnvironment(" JS ")).toBe(javascriptBackend);
    expect(backendFromEnvironment("wasm").name).toBe("wasm");
  });

  it("rejects unknown backend names, naming where they came from", () => {
    expect(() => setBackend("gpu" as "wasm")).toThrow(
      'setBackend: unknown backend "gpu" (expected "wasm", "javascript" or "js")',
    );
    expect(() => backendFromEnvironment("cuda")).toThrow(
      'FOCALGRAD_BACKEND: unknown backend "cuda" (expected "wasm", "javascript" or "js")',
    );
  });
});

describe("the backend seam beyond products and convolutions", () => {
  it("routes pool gradients, reductions and gathers through the current backend", () => {
    const base = getBackend();
    const calls = new Set<string>();
    const traced = { ...base, name: "traced" } as DenseBackend;
    const kernels = [
      "maxPool2dBackward",
      ...(Object.keys(javascriptReductions) as (keyof typeof javascriptReductions)[]),
    ] as const;
    for (const name of kernels) {
      const kernel = base[name] as (...args: unknown[]) => unknown;
      (traced as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        calls.add(name);
        return kernel(...args);
      };
    }
    const previous = setBackend(traced);
    try {
      const x = tensor(
        [
          [1, 5, 2],
          [4, 3, 6],
        ],
        { requiresGrad: true },
      );
      const index = tensor([2, 0], { dtype: "int32" });
      const pairs = tensor([[1, 2]], { dtype: "int32" });
      const along = tensor([[0], [2]], { dtype: "int32" });
      // Every term's gradient in x worked out by hand: max over axis 1 picks 5 and 6 (one each),
      // gather along axis 1 at [2, 0] takes columns 2 and 0 of both rows, gatherNd takes x[1, 2],
      // takeAlongAxis takes x[0, 0] and x[1, 2]; sum and cumsum feed the rest.
      const loss = add(
        add(sum(max(x, { axis: 1 })), sum(gather(x, index, 1))),
        add(sum(gatherNd(x, pairs)), sum(takeAlongAxis(x, along, 1))),
      );
      sum(add(loss, sum(cumsum(x, 1)))).backward();
      expect(argmax(x, { axis: 1 }).toArray()).toEqual([1, 2]);
      // 5, 4 and 6 are the entries above 3: at [0, 1], [1, 0] and [1, 2].
      expect(argwhere(greater(x, 3)).toArray()).toEqual([
        [0, 1],
        [1, 0],
        [1, 2],
      ]);
      const pooled = tensor(
        [
          [
            [
              [1, 3],
              [2, 0],
            ],
          ],
        ],
        { requiresGrad: true },
      );
      sum(maxPool2d(pooled, { kernelSize: 2 })).backward();
      expect(pooled.grad?.toArray()).toEqual([
        [
          [
            [0, 1],
            [0, 0],
          ],
        ],
      ]);
      // d/dx: max → [[0, 1, 0], [0, 0, 1]]; gather → [[1, 0, 1], [1, 0, 1]]; gatherNd →
      // [[0, 0, 0], [0, 0, 1]]; takeAlongAxis → [[1, 0, 0], [0, 0, 1]]; Σ cumsum (row of 3) →
      // [[3, 2, 1], [3, 2, 1]].
      expect(x.grad?.toArray()).toEqual([
        [5, 3, 2],
        [4, 2, 5],
      ]);
      expect([...kernels].filter((name) => !calls.has(name))).toEqual([]);
    } finally {
      setBackend(previous);
    }
  });

  it("rejects a backend that lacks one of the kernels, naming it", () => {
    const { reduce: _, ...partial } = javascriptBackend;
    expect(() => setBackend(partial as DenseBackend)).toThrow(
      "setBackend: backend.reduce must be a function, got undefined",
    );
  });

  it("runs fused kernels on the backend's renderer, and rejects a renderer that is not one", () => {
    const seen: number[] = [];
    const counting = {
      ...javascriptBackend,
      name: "counting",
      renderer: {
        name: "counting",
        supports: () => true,
        run: (kernel: Parameters<Renderer["run"]>[0], arrays: Parameters<Renderer["run"]>[1]) => {
          seen.push(kernel.shape.reduce((a, b) => a * b, 1));
          return javascript.run(kernel, arrays);
        },
      },
    };
    const previous = setBackend(counting);
    try {
      // exp(0) + 1 = 2 in each of 2^15 elements (above the fusion threshold): one kernel of them.
      const x = tensor(new Float32Array(1 << 15));
      expect(add(exp(x), 1).read()[12345]).toBe(2);
      expect(seen).toEqual([1 << 15]);
    } finally {
      setBackend(previous);
    }
    expect(() =>
      setBackend({ ...javascriptBackend, renderer: { name: "half" } as unknown as Renderer }),
    ).toThrow(
      "setBackend: backend.renderer must be a renderer (supports and run functions) or absent",
    );
    expect(getBackend().renderer?.name ?? "javascript").toBe(
      previous.renderer?.name ?? "javascript",
    );
  });
});

describe("setNumThreads", () => {
  it("rejects a count that is not a positive integer", () => {
    const threads = getNumThreads();
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => setNumThreads(bad)).toThrow(
        `setNumThreads: n must be an integer >= 1, got ${bad}`,
      );
    }
    expect(getNumThreads()).toBe(threads);
  });
});

describe("worker pool", () => {
  /** fill(address, value, lo, hi): words [lo, hi) at `address` become value + index. */
  function fillModule() {
    const fill = new FunctionBuilder("fill", [0x7f, 0x7f, 0x7f, 0x7f]);
    const i = fill.local(0x7f);
    fill.forLoop(
      i,
      () => fill.get(2),
      () => fill.get(3),
      () => {
        fill.get(0).get(i).i32(4).op(0x6c, 0x6a); // address + 4 · i
        fill.get(1).get(i).op(0x6a); // value + i
        fill.memory(0x36, 2, 0); // i32.store
      },
    );
    const trap = new FunctionBuilder("trap", [0x7f, 0x7f]);
    trap.op(0x00); // unreachable
    const memory = new webAssembly!.Memory({ initial: 1, maximum: 1, shared: true });
    const module = new webAssembly!.Module(
      assemble([fill, trap], { initialPages: 1, maximumPages: 1 }),
    );
    const local = new webAssembly!.Instance(module, { env: { memory } }).exports;
    return { memory, module, local };
  }

  it("runs every chunk of a job exactly once, whichever thread takes it, and reports a trap", () => {
    const { memory, module, local } = fillModule();
    const pool = new WorkerPool(module, memory, ["fill", "trap"], 2);
    const words = new Int32Array(memory.buffer, 0, 1000);
    try {
      // Many jobs back to back, of different chunk counts: late workers must never run a chunk
      // of a job that has ended, nor miss one of the current job.
      for (let job = 0; job < 200; job++) {
        const chunks = 1 + (job % 37);
        pool.run({ fn: 0, args: [0, job * 1000], total: 1000, chunks }, local);
        for (let w = 0; w < 1000; w++) {
          if (words[w] !== job * 1000 + w) throw new Error(`job ${job}: word ${w} is ${words[w]}`);
        }
      }
      expect(() => pool.run({ fn: 1, args: [], total: 4, chunks: 4 }, local)).toThrow(
        "WorkerPool.run: a chunk of the kernel trapped",
      );
      // The pool still works after a trap.
      pool.run({ fn: 0, args: [0, 7], total: 3, chunks: 3 }, local);
      expect(Array.from(words.subarray(0, 3))).toEqual([7, 8, 9]);
    } finally {
      pool.close();
    }
  });

  it("runs the functions of modules loaded after it started, on every thread, numbered after its own", () => {
    const { memory, module, local } = fillModule();
    const pool = new WorkerPool(module, memory, ["fill", "trap"], 2);
    const words = new Int32Array(memory.buffer, 0, 600);
    try {
      // Two more instances of the same module, loaded one after the other: their fill is fn 2
      // and fn 4 (each module brings fill and trap). Jobs alternate between all three fills, so
      // every worker instantiates the loaded modules when a job first names them.
      const second = new webAssembly!.Instance(module, { env: { memory } }).exports;
      const third = new webAssembly!.Instance(module, { env: { memory } }).exports;
      expect(pool.load(module, second, ["fill", "trap"])).toBe(2);
      expect(pool.load(module, third, ["fill"])).toBe(4);
      expect(pool.loadedCount).toBe(3);
      for (let job = 0; job < 60; job++) {
        const fn = [0, 2, 4][job % 3];
        pool.run({ fn, args: [0, job * 1000], total: 600, chunks: 6 }, local);
        for (let w = 0; w < 600; w++) {
          if (words[w] !== job * 1000 + w) throw new Error(`job ${job}: word ${w} is ${words[w]}`);
        }
      }
      expect(() => pool.run({ fn: 3, args: [], total: 4, chunks: 4 }, local)).toThrow(
        "WorkerPool.run: a chunk of the kernel trapped",
      );
      expect(() => pool.load(module, second, ["nothing"])).toThrow(
        'WorkerPool.load: the module\'s instance has no function "nothing"',
      );
    } finally {
      pool.close();
    }
  });

  it("gives chunks ranges in units of a step, cut at a limit, and scratch of their own by index", () => {
    const { memory, module, local } = fillModule();
    const pool = new WorkerPool(module, memory, ["fill", "trap"], 2);
    const words = new Int32Array(memory.buffer, 0, 120);
    // fill(0, scratch, lo, hi): word i of chunk c becomes 1000 + 100 · c + i. 10 blocks of 10
    // words cut at 95, in 3 chunks: blocks [0, 3), [3, 6), [6, 10), so words [0, 30), [30, 60),
    // [60, 95); the words from 95 on stay −1.
    const job = {
      fn: 0,
      args: [0],
      total: 10,
      chunks: 3,
      step: 10,
      limit: 95,
      scratch: { base: 1000, stride: 100 },
    };
    expect([0, 1, 2].map((c) => chunkArguments(job, c))).toEqual([
      [0, 1000, 0, 30],
      [0, 1100, 30, 60],
      [0, 1200, 60, 95],
    ]);
    try {
      for (let round = 0; round < 50; round++) {
        words.fill(-1);
        pool.run(job, local);
        for (let i = 0; i < 120; i++) {
          const c = i < 30 ? 0 : i < 60 ? 1 : 2;
          const expected = i < 95 ? 1000 + 100 * c + i : -1;
          if (words[i] !== expected) throw new Error(`round ${round}: word ${i} is ${words[i]}`);
        }
      }
    } finally {
      pool.close();
    }
  });

  it("rejects chunk counts outside [1, total] and too many arguments", () => {
    const { memory, module, local } = fillModule();
    const pool = new WorkerPool(module, memory, ["fill", "trap"], 1);
    try {
      expect(() => pool.run({ fn: 0, args: [0, 0], total: 3, chunks: 4 }, local)).toThrow(
        "WorkerPool.run: chunks must be an integer in [1, min(total 3, 16384)], got 4",
      );
      expect(() => pool.run({ fn: 0, args: [0, 0], total: 3, chunks: 0 }, local)).toThrow("got 0");
      expect(() =>
        pool.run({ fn: 0, args: new Array(25).fill(0), total: 1, chunks: 1 }, local),
      ).toThrow("WorkerPool.run: 25 arguments, at most 24");
    } finally {
      pool.close();
    }
  });
});
