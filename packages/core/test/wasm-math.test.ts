/** The vectorised float32 log, log1p and exp of the WebAssembly kernels: their error in ulp against float64 `Math.*` rounded to float32, over a sweep of the float32 range, and their special values, on the plain-SIMD and the relaxed-SIMD path. */

import { describe, expect, test } from "vitest";
import { assemble, FunctionBuilder, I32, Op, Simd } from "../src/kernels/wasm/assembler.js";
import { VectorMath } from "../src/kernels/wasm/math-module.js";
import { hasRelaxedSimd } from "../src/kernels/wasm/runtime.js";
import { webAssembly } from "../src/kernels/wasm/webassembly.js";

type Name = "log" | "log1p" | "exp";
const reference: Record<Name, (x: number) => number> = {
  log: Math.log,
  log1p: Math.log1p,
  exp: Math.exp,
};
const NAMES = Object.keys(reference) as Name[];

const PAGES = 256; // 16 MiB: two arrays of up to 2 Mi float32

/** `name(x)` over a float32 array, in a module of its own, with or without relaxed SIMD. */
function vectorised(relaxed: boolean): Record<Name, (x: Float32Array) => Float32Array> {
  const functions = NAMES.map((name) => {
    // (src, dst, count): dst[i] = name(src[i]), count a multiple of 4.
    const f = new FunctionBuilder(name, [I32, I32, I32]);
    const [i, end] = [f.local(I32), f.local(I32)];
    const math = new VectorMath(f, relaxed);
    f.get(2).i32(4).op(Op.i32Mul).set(end);
    f.forLoop(
      i,
      () => f.i32(0),
      () => f.get(end),
      () => {
        f.get(1).get(i).op(Op.i32Add);
        f.get(0).get(i).op(Op.i32Add).simd(Simd.load, { align: 4, offset: 0 });
        math[name]();
        f.simd(Simd.store, { align: 4, offset: 0 });
      },
      16,
    );
    return f;
  });
  const memory = new webAssembly!.Memory({ initial: PAGES, maximum: PAGES, shared: true });
  const module = new webAssembly!.Module(
    assemble(functions, { initialPages: PAGES, maximumPages: PAGES }),
  );
  const instance = new webAssembly!.Instance(module, { env: { memory } });
  const heap = new Float32Array(memory.buffer);
  const half = heap.length / 2;
  const run = (name: Name) => (x: Float32Array) => {
    const n = Math.ceil(x.length / 4) * 4;
    if (n > half) throw new Error(`too many values: ${x.length}`);
    heap.fill(0, 0, n);
    heap.set(x, 0);
    (instance.exports[name] as (src: number, dst: number, count: number) => void)(0, half * 4, n);
    return heap.slice(half, half + x.length);
  };
  return { log: run("log"), log1p: run("log1p"), exp: run("exp") };
}

const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);

/** The float32 values whose bit patterns run from `first` to `last` (unsigned, inclusive), every `step`-th. */
function patterns(first: number, last: number, step: number): Float32Array {
  const count = Math.floor((last - first) / step) + 1;
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = first + i * step;
  return new Float32Array(out.buffer);
}

/** A float32 value's position on the number line in ulp (−0 and +0 both at 0). */
function ordinal(x: number): number {
  asFloat[0] = x;
  const b = bits[0];
  return b >= 0x80000000 ? -(b - 0x80000000) : b;
}

/** The distance in ulp between two float32 values; 0 for two NaNs, ∞ for one NaN. */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  return Math.abs(ordinal(a) - ordinal(b));
}

/** The largest ulp error of `fn` over `x` and the first argument where it happens. */
function worst(name: Name, fn: (x: Float32Array) => Float32Array, x: Float32Array) {
  const got = fn(x);
  let error = 0;
  let at = Number.NaN;
  for (let i = 0; i < x.length; i++) {
    const e = ulps(got[i], Math.fround(reference[name](x[i])));
    if (e > error) {
      error = e;
      at = x[i];
    }
  }
  return { error, at };
}

/**
 * Every 2039th bit pattern of each sign (2.1 million values, NaNs included): with a prime step
 * every exponent is visited at about 4 000 scattered mantissas.
 */
const SWEEP_STEP = 2039;

/** Every float32 within `radius` ulp of `x`, on both sides (not crossing zero). */
function around(x: number, radius: number): Float32Array {
  asFloat[0] = x;
  const center = bits[0];
  const sign = center & 0x80000000;
  const magnitude = center & 0x7fffffff;
  return patterns(
    (sign | Math.max(0, magnitude - radius)) >>> 0,
    (sign | Math.min(0x7f800000, magnitude + radius)) >>> 0,
    1,
  );
}

const paths = [
  { path: "plain SIMD", relaxed: false },
  ...(hasRelaxedSimd() ? [{ path: "relaxed SIMD", relaxed: true }] : []),
];

