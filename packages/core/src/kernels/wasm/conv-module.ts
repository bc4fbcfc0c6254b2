/** The WebAssembly convolutions of whole images, forward and for the weight gradient: for each image of a chunk, im2col into the chunk's own scratch, then the product with it there, so that a thread multiplies the columns it built (they stay in its own cache). */

import { FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";
import type { GemmLayout } from "./gemm-module.js";

/** Pushes ⌈value / width⌉ for the non-negative value `value` pushes. */
function pushCeilDivide(f: FunctionBuilder, value: () => void, width: number): void {
  value();
  f.i32(width - 1)
    .op(Op.i32Add)
    .i32(width)
    .op(0x6d); // i32.div_s
}

/** Function indices a `convImages` function calls. */
export interface ConvCallees {
  im2col: number;
  tiles: number;
}

/** The arguments of `convImages` before the chunk's scratch address and its (lo, hi). */
export const CONV_IMAGES_ARGUMENTS = 22;

/**
 * `convImages(x, out, aAt, C, H, W, Ho, Wo, kh, kw, sh, sw, pt, pl, dh, dw, m, rows, kc, mc,
 * cOffset, bOffset, scratch, lo, hi)`: out[j] += conv(x[j], w) for images j in [lo, hi) of a batch
 * in wasm memory (x[j] at x + j · C·H·W · bytes, out[j] at out + j · m·Ho·Wo · bytes), the
 * weights (m × C·kh·kw) already packed at aAt in depth blocks of kc. Output rows go `rows` at a
 * time: their columns are built at `scratch`, the block of out is copied to a C with padded rows
 * at scratch + cOffset, multiplied into (`tiles`, its B panels packed at scratch + bOffset), and
 * copied back. Each element is summed over the depth in the order a product of the whole matrix
 * sums it, so the result is the same bits whatever the chunks.
 */
export function convImagesFunction(
  name: string,
  { bytes, nr }: GemmLayout,
  callees: ConvCallees,
): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(CONV_IMAGES_ARGUMENTS + 3).fill(I32));
  const [x, out, aAt, C, H, W, Ho, Wo] = [0, 1, 2, 3, 4, 5, 6, 7];
  const window = [8, 9, 10, 11, 12, 13, 14, 15];
  const [kh, kw] = window;
  const [m, rows, kc, mc, cOffset, bOffset, scratch, lo, hi] = [16, 17, 18, 19, 20, 21, 22, 23, 24];
  const [depth, j, image, result, oy0, oy1, n, ldc, co, cAt, block] = Array.from(
    { length: 11 },
    () => f.local(I32),
  );
  /** Pushes ⌈value / nr⌉ · nr for the value `value` pushes. */
  const padded = (value: () => void) => {
    pushCeilDivide(f, value, nr);
    f.i32(nr).op(Op.i32Mul);
  };
  /** Copies the block's rows of out[j] into C (`toC`) or back, n elements per output channel. */
  const copyRows = (toC: boolean) =>
    f.forLoop(
      co,
      () => f.i32(0),
      () => f.get(m),
      () => {
        const cRow = () => f.get(cAt).get(co).get(ldc).op(Op.i32Mul, Op.i32Add);
        const outRow = () => f.address(block, [co, Ho, Wo], bytes);
        if (toC) {
          cRow();
          outRow();
        } else {
          outRow();
          cRow();
        }
        f.get(n).i32(bytes).op(Op.i32Mul).memoryCopy();
      },
    );

  f.get(C).get(kh).op(Op.i32Mul).get(kw).op(Op.i32Mul).set(depth);
  f.get(scratch).get(cOffset).op(Op.i32Add).set(cAt);
  f.forLoop(
    j,
    () => f.get(lo),
    () => f.get(hi),
    () => {
      f.address(x, [j, C, H, W], bytes).set(image);
      f.address(out, [j, m, Ho, Wo], bytes).set(result);
      f.forLoop(
        oy0,
        () => f.i32(0),
        () => f.get(Ho),
        () => {
          f.min(
            () => f.get(Ho),
            () => f.get(oy0).get(rows).op(Op.i32Add),
          ).set(oy1);
          f.get(oy1).get(oy0).op(Op.i32Sub).get(Wo).op(Op.i32Mul).set(n);
          padded(() => f.get(n));
          f.i32(bytes).op(Op.i32Mul).set(ldc);
          // This block of out[j]: channel co's rows start at block + co · Ho·Wo · bytes.
          f.address(result, [oy0, Wo], bytes).set(block);
          f.get(image).get(scratch).get(C).get(H).get(W).get(Wo);
          for (const w of window) f.get(w);
          f.get(oy0).get(oy1).get(n).i32(bytes).op(Op.i32Mul).call(callees.im2col);
          copyRows(true);
          // tiles(aFrom, bFrom, aAt, bAt, cAt, ldc, m, n, k, strides, kc, mc, byColumns, lo, hi)
          f.i32(0).get(scratch).get(aAt);
          f.get(scratch).get(bOffset).op(Op.i32Add);
          f.get(cAt).get(ldc).get(m).get(n).get(depth);
          f.get(depth).i32(1).get(n).i32(1);
          f.get(kc).get(mc).i32(1).i32(0);
          padded(() => f.get(n));
          f.i32(nr).op(0x6d); // i32.div_s: the block's column panels
          f.call(callees.tiles);
          copyRows(false);
        },
        () => f.get(rows),
      );
    },
  );
  return f;
}

