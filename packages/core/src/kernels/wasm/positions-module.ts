/** argwhere's kernel in WebAssembly: the positions of the non-zero bytes of a bool array, sixteen bytes at a time. */

import { FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";

const I32_LOAD8_U = 0x2d;
const I32_CTZ = 0x68;
const I32_POPCNT = 0x69;
const I8X16_NE = 0x24;
const I8X16_BITMASK = 0x64;

/** Pushes the bitmask of the non-zero bytes of the 16 at byte address `at` + `i` (bit j: byte j). */
function nonzeroMask(f: FunctionBuilder, at: number, i: number): void {
  f.get(at).get(i).op(Op.i32Add).simd(Simd.load, { align: 0, offset: 0 });
  f.zeroVector().simd(I8X16_NE).simd(I8X16_BITMASK);
}

/** Pushes the i32x4 (first, first + 1, first + 2, first + 3). */
function lanes(f: FunctionBuilder, first: number): void {
  const bytes: number[] = [];
  for (let lane = 0; lane < 4; lane++) {
    for (let b = 0; b < 4; b++) bytes.push(((first + lane) >>> (8 * b)) & 0xff);
  }
  f.simd(Simd.v128Const).op(...bytes);
}

/** `countNonzero8(at, n) → count`: how many of the `n` bytes at `at` are not zero. */
export function countNonzeroFunction(): FunctionBuilder {
  const f = new FunctionBuilder("countNonzero8", [I32, I32], [I32]);
  const [at, n] = [0, 1];
  const [i, count] = [f.local(I32), f.local(I32)];
  const whole = () => f.get(n).i32(-16).op(Op.i32And);
  f.forLoop(
    i,
    () => f.i32(0),
    whole,
    () => {
      f.get(count);
      nonzeroMask(f, at, i);
      f.op(I32_POPCNT, Op.i32Add).set(count);
    },
    16,
  );
  f.forLoop(
    i,
    whole,
    () => f.get(n),
    () => {
      f.get(count);
      f.get(at).get(i).op(Op.i32Add).memory(I32_LOAD8_U, 0, 0);
      f.i32(0).op(Op.i32Ne, Op.i32Add).set(count);
    },
  );
  f.get(count);
  return f;
}

/**
 * `nonzeroPositions8(at, n, out)`: the positions of the non-zero bytes among the `n` at `at`, in
 * increasing order, as int32 from byte address `out` (room for `countNonzero8(at, n)` of them).
 * Sixteen bytes at a time: none set is skipped, all set is four vector stores, and otherwise the
 * set bits of their mask are taken lowest first.
 */
export function nonzeroPositionsFunction(): FunctionBuilder {
  const f = new FunctionBuilder("nonzeroPositions8", [I32, I32, I32]);
  const [at, n, out] = [0, 1, 2];
  const [i, mask, first] = [f.local(I32), f.local(I32), f.local(I32)];
  const position = f.local(V128);
  const whole = () => f.get(n).i32(-16).op(Op.i32And);
  /** out[·] = value pushed by `value`; out advances by one position. */
  const emit = (value: () => void) => {
    f.get(out);
    value();
    f.memory(Op.i32Store, 2, 0);
    f.increment(out, 4);
  };
  f.forLoop(
    i,
    () => f.i32(0),
    whole,
    () => {
      nonzeroMask(f, at, i);
      f.tee(mask).i32(0xffff).op(Op.i32Eq);
      f.ifElse(
        () => {
          // All sixteen: i, i + 1, …, i + 15 as four vectors.
          f.get(i).simd(Simd.i32x4Splat).set(position);
          for (let v = 0; v < 4; v++) {
            f.get(out).get(position);
            lanes(f, 4 * v);
            f.simd(Simd.i32x4Add).simd(Simd.store, { align: 2, offset: 16 * v });
          }
          f.increment(out, 64);
        },
        () => {
          // The set bits, lowest first, each cleared by mask & (mask − 1).
          f.op(Op.block, 0x40, Op.loop, 0x40);
          f.get(mask).op(Op.i32Eqz, Op.brIf, 1);
          f.get(mask).op(I32_CTZ).set(first);
          emit(() => f.get(i).get(first).op(Op.i32Add));
          f.get(mask).get(mask).i32(1).op(Op.i32Sub, Op.i32And).set(mask);
          f.op(Op.br, 0, Op.end, Op.end);
        },
      );
    },
    16,
  );
  f.forLoop(
    i,
    whole,
    () => f.get(n),
    () => {
      f.get(at).get(i).op(Op.i32Add).memory(I32_LOAD8_U, 0, 0);
      f.ifElse(() => emit(() => f.get(i)));
    },
  );
  return f;
}