describe.each(paths)("vectorised float32 math on $path", ({ relaxed }) => {
  const math = vectorised(relaxed);

  test.each(NAMES)(
    "%s is within 2 ulp of float64 Math rounded to float32 over the whole range",
    (name) => {
      // Chunks of the sweep: positive patterns first, then negative ones (and the NaNs of both).
      for (const [first, last] of [
        [0, 0x7fffffff],
        [0x80000000, 0xffffffff],
      ]) {
        const { error, at } = worst(name, math[name], patterns(first, last, SWEEP_STEP));
        expect(error, `${name} at ${at}`).toBeLessThanOrEqual(2);
      }
    },
  );

  test.each(NAMES)(
    "%s is within 2 ulp next to 0, 1, −1 and where its result leaves the range",
    (name) => {
      const points = [
        1,
        -1,
        2 ** -126, // the smallest normal
        2 ** -149, // the smallest subnormal
        -(2 ** -149),
        2 ** -24, // where 1 + x starts to differ from 1
        -(2 ** -25),
        88.72283935546875, // exp: the first argument whose result overflows
        -103.97207708399179, // exp: ln 2^-150, below it everything rounds to 0
        -87.3365447505531, // exp: ln 2^-126, the start of the subnormal results
        Math.SQRT1_2, // log: where the reduction switches exponent
        Math.SQRT2,
        2 - 2 ** -23, // log1p: where u − 1 stops being the exact difference
      ];
      for (const point of points) {
        const { error, at } = worst(name, math[name], around(Math.fround(point), 1 << 14));
        expect(error, `${name} at ${at}`).toBeLessThanOrEqual(2);
      }
    },
  );

  test("log1p is within 2 ulp for small arguments of both signs (every 1021st pattern below 2^-10)", () => {
    // |x| < 2^-10: log1p(x) = x − x²/2 + …, where log(1 + x) computed naively loses every digit.
    const top = 0x3a800000; // bits of 2^-10
    for (const sign of [0, 0x80000000]) {
      const x = patterns(sign, sign + top, 1021);
      const { error, at } = worst("log1p", math.log1p, x);
      expect(error, `log1p at ${at}`).toBeLessThanOrEqual(2);
    }
  });

  test("log is within 2 ulp at every float32 in [1 − 2^-8, 1 + 2^-8]: log(1 − p) of a focal loss", () => {
    // 2^16 values below 1 (spacing 2^-24) and 2^15 above (spacing 2^-23).
    const x = patterns(0x3f7f0000, 0x3f808000, 1);
    const { error, at } = worst("log", math.log, x);
    expect(error, `log at ${at}`).toBeLessThanOrEqual(2);
  });

  /** Asserts `fn` gives exactly `want` (Object.is: −0 is not +0, NaN is NaN) at each argument. */
  const exactly = (fn: (x: Float32Array) => Float32Array, cases: [number, number][]) => {
    const got = fn(Float32Array.from(cases.map(([x]) => x)));
    expect(cases.map(([x, want], i) => Object.is(got[i], want) || `at ${x}: ${got[i]}`)).toEqual(
      cases.map(() => true),
    );
  };
  const FLT_MAX = 3.4028234663852886e38;
  // log(FLT_MAX) = 88.7228391…, nearest float32 88.72283935546875 (the other side is 7.4e-6 away).
  const LOG_MAX = 88.72283935546875;

  test("log: ±0 → −∞, ∞ → ∞, negative or NaN → NaN, log 1 = +0 exactly", () => {
    exactly(math.log, [
      [0, -Infinity],
      [-0, -Infinity],
      [Infinity, Infinity],
      [-Infinity, NaN],
      [NaN, NaN],
      [-1, NaN],
      [-(2 ** -149), NaN],
      [-FLT_MAX, NaN],
      [1, 0],
      [FLT_MAX, LOG_MAX],
    ]);
  });

  test("log1p: ±0 keep their sign, −1 → −∞, below −1 or NaN → NaN, ∞ → ∞, tiny x → x", () => {
    exactly(math.log1p, [
      [0, 0],
      [-0, -0],
      [-1, -Infinity],
      [Math.fround(-1 - 2 ** -23), NaN],
      [-Infinity, NaN],
      [NaN, NaN],
      [Infinity, Infinity],
      [FLT_MAX, LOG_MAX],
      // |x| ≤ 2^-25: log1p(x) = x(1 − x/2 + …) rounds to x (x/2 is below half an ulp).
      [2 ** -149, 2 ** -149],
      [-(2 ** -149), -(2 ** -149)],
      [2 ** -30, 2 ** -30],
    ]);
  });

  test("exp: e^±0 = 1 exactly, e^∞ = ∞, e^−∞ = +0, NaN → NaN, e^±FLT_MAX = ∞ and +0", () => {
    exactly(math.exp, [
      [0, 1],
      [-0, 1],
      [Infinity, Infinity],
      [-Infinity, 0],
      [NaN, NaN],
      [FLT_MAX, Infinity],
      [-FLT_MAX, 0],
      // e^x for |x| ≤ 2^-25 rounds to 1 (x is below half an ulp of 1 above, a full one below).
      [2 ** -149, 1],
      [2 ** -26, 1],
    ]);
  });

  test("exp overflows exactly where float32 does, and underflows to the smallest subnormal and then +0", () => {
    // fround(e^88.72283172607422) = 3.4027969e38 (finite) and e^88.72283935546875 > FLT_MAX + ulp/2.
    const [below, at] = math.exp(Float32Array.from([88.72283172607422, 88.72283935546875]));
    expect(Number.isFinite(below)).toBe(true);
    expect(at).toBe(Infinity);
    // e^-103.9 = 1.09e-45 ≈ 0.78 · 2^-149 rounds up to 2^-149; e^-104 = 6.8e-46 ≈ 0.49 · 2^-149 to 0.
    const [last, zero] = math.exp(Float32Array.from([-103.9, -104]));
    expect(last).toBe(2 ** -149);
    expect(Object.is(zero, 0)).toBe(true);
  });
});
