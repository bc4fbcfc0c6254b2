/** Tests of the optimisers' kernels on the backends: wasm Adam against the JavaScript loop bit for bit on every thread count, its state in the wasm heap, and the heap's safety from every other kernel. */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import {
  add,
  conv2d,
  exp,
  getNumThreads,
  javascriptBackend,
  matmul,
  maxPool2d,
  optim,
  setBackend,
  setNumThreads,
  sum,
  tensor,
} from "../src/index.js";
import { type AdamStep, adamInto } from "../src/kernels/optimizers.js";
import { hasRelaxedSimd, WasmRuntime } from "../src/kernels/wasm/runtime.js";
import { filled, WASM_BACKENDS } from "./backends.js";

const threads = getNumThreads();
afterEach(() => setNumThreads(threads));

const bits = (x: Float32Array | Float64Array) =>
  new Uint32Array(x.buffer, x.byteOffset, (x.length * x.BYTES_PER_ELEMENT) / 4);

/** The first element where `a` and `b` differ in their bits, or -1 when they are the same. */
function firstDifference(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const [x, y] = [bits(a), bits(b)];
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) return Math.floor(i / (x.length / a.length));
  }
  return -1;
}

/** Three Adam steps' settings: t = 1, 2, 3 with lr, β, ε and decay varied per case. */
function steps(lr: number, decoupled: boolean, weightDecay: number): AdamStep[] {
  const [beta1, beta2, eps] = [0.8, 0.99, 1e-6];
  return [1, 2, 3].map((t) => ({
    beta1,
    beta2,
    stepSize: lr / (1 - beta1 ** t),
    scale: 1 / Math.sqrt(1 - beta2 ** t),
    eps,
    decay: decoupled ? 1 - lr * weightDecay : 1,
    l2: decoupled ? 0 : weightDecay,
  }));
}

describe("wasm Adam", () => {
  // Sizes below the JavaScript cut-off (64), at it, odd and even, and an odd one that two
  // threads share (70001 > 2 · 2¹⁵ elements: two chunks).
  const sizes = [1, 63, 64, 65, 1000, 70_001];
  for (const backend of WASM_BACKENDS) {
    for (const dtype of ["float32", "float64"] as const) {
      it(`is the JavaScript loop bit for bit, on 1, 2 and 3 threads [${backend.name}, ${dtype}]`, () => {
        const floats = (values: ArrayLike<number>) =>
          dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values);
        for (const n of sizes) {
          for (const [lr, decoupled, decay] of [
            [1e-3, false, 0],
            [0.1, false, 0.05],
            [0.01, true, 0.1],
          ] as const) {
            const param = floats(filled(n, n + 1).map((x) => 4 * x));
            const grads = [0, 1, 2].map((s) => floats(filled(n, 7 * n + s)));
            const single = dtype === "float32";
            const m = single ? new Float32Array(n) : new Float64Array(n);
            const v = single ? new Float32Array(n) : new Float64Array(n);
            const expected = param.slice();
            steps(lr, decoupled, decay).forEach((s, t) => {
              adamInto(expected, grads[t], m, v, s);
            });
            // The parameter and gradients copied into wasm memory and back, and in place there
            // (tensors' data; whole vectors only: 64 and 1000 elements).
            for (const [count, resident] of [
              [1, false],
              [2, false],
              [3, false],
              [1, true],
              [2, true],
            ] as const) {
              setNumThreads(count);
              const inMemory = (values: Float32Array | Float64Array) => {
                const array = backend.allocate?.(dtype, n, false) as Float32Array | Float64Array;
                array.set(values);
                return array;
              };
              const p = resident ? inMemory(param) : param.slice();
              const g = resident ? grads.map(inMemory) : grads;
              const [mw, vw] = [
                backend.optimizerState(n, single),
                backend.optimizerState(n, single),
              ];
              expect([...mw, ...vw].every((x) => x === 0)).toBe(true);
              steps(lr, decoupled, decay).forEach((s, t) => {
                backend.adam(p, g[t], mw, vw, s);
              });
              const label = `n ${n}, lr ${lr}, decoupled ${decoupled}, ${count} threads, in wasm memory ${resident}`;
              expect(firstDifference(p, expected), label).toBe(-1);
              expect(firstDifference(mw, m), label).toBe(-1);
              expect(firstDifference(vw, v), label).toBe(-1);
            }
          }
        }
      });
    }

    it(`updates moments it did not make (a plain Float32Array) the same way [${backend.name}]`, () => {
      const n = 5000;
      const [s] = steps(0.01, false, 0);
      const grad = Float32Array.from(filled(n, 3));
      const expected = Float32Array.from(filled(n, 4));
      const [m, v] = [new Float32Array(n), new Float32Array(n)];
      adamInto(expected, grad, m, v, s);
      const p = Float32Array.from(filled(n, 4));
      const [mo, vo] = [new Float32Array(n), new Float32Array(n)];
      backend.adam(p, grad, mo, vo, s);
      expect(firstDifference(p, expected)).toBe(-1);
      expect(firstDifference(mo, m)).toBe(-1);
    });
  }

  it("takes the hand-computed first step through optim.Adam on every backend", () => {
    // lr 0.1, β = (0.9, 0.999), p = 1, g = 0.5: m = 0.05, v = 2.5e−4, m̂ = 0.5, v̂ = 0.25,
    // p = 1 − 0.1 · 0.5 / (0.5 + 1e−8) = 0.9000000019999999... (float64), 0.9 in float32.
    // 256 elements, so that the wasm kernel (not the small-array loop) runs.
    for (const backend of [javascriptBackend, ...WASM_BACKENDS]) {
      const previous = setBackend(backend);
      try {
        for (const dtype of ["float64", "float32"] as const) {
          const p = tensor(new Array(256).fill(1), { dtype, requiresGrad: true });
          const opt = new optim.Adam([p], { lr: 0.1 });
          p.grad = tensor(new Array(256).fill(0.5), { dtype });
          opt.step();
          const want = dtype === "float64" ? 1 - 0.05 / (0.5 + 1e-8) : Math.fround(0.9);
          // The moments are kept in the parameter's precision, as PyTorch keeps them.
          const [m] = (opt as unknown as { state: Map<unknown, unknown[]> }).state.get(p)!;
          expect(m).toBeInstanceOf(dtype === "float64" ? Float64Array : Float32Array);
          for (const value of p.data) expect(value).toBeCloseTo(want, dtype === "float64" ? 14 : 7);
        }
      } finally {
        setBackend(previous);
      }
    }
  });

  it("resumes from a stateDict on another backend with the same bits as a run on one", () => {
    const run = (switchAt: number | null) => {
      let backend = setBackend(WASM_BACKENDS[0]);
      const p = tensor(Float32Array.from(filled(3000, 9)), { requiresGrad: true });
      let opt = new optim.AdamW([p], { lr: 0.05 });
      for (let t = 0; t < 4; t++) {
        if (t === switchAt) {
          const saved = opt.stateDict();
          setBackend(javascriptBackend);
          opt = new optim.AdamW([p], { lr: 0.05 });
          opt.loadStateDict(saved);
        }
        p.grad = tensor(Float32Array.from(filled(3000, 20 + t)));
        opt.step();
      }
      backend = setBackend(backend);
      return p.data as Float32Array;
    };
    expect(firstDifference(run(2), run(null))).toBe(-1);
  });
});

