/** Tensors' data in wasm memory: where large arrays go, the budget, and kernels that read and write them in place with the results of copies. */

import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { PLACED_BYTES } from "../src/dtype.js";
import {
  createWasmBackend,
  type DenseBackend,
  getBackend,
  getNumThreads,
  javascriptBackend,
  mul,
  setBackend,
  setNumThreads,
  sigmoid,
  sub,
  sum,
  tensor,
} from "../src/index.js";
import { ElementwiseKernel, runElementwise } from "../src/kernels/wasm/elementwise.js";
import { WasmRuntime } from "../src/kernels/wasm/runtime.js";

const threadsBefore = getNumThreads();
const backendBefore = getBackend();
afterAll(() => {
  setNumThreads(threadsBefore);
  setBackend(backendBefore);
});

/** Seeded values in [−10, 10). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 20 - 10;
  }
  return out;
}

/** A new runtime after one kernel, so that the memory above its (empty) heap holds non-zero scratch. */
function runtimeWithScratch(seed: number): WasmRuntime {
  const runtime = new WasmRuntime(false);
  const x = values(5000, seed);
  const k = new ElementwiseKernel(x.length);
  k.store(k.unary("neg", k.load(k.input(x))), k.output(new Float32Array(x.length)));
  runElementwise(runtime, k, 1);
  return runtime;
}

describe("the heap's tensor arrays", () => {
  test("are zeroed arrays of the dtype's type, in wasm memory, also where a kernel's scratch was", () => {
    const runtime = runtimeWithScratch(1);
    const made = [
      runtime.tensorArray("float32", 3000),
      runtime.tensorArray("float64", 1000),
      runtime.tensorArray("int32", 7),
      runtime.tensorArray("bool", 100),
    ];
    expect(made.map((a) => a?.constructor.name)).toEqual([
      "Float32Array",
      "Float64Array",
      "Int32Array",
      "Uint8Array",
    ]);
    expect(made.map((a) => a?.length)).toEqual([3000, 1000, 7, 100]);
    for (const a of made) {
      expect(a !== null && runtime.placeOf(a) >= 0).toBe(true);
      expect(a?.every((v) => v === 0)).toBe(true);
    }
    // Blocks are whole cache lines, one after the other: 12 000, 8 000, 28 and 100 bytes rounded up.
    expect(runtime.tensorBytes).toBe(12032 + 8000 + 64 + 128);
    expect(runtime.placeOf(new Float32Array(4))).toBe(-1);
  });

  test("are left as their memory was when asked not to be zeroed (for callers that write every element)", () => {
    const runtime = runtimeWithScratch(7);
    // The first block of the heap is where that kernel's scratch (its program, then x) was.
    const unzeroed = runtime.tensorArray("float32", 5000, false) as Float32Array;
    expect(unzeroed.some((v) => v !== 0)).toBe(true);
    expect((runtime.tensorArray("float32", 5000) as Float32Array).every((v) => v === 0)).toBe(true);
  });

  test("stop at the budget: beyond it the caller gets null", () => {
    const runtime = new WasmRuntime(false);
    runtime.tensorBudget = 1 << 20;
    const kept = [runtime.tensorArray("float32", 1 << 17), runtime.tensorArray("float32", 1 << 17)];
    expect(kept.every((a) => a !== null)).toBe(true);
    // 2 × 512 KiB is the whole budget.
    expect(runtime.tensorBytes).toBe(1 << 20);
    expect(runtime.tensorArray("float32", 16)).toBeNull();
    expect(runtime.tensorBytes).toBe(1 << 20);
  });

  test("are what allocate() gives for large arrays while the wasm backend is in force", () => {
    const asked: [string, number][] = [];
    const inner = createWasmBackend({ relaxed: false });
    const spying: DenseBackend = {
      ...inner,
      allocate: (dtype, n) => {
        asked.push([dtype, n]);
        return inner.allocate?.(dtype, n) ?? null;
      },
    };
    setBackend(spying);
    try {
      const big = PLACED_BYTES / 4;
      const t = tensor(values(big, 2), { shape: [big / 4, 4] });
      tensor(values(16, 3));
      expect(asked).toEqual([["float32", big]]);
      // The copy holds the values (tensor() copies, as torch.tensor does).
      expect(Array.from(t.read().subarray(0, 3))).toEqual(
        Array.from(values(big, 2).subarray(0, 3)),
      );
      setBackend(javascriptBackend);
      tensor(values(big, 2));
      expect(asked.length).toBe(1);
    } finally {
      setBackend(backendBefore);
    }
  });

  test("memoryStats counts the tensor data a wasm backend holds and its peak since a reset", () => {
    const backend = createWasmBackend({ relaxed: false });
    const stats = backend.memoryStats as NonNullable<DenseBackend["memoryStats"]>;
    expect(stats()).toEqual({ bytes: 0, peakBytes: 0 });
    const kept = [backend.allocate?.("float32", 1 << 16), backend.allocate?.("float64", 1 << 14)];
    // 256 KiB and 128 KiB, whole cache lines already.
    expect(stats({ resetPeak: true })).toEqual({ bytes: 393216, peakBytes: 393216 });
    expect(stats()).toEqual({ bytes: 393216, peakBytes: 393216 });
    expect(kept.every((a) => a !== null)).toBe(true);
    expect(javascriptBackend.memoryStats).toBeUndefined();
    expect(() => setBackend({ ...backend, memoryStats: 1 as unknown as () => never })).toThrow(
      "setBackend: backend.memoryStats must be a function or absent, got number",
    );
    expect(() => setBackend({ ...backend, allocate: "x" as unknown as () => null })).toThrow(
      "setBackend: backend.allocate must be a function or absent, got string",
    );
  });

  test("createWasmBackend checks tensorBytes, and 0 keeps every array in JavaScript memory", () => {
    expect(() => createWasmBackend({ tensorBytes: -1 })).toThrow(
      "createWasmBackend: tensorBytes must be an integer in [0, 1073741824], got -1",
    );
    expect(() => createWasmBackend({ tensorBytes: 1.5 })).toThrow(
      "createWasmBackend: tensorBytes must be an integer in [0, 1073741824], got 1.5",
    );
    expect(
      createWasmBackend({ relaxed: false, tensorBytes: 0 }).allocate?.("float32", 1 << 20),
    ).toBeNull();
  });
});