/** Function indices a `weightImages` function calls. */
export interface WeightCallees {
  im2col: number;
  packRangeA: number;
  tiles: number;
}

/** The arguments of `weightImages` before the chunk's scratch address and its (lo, hi). */
export const WEIGHT_IMAGES_ARGUMENTS = 20;

/**
 * `weightImages(x, dy, C, H, W, Ho, Wo, kh, kw, sh, sw, pt, pl, dh, dw, m, kc, mc, aOffset,
 * bOffset, scratch, lo, hi)`: the share of images [lo, hi) of a batch in wasm memory (x[j] at x +
 * j · C·H·W · bytes, dy[j] at dy + j · m·Ho·Wo · bytes) in the weight gradient, summed into a
 * partial dw of their own at `scratch` (m rows of ⌈C·kh·kw / nr⌉ · nr elements, zeroed first).
 * For each image in turn: its whole im2col after the partial, dy[j] packed at scratch + aOffset
 * (depth blocks of kc over the image's Ho·Wo pixels), and the product partial += dy[j] · colᵀ
 * (`tiles` by columns, B packed at scratch + bOffset). A thread multiplies the columns it built,
 * and the partial of a range of images is the same bits whoever computes it.
 */
export function weightImagesFunction(
  name: string,
  { bytes, mr, nr }: GemmLayout,
  callees: WeightCallees,
): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(WEIGHT_IMAGES_ARGUMENTS + 3).fill(I32));
  const [x, dy, C, H, W, Ho, Wo] = [0, 1, 2, 3, 4, 5, 6];
  const window = [7, 8, 9, 10, 11, 12, 13, 14];
  const [kh, kw] = window;
  const [m, kc, mc, aOffset, bOffset, scratch, lo, hi] = [15, 16, 17, 18, 19, 20, 21, 22];
  const [depth, plane, ldc, col, j] = Array.from({ length: 5 }, () => f.local(I32));
  const panels = (value: () => void, width: number) => pushCeilDivide(f, value, width);
  f.get(C).get(kh).op(Op.i32Mul).get(kw).op(Op.i32Mul).set(depth);
  f.get(Ho).get(Wo).op(Op.i32Mul).set(plane);
  panels(() => f.get(depth), nr);
  f.i32(nr * bytes)
    .op(Op.i32Mul)
    .set(ldc);
  f.get(scratch).get(m).get(ldc).op(Op.i32Mul, Op.i32Add).set(col);
  f.get(scratch).i32(0).get(m).get(ldc).op(Op.i32Mul).memoryFill();
  f.forLoop(
    j,
    () => f.get(lo),
    () => f.get(hi),
    () => {
      // im2col(x[j], col, C, H, W, Wo, kh, kw, sh, sw, pt, pl, dh, dw, 0, Ho, Ho·Wo · bytes)
      f.address(x, [j, C, H, W], bytes).get(col).get(C).get(H).get(W).get(Wo);
      for (const w of window) f.get(w);
      f.i32(0).get(Ho).get(plane).i32(bytes).op(Op.i32Mul).call(callees.im2col);
      // packRangeA(dy[j], m, Ho·Wo, Ho·Wo, 1, kc, scratch + aOffset, 0, ⌈m / mr⌉)
      f.address(dy, [j, m, plane], bytes).get(m).get(plane).get(plane).i32(1).get(kc);
      f.get(scratch).get(aOffset).op(Op.i32Add).i32(0);
      panels(() => f.get(m), mr);
      f.call(callees.packRangeA);
      // tiles(aFrom, bFrom, aAt, bAt, cAt, ldc, m, n, k, aRowStride, aColStride, bRowStride,
      // bColStride, kc, mc, byColumns, lo, hi) with B = colᵀ: element (p, d) at col[d, p].
      f.i32(0).get(col);
      f.get(scratch).get(aOffset).op(Op.i32Add);
      f.get(scratch).get(bOffset).op(Op.i32Add);
      f.get(scratch).get(ldc).get(m).get(depth).get(plane);
      f.get(plane).i32(1).i32(1).get(plane);
      f.get(kc).get(mc).i32(1).i32(0);
      panels(() => f.get(depth), nr);
      f.call(callees.tiles);
    },
  );
  return f;
}

/**
 * `sumPartials(base, stride, count, lo, hi)`: for elements [lo, hi) (whole vectors), the first
 * partial at `base` += the other count − 1, each `stride` bytes after the one before, in order.
 */
export function sumPartialsFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, [I32, I32, I32, I32, I32]);
  const [base, stride, count, lo, hi] = [0, 1, 2, 3, 4];
  const [i, c, at, sum] = [f.local(I32), f.local(I32), f.local(I32), f.local(V128)];
  const add = bytes === 4 ? Simd.f32x4Add : Simd.f64x2Add;
  const vector = { align: 4, offset: 0 };
  f.forLoop(
    i,
    () => f.get(lo),
    () => f.get(hi),
    () => {
      f.address(base, [i], bytes).tee(at).simd(Simd.load, vector).set(sum);
      f.forLoop(
        c,
        () => f.i32(1),
        () => f.get(count),
        () => {
          f.increment(at, () => f.get(stride));
          f.get(sum).get(at).simd(Simd.load, vector).simd(add).set(sum);
        },
      );
      f.address(base, [i], bytes).get(sum).simd(Simd.store, vector);
    },
    16 / bytes,
  );
  return f;
}
