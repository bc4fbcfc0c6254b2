/** The WebAssembly pooling kernels: max (with the index of the winner) and average over the windows of NCHW planes, the same rules and the same arithmetic as the JavaScript loops. */

import { F32, F64, FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";

// Scalar opcodes only these kernels use.
const F32_EQ = 0x5b;
const F32_NE = 0x5c;
const F32_GT = 0x5e;
const F64_EQ = 0x61;
const F64_NE = 0x62;
const F64_GT = 0x64;
const I32_OR = 0x72;
const F64_MUL = 0xa2;
const F64_DIV = 0xa3;
const F64_CONVERT_I32 = 0xb7;

/** Locals and loops shared by both pools: planes, output rows and columns, the clipped window. */
function windows(
  f: FunctionBuilder,
  visit: (window: {
    base: number;
    yLo: number;
    yHi: number;
    xLo: number;
    xHi: number;
    o: number;
  }) => void,
): void {
  const [planes, H, W, Ho, Wo, kh, kw, sh, sw, pt, pl] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const [p, base, oy, ox, yLo, yHi, xLo, xHi, o, start] = Array.from({ length: 10 }, () =>
    f.local(I32),
  );
  /** The clipped window along one axis: lo = max(0, start), hi = min(size, start + kernel). */
  const clip = (lo: number, hi: number, size: number, kernel: number) => {
    f.get(start).i32(0).get(start).i32(0).op(Op.i32GtS, Op.select).set(lo);
    f.min(
      () => f.get(size),
      () => f.get(start).get(kernel).op(Op.i32Add),
    );
    f.set(hi);
  };
  f.i32(0).set(o);
  f.forLoop(
    p,
    () => f.i32(0),
    () => f.get(planes),
    () => {
      f.get(p).get(H).op(Op.i32Mul).get(W).op(Op.i32Mul).set(base);
      f.forLoop(
        oy,
        () => f.i32(0),
        () => f.get(Ho),
        () => {
          f.get(oy).get(sh).op(Op.i32Mul).get(pt).op(Op.i32Sub).set(start);
          clip(yLo, yHi, H, kh);
          f.forLoop(
            ox,
            () => f.i32(0),
            () => f.get(Wo),
            () => {
              f.get(ox).get(sw).op(Op.i32Mul).get(pl).op(Op.i32Sub).set(start);
              clip(xLo, xHi, W, kw);
              visit({ base, yLo, yHi, xLo, xHi, o });
              f.increment(o, 1);
            },
          );
        },
      );
    },
  );
}

/** Every element (flat index `index`) of the window, row by row. */
function eachElement(
  f: FunctionBuilder,
  w: { base: number; yLo: number; yHi: number; xLo: number; xHi: number },
  body: (index: number) => void,
): void {
  const W = 5;
  const [iy, ix, row, index] = [f.local(I32), f.local(I32), f.local(I32), f.local(I32)];
  f.forLoop(
    iy,
    () => f.get(w.yLo),
    () => f.get(w.yHi),
    () => {
      f.get(w.base).get(iy).get(W).op(Op.i32Mul, Op.i32Add).set(row);
      f.forLoop(
        ix,
        () => f.get(w.xLo),
        () => f.get(w.xHi),
        () => {
          f.get(row).get(ix).op(Op.i32Add).set(index);
          body(index);
        },
      );
    },
  );
}

/**
 * `maxPool(x, out, argmax, planes, H, W, Ho, Wo, kh, kw, sh, sw, pt, pl)` (byte addresses x, out,
 * argmax): the maximum of each window and the flat index of the first element that reached it in
 * row-major order; the first NaN wins (and stays); padding never wins.
 */
export function maxPoolFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(14).fill(I32));
  const [x, out, argmax] = [0, 1, 2];
  const float = bytes === 4 ? F32 : F64;
  const [best, v] = [f.local(float), f.local(float)];
  const at = f.local(I32);
  const wins = f.local(I32);
  const align = bytes === 4 ? 2 : 3;
  const load = bytes === 4 ? Op.f32Load : Op.f64Load;
  const store = bytes === 4 ? Op.f32Store : Op.f64Store;
  const [eq, ne, gt] = bytes === 4 ? [F32_EQ, F32_NE, F32_GT] : [F64_EQ, F64_NE, F64_GT];
  windows(f, (w) => {
    // best = −∞, at = the window's first element (the JavaScript loop's rule).
    if (bytes === 4) f.op(0x43, 0x00, 0x00, 0x80, 0xff);
    else f.op(0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0xff);
    f.set(best);
    f.get(w.base).get(w.yLo).get(5).op(Op.i32Mul, Op.i32Add).get(w.xLo).op(Op.i32Add).set(at);
    eachElement(f, w, (index) => {
      f.get(x).get(index).i32(bytes).op(Op.i32Mul, Op.i32Add).memory(load, align, 0).set(v);
      // If v > best || (v is NaN && best is not): best = v, at = index. Selects, not a branch:
      // on real activations the comparison goes either way at random.
      f.get(v).get(best).op(gt);
      f.get(v).get(v).op(ne).get(best).get(best).op(eq, Op.i32And, I32_OR).set(wins);
      f.get(v).get(best).get(wins).op(Op.select).set(best);
      f.get(index).get(at).get(wins).op(Op.select).set(at);
    });
    f.get(out).get(w.o).i32(bytes).op(Op.i32Mul, Op.i32Add).get(best).memory(store, align, 0);
    f.get(argmax).get(w.o).i32(4).op(Op.i32Mul, Op.i32Add).get(at).memory(Op.i32Store, 2, 0);
  });
  return f;
}