describe("kernels on arrays in wasm memory", () => {
  const runtime = new WasmRuntime(false);
  /** `source` copied into a heap array. */
  const inHeap = (source: Float32Array): Float32Array => {
    const a = runtime.tensorArray("float32", source.length) as Float32Array;
    a.set(source);
    return a;
  };

  for (const compiled of [false, true]) {
    test(`gather, store, place and scatter in place give the copies' bits (${compiled ? "compiled" : "interpreted"})`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 40 }),
          fc.integer({ min: 1, max: 23 }),
          fc.integer({ min: 1, max: 3 }),
          fc.integer(),
          (rows, width, colStride, seed) => {
            const rowLength = width * colStride;
            const source = values(rows * rowLength, seed);
            const picked = Array.from({ length: rows }, (_, r) => r).filter(
              (r) => (seed >>> (r % 31)) & 1,
            );
            const index = Int32Array.from(picked.reverse());
            const n = index.length * width;
            const table = { index, scale: rowLength, start: 0 };
            const build = (heap: boolean) => {
              const made = (a: Float32Array) => (heap ? inHeap(a) : Float32Array.from(a));
              const arrays = {
                source: made(source),
                stored: made(new Float32Array(n)),
                placed: made(values(source.length, seed + 1)),
                scattered: made(source),
              };
              const k = new ElementwiseKernel(n);
              const g = k.gather(k.input(arrays.source), table, width, colStride);
              k.store(k.binary("mul", g, g), k.output(arrays.stored));
              k.place(k.unary("neg", g), k.output(arrays.placed), table, width, colStride);
              k.place(g, k.output(arrays.scattered, "values"), table, width, colStride, true);
              const total = k.sum(g);
              const sums = runElementwise(runtime, k, 1, compiled);
              return { ...arrays, total: sums?.[total] };
            };
            const copied = build(false);
            const resident = build(true);
            for (const name of ["stored", "placed", "scattered"] as const) {
              expect(Array.from(resident[name])).toEqual(Array.from(copied[name]));
            }
            expect(resident.total).toBe(copied.total);
          },
        ),
        { numRuns: 30 },
      );
    });
  }

  test("a store in place writes nothing past the end of its array (the next array keeps its values)", () => {
    for (const n of [1, 2, 3, 5, 257, 1023]) {
      const x = inHeap(values(n, n));
      const out = runtime.tensorArray("float32", n) as Float32Array;
      // The next block starts at the next cache line: fill the bytes between with a sentinel.
      const after = new Float32Array(out.buffer, out.byteOffset + n * 4, 16 - ((n * 4) % 64) / 4);
      after.fill(7);
      const k = new ElementwiseKernel(n);
      k.store(k.unary("neg", k.load(k.input(x))), k.output(out));
      runElementwise(runtime, k, 1, true);
      expect(Array.from(out)).toEqual(Array.from(x, (v) => -v));
      expect(after.every((v) => v === 7)).toBe(true);
    }
  });

  test("a place into an array said to be zeroed writes its rows only; one into zeros zeroes the rest", () => {
    const n = 4096;
    const rows = { index: Int32Array.of(3, 1), scale: 8, start: 0 };
    const source = inHeap(values(16, 5));
    for (const initial of ["zeros", "zeroed"] as const) {
      // Rows 1 and 3 of a [4, 8] view: elements 8–11 and 24–27 (width 4), the rest 9 as a witness.
      const out = inHeap(new Float32Array(n).fill(9));
      const k = new ElementwiseKernel(8);
      const g = k.gather(k.input(source), { index: Int32Array.of(0, 1), scale: 4, start: 0 }, 4, 1);
      k.place(g, k.output(out, initial), rows, 4, 1);
      runElementwise(runtime, k, 1, true);
      const rest = initial === "zeros" ? 0 : 9;
      const want = Array.from({ length: n }, (_, e) =>
        e >= 24 && e < 28 ? source[e - 24] : e >= 8 && e < 12 ? source[e - 8 + 4] : rest,
      );
      expect(Array.from(out)).toEqual(want);
    }
  });

  test("an output that an input reads too is copied: a reversed gather into its own array", () => {
    const n = 1000;
    const a = inHeap(values(n, 4));
    const before = Float32Array.from(a);
    const index = Int32Array.from({ length: n }, (_, i) => n - 1 - i);
    const k = new ElementwiseKernel(n);
    const g = k.gather(k.input(a), { index, scale: 1, start: 0 }, 1, 1);
    k.store(g, k.output(a));
    runElementwise(runtime, k, 1, true);
    expect(Array.from(a)).toEqual(Array.from(before).reverse());
  });
});

describe("results do not depend on where tensors live", () => {
  test("a fused chain and its gradient are the same bits with the tensors in wasm memory or not, on 1 and 2 threads", () => {
    const run = (backend: DenseBackend, threads: number) => {
      setBackend(backend);
      setNumThreads(threads);
      const x = tensor(values(1 << 16, 5), { shape: [256, 256], requiresGrad: true });
      const y = tensor(values(1 << 16, 6), { shape: [256, 256] });
      const p = sigmoid(x);
      const loss = sum(mul(sub(1, p), mul(p, y)));
      loss.backward();
      return { loss: loss.item(), grad: Array.from(x.grad?.read() ?? []), x };
    };
    const resident = run(createWasmBackend({ relaxed: false }), 2);
    const copied = run(createWasmBackend({ relaxed: false, tensorBytes: 0 }), 2);
    const oneThread = run(createWasmBackend({ relaxed: false }), 1);
    setBackend(backendBefore);
    expect(resident.loss).toBe(copied.loss);
    expect(resident.grad).toEqual(copied.grad);
    expect(oneThread.grad).toEqual(copied.grad);
    expect(resident.grad.some((g) => g !== 0)).toBe(true);
  });
});
