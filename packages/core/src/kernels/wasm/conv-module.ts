/** The WebAssembly convolution of whole images: for each image of a chunk, im2col of a block of output rows into the chunk's own scratch, then that block's product with the packed weights, so that a thread builds and multiplies the columns it produced (they stay in its own cache). */

import { FunctionBuilder, I32, Op } from "./assembler.js";
import type { GemmLayout } from "./gemm-module.js";

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
    value();
    f.i32(nr - 1)
      .op(Op.i32Add)
      .i32(nr)
      .op(0x6d) // i32.div_s
      .i32(nr)
      .op(Op.i32Mul);
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