/**
 * `avgPool(x, out, _, planes, H, W, Ho, Wo, kh, kw, sh, sw, pt, pl)`: the mean of each window with
 * the padding counted as zeros, summed in double precision and scaled by 1 / (kh · kw) as the
 * JavaScript loop does, so that both give the same bits. (The third argument is unused: the same
 * signature as `maxPool`.)
 */
export function avgPoolFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(14).fill(I32));
  const [x, out] = [0, 1];
  const [kh, kw] = [8, 9];
  const [total, scale] = [f.local(F64), f.local(F64)];
  const align = bytes === 4 ? 2 : 3;
  const load = bytes === 4 ? Op.f32Load : Op.f64Load;
  const store = bytes === 4 ? Op.f32Store : Op.f64Store;
  f.op(0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f); // f64.const 1
  f.get(kh).get(kw).op(Op.i32Mul, F64_CONVERT_I32, F64_DIV).set(scale);
  windows(f, (w) => {
    f.zero(8).set(total);
    eachElement(f, w, (index) => {
      f.get(total);
      f.get(x).get(index).i32(bytes).op(Op.i32Mul, Op.i32Add).memory(load, align, 0);
      if (bytes === 4) f.op(Op.f64PromoteF32);
      f.op(Op.f64Add).set(total);
    });
    f.get(out).get(w.o).i32(bytes).op(Op.i32Mul, Op.i32Add);
    f.get(total).get(scale).op(F64_MUL);
    if (bytes === 4) f.op(Op.f32DemoteF64);
    f.memory(store, align, 0);
  });
  return f;
}

/**
 * `maxPoolAdjoint(dy, argmax, dx, planeIn, planeOut, lo, hi)` (byte addresses dy, argmax, dx):
 * dx[argmax[o]] += dy[o] for the outputs o of planes [lo, hi), in increasing o (the JavaScript
 * loop's order, so overlapping windows add in the same order and give the same bits). A winner
 * must lie in its own plane, [p · planeIn, (p + 1) · planeIn): then planes never share an element
 * of dx, so chunks of whole planes may run at once; one that does not traps (`unreachable`)
 * instead of writing elsewhere in memory.
 */