describe("the wasm heap", () => {
  it("is left alone by every other kernel, and its buffers never overlap", () => {
    const backend = WASM_BACKENDS[0];
    const previous = setBackend(backend);
    try {
      const a = backend.optimizerState(10_001, false);
      const b = backend.optimizerState(333, true);
      a.set(filled(a.length, 1));
      b.set(filled(b.length, 2));
      const before = [a.slice(), b.slice()];
      // Convolutions (batched, by images, and grouped: a block of rows at a time) with their
      // gradients, a pool, a product and a fused elementwise kernel, each laying out its scratch
      // in the same memory.
      const x = tensor(Float32Array.from(filled(4 * 3 * 20 * 20, 3)), {
        shape: [4, 3, 20, 20],
        requiresGrad: true,
      });
      const w = tensor(Float32Array.from(filled(9 * 3 * 9, 4)), {
        shape: [9, 3, 3, 3],
        requiresGrad: true,
      });
      const grouped = tensor(Float32Array.from(filled(9 * 3 * 9, 6)), { shape: [9, 3, 3, 3] });
      for (const count of [1, 2]) {
        setNumThreads(count);
        const features = conv2d(x, w, { padding: 1 });
        const mixed = conv2d(features, grouped, { padding: 1, groups: 3 });
        sum(maxPool2d(mixed, { kernelSize: 2 })).backward();
        const y = tensor(Float32Array.from(filled(300 * 300, 5)), { shape: [300, 300] });
        sum(exp(add(matmul(y, y), 1))).item();
        const c = backend.optimizerState(5000, count === 1);
        c.fill(7);
      }
      expect(firstDifference(a, before[0])).toBe(-1);
      expect(firstDifference(b, before[1])).toBe(-1);
    } finally {
      setBackend(previous);
    }
  });

  it("frees a collected buffer's block for the next", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const runtime = new WasmRuntime(hasRelaxedSimd());
    const keep = runtime.heapView(100, false);
    expect(keep).not.toBeNull();
    const top = runtime.heapTop;
    // 100 float64 = 800 bytes, a block of 832 (whole cache lines).
    expect(top).toBe(832);
    (() => {
      runtime.heapView(2000, true);
    })();
    expect(runtime.heapTop).toBe(832 + 8000);
    for (let round = 0; round < 20 && runtime.heapTop !== top; round++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(runtime.heapTop).toBe(top);
    expect(runtime.heapView(10, false)?.byteOffset).toBe(832);
    expect(keep?.length).toBe(100);
  });
});