export function maxPoolAdjointFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(7).fill(I32));
  const [dy, argmax, dx, planeIn, planeOut, lo, hi] = [0, 1, 2, 3, 4, 5, 6];
  const [p, o, end, base, index, at] = Array.from({ length: 6 }, () => f.local(I32));
  const align = bytes === 4 ? 2 : 3;
  const [load, store] = bytes === 4 ? [Op.f32Load, Op.f32Store] : [Op.f64Load, Op.f64Store];
  f.forLoop(
    p,
    () => f.get(lo),
    () => f.get(hi),
    () => {
      f.get(p).get(planeIn).op(Op.i32Mul).set(base);
      f.get(p).get(planeOut).op(Op.i32Mul).tee(o).get(planeOut).op(Op.i32Add).set(end);
      f.forLoop(
        o,
        () => f.get(o),
        () => f.get(end),
        () => {
          f.get(argmax).get(o).i32(4).op(Op.i32Mul, Op.i32Add).memory(Op.i32Load, 2, 0).set(index);
          // (index − base) as unsigned ≥ planeIn: outside the plane (below it too).
          f.get(index).get(base).op(Op.i32Sub).get(planeIn).op(Op.i32GeU);
          f.ifElse(() => f.op(Op.unreachable));
          f.get(dx).get(index).i32(bytes).op(Op.i32Mul, Op.i32Add).set(at);
          f.get(at).get(at).memory(load, align, 0);
          f.get(dy).get(o).i32(bytes).op(Op.i32Mul, Op.i32Add).memory(load, align, 0);
          f.op(bytes === 4 ? Op.f32Add : Op.f64Add).memory(store, align, 0);
        },
      );
    },
  );
  return f;
}

/** The bytes of four little-endian i32 lanes. */
function lanes32(values: readonly number[]): number[] {
  return values.flatMap((v) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff]);
}

/**
 * `maxPool2x2(x, out, argmax, planes, H, W, Ho, Wo)` for float32: the 2 × 2, stride-2, unpadded
 * max-pool whose windows all lie inside the plane (2 · Ho ≤ H, 2 · Wo ≤ W), four windows per step:
 * the even and odd columns of two input rows are split into four vectors (the windows' top-left,
 * top-right, bottom-left and bottom-right elements), taken in that (row-major) order with the
 * general kernel's rule: a later element wins when it is greater, or NaN while the best is not.
 * The same bits and winners as `maxPool`; the last Wo mod 4 windows of a row go one at a time.
 */
export function maxPool2x2Function(name: string): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(8).fill(I32));
  const [x, out, argmax, planes, H, W, Ho, Wo] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [p, oy, ox, row, o, address, index, wins] = Array.from({ length: 8 }, () => f.local(I32));
  const [v0, v1, best, at, ia, offsets] = Array.from({ length: 6 }, () => f.local(V128));
  const [right, below, belowRight] = [f.local(V128), f.local(V128), f.local(V128)];
  const [bestScalar, value] = [f.local(F32), f.local(F32)];
  const atScalar = f.local(I32);
  const even = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
  const odd = even.map((b) => b + 4);
  const splat = (push: () => void) => {
    push();
    f.simd(Simd.i32x4Splat);
  };
  splat(() => f.i32(1));
  f.set(right);
  splat(() => f.get(W));
  f.set(below);
  splat(() => f.get(W).i32(1).op(Op.i32Add));
  f.set(belowRight);
  f.simd(Simd.v128Const).op(...lanes32([0, 2, 4, 6]));
  f.set(offsets);
  /** best, at = the later element where it wins (vectors): value on the stack, its index in `indexVector`. */
  const stepVector = (indexVector: () => void) => {
    f.set(v0);
    // wins = v0 > best | (v0 ≠ v0 & best = best)
    f.get(v0).get(best).simd(Simd.f32x4Gt);
    f.get(v0).get(v0).simd(Simd.f32x4Ne).get(best).get(best).simd(Simd.f32x4Eq).simd(Simd.v128And);
    f.simd(Simd.v128Or).set(v1);
    f.get(v0).get(best).get(v1).simd(Simd.v128Bitselect).set(best);
    indexVector();
    f.get(at).get(v1).simd(Simd.v128Bitselect).set(at);
  };
  /** The same for one window: the element at `index` + `delta`. */
  const stepScalar = (delta: () => void) => {
    f.get(x).get(index);
    delta();
    f.op(Op.i32Add).i32(4).op(Op.i32Mul, Op.i32Add).memory(Op.f32Load, 2, 0).set(value);
    f.get(value).get(bestScalar).op(F32_GT);
    f.get(value)
      .get(value)
      .op(F32_NE)
      .get(bestScalar)
      .get(bestScalar)
      .op(F32_EQ, Op.i32And, I32_OR);
    f.set(wins);
    f.get(value).get(bestScalar).get(wins).op(Op.select).set(bestScalar);
    f.get(index);
    delta();
    f.op(Op.i32Add).get(atScalar).get(wins).op(Op.select).set(atScalar);
  };
  /** Pushes the even (or odd) lanes of the eight floats at `address` (+ W rows below when `lower`). */
  const halves = (lower: boolean, lanes: number[]) => {
    const load = (offset: number) => {
      f.get(address);
      if (lower) f.get(W).i32(4).op(Op.i32Mul, Op.i32Add);
      f.simd(Simd.load, { align: 2, offset });
    };
    load(0);
    load(16);
    f.simd(Simd.i8x16Shuffle).op(...lanes);
  };
  f.i32(0).set(o);
  f.forLoop(
    p,
    () => f.i32(0),
    () => f.get(planes),
    () => {
      f.forLoop(
        oy,
        () => f.i32(0),
        () => f.get(Ho),
        () => {
          // row = p · H · W + 2 · oy · W: the element index of the windows' top row.
          f.get(p).get(H).op(Op.i32Mul).get(oy).i32(2).op(Op.i32Mul, Op.i32Add);
          f.get(W).op(Op.i32Mul).set(row);
          f.i32(0).set(ox);
          // Four windows at a time while four remain.
          f.op(Op.block, 0x40, Op.loop, 0x40);
          f.get(ox).i32(4).op(Op.i32Add).get(Wo).op(Op.i32GtS, Op.brIf, 1);
          f.get(row).get(ox).i32(2).op(Op.i32Mul, Op.i32Add).tee(index);
          f.i32(4).op(Op.i32Mul).get(x).op(Op.i32Add).set(address);
          splat(() => f.get(index));
          f.get(offsets).simd(Simd.i32x4Add).set(ia);
          halves(false, even);
          f.set(best);
          f.get(ia).set(at);
          halves(false, odd);
          stepVector(() => f.get(ia).get(right).simd(Simd.i32x4Add));
          halves(true, even);
          stepVector(() => f.get(ia).get(below).simd(Simd.i32x4Add));
          halves(true, odd);
          stepVector(() => f.get(ia).get(belowRight).simd(Simd.i32x4Add));
          f.get(out).get(o).i32(4).op(Op.i32Mul, Op.i32Add).get(best);
          f.simd(Simd.store, { align: 2, offset: 0 });
          f.get(argmax).get(o).i32(4).op(Op.i32Mul, Op.i32Add).get(at);
          f.simd(Simd.store, { align: 2, offset: 0 });
          f.increment(o, 4);
          f.increment(ox, 4);
          f.op(Op.br, 0, Op.end, Op.end);
          // The rest one window at a time.
          f.op(Op.block, 0x40, Op.loop, 0x40);
          f.get(ox).get(Wo).op(Op.i32GeS, Op.brIf, 1);
          f.get(row).get(ox).i32(2).op(Op.i32Mul, Op.i32Add).set(index);
          f.get(x).get(index).i32(4).op(Op.i32Mul, Op.i32Add).memory(Op.f32Load, 2, 0);
          f.set(bestScalar);
          f.get(index).set(atScalar);
          stepScalar(() => f.i32(1));
          stepScalar(() => f.get(W));
          stepScalar(() => f.get(W).i32(1).op(Op.i32Add));
          f.get(out).get(o).i32(4).op(Op.i32Mul, Op.i32Add).get(bestScalar);
          f.memory(Op.f32Store, 2, 0);
          f.get(argmax).get(o).i32(4).op(Op.i32Mul, Op.i32Add).get(atScalar);
          f.memory(Op.i32Store, 2, 0);
          f.increment(o, 1);
          f.increment(ox, 1);
          f.op(Op.br, 0, Op.end, Op.end);
        },
      );
    },
  );
  return f;
}
