/** The WebAssembly im2col: builds a block of a convolution's column matrix from an image already in wasm memory, in the layout the JavaScript im2col uses. */

import { FunctionBuilder, I32, Op, Simd } from "./assembler.js";

/**
 * `im2col(x, col, C, H, W, Wo, kh, kw, sh, sw, pt, pl, dh, dw, oy0, oy1, rowBytes)` (byte
 * addresses x and col, the rest in elements but `rowBytes`): for output rows [oy0, oy1) of one
 * image, col[(c · kh + ky) · kw + kx, (oy − oy0) · Wo + ox] = x[c, oy·sh − pt + ky·dh,
 * ox·sw − pl + kx·dw], 0 in the padding, where row r of col starts at byte col + r · rowBytes
 * ((oy1 − oy0) · Wo · bytes for a block of its own; more when several images' columns sit side
 * by side in one matrix). Unit-stride rows move 16 bytes at a time (the last few as one more
 * vector ending at the run's end, over some already written), and whole padding rows are zeroed
 * by vectors.
 */
export function im2colFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(17).fill(I32));
  const [x, col, C, H, W, Wo, kh, kw, sh, sw, pt, pl, dh, dw, oy0, oy1, rowBytes] = Array.from(
    { length: 17 },
    (_, i) => i,
  );
  const rowStart = f.local(I32);
  const [o, channel, c, ky, kx, rowShift, colShift, lo, hi, oy, iy, src, ox, v] = Array.from(
    { length: 14 },
    () => f.local(I32),
  );
  const align = bytes === 4 ? 2 : 3;
  const load = bytes === 4 ? Op.f32Load : Op.f64Load;
  const store = bytes === 4 ? Op.f32Store : Op.f64Store;
  const lanes = 16 / bytes;
  const at = (base: number, index: number) =>
    f.get(base).get(index).i32(bytes).op(Op.i32Mul, Op.i32Add);
  /** col[o + ox] = 0 for ox in [from, to). */
  const zeroRange = (from: () => void, to: () => void) =>
    f.forLoop(ox, from, to, () => {
      at(o, ox);
      f.zero(bytes);
      f.memory(store, align, 0);
    });
  /** col[o + ox] = 0 for the whole output row: whole vectors, then element by element. */
  const zeroRow = () => {
    f.i32(0).set(ox);
    f.op(Op.block, 0x40, Op.loop, 0x40);
    f.get(ox).i32(lanes).op(Op.i32Add).get(Wo).op(Op.i32GtS, Op.brIf, 1);
    at(o, ox);
    f.zeroVector().simd(Simd.store, { align: 0, offset: 0 });
    f.increment(ox, lanes);
    f.op(Op.br, 0, Op.end, Op.end);
    zeroRange(
      () => f.get(ox),
      () => f.get(Wo),
    );
  };
  /** ceil(value / stride) for value > 0, with value pushed by `value` (no division for stride 1). */
  const ceilDiv = (value: () => void) => {
    value();
    f.set(v);
    f.get(sw).i32(1).op(Op.i32Ne);
    f.ifElse(() => {
      f.get(v).get(sw).op(Op.i32Add).i32(1).op(Op.i32Sub).get(sw).op(0x6d).set(v); // i32.div_s
    });
    f.get(v);
  };
  const minWo = () => {
    // stack: a → min(a, Wo)
    f.tee(v).get(Wo).get(v).get(Wo).op(Op.i32LtS, Op.select);
  };

  f.get(col).set(rowStart);
  f.forLoop(
    c,
    () => f.i32(0),
    () => f.get(C),
    () => {
      f.address(x, [c, H, W], bytes).set(channel);
      f.forLoop(
        ky,
        () => f.i32(0),
        () => f.get(kh),
        () => {
          f.get(ky).get(dh).op(Op.i32Mul).get(pt).op(Op.i32Sub).set(rowShift);
          f.forLoop(
            kx,
            () => f.i32(0),
            () => f.get(kw),
            () => {
              f.get(rowStart).set(o);
              f.increment(rowStart, () => f.get(rowBytes));
              f.get(kx).get(dw).op(Op.i32Mul).get(pl).op(Op.i32Sub).set(colShift);
              // lo: the first ox whose tap ox·sw + colShift is >= 0.
              f.get(colShift)
                .i32(0)
                .op(Op.i32GeS)
                .ifElse(
                  () => f.i32(0).set(lo),
                  () => {
                    ceilDiv(() => f.i32(0).get(colShift).op(Op.i32Sub));
                    minWo();
                    f.set(lo);
                  },
                );
              // hi: one past the last ox whose tap is < W, and at least lo.
              f.get(W).get(colShift).op(Op.i32Sub).tee(hi).i32(0).op(Op.i32LeS);
              f.ifElse(
                () => f.i32(0).set(hi),
                () => {
                  ceilDiv(() => f.get(hi));
                  minWo();
                  f.set(hi);
                },
              );
              f.get(hi).get(lo).get(hi).get(lo).op(Op.i32GeS, Op.select).set(hi);
              f.forLoop(
                oy,
                () => f.get(oy0),
                () => f.get(oy1),
                () => {
                  f.get(oy).get(sh).op(Op.i32Mul).get(rowShift).op(Op.i32Add).tee(iy);
                  f.i32(0).op(Op.i32LtS).get(iy).get(H).op(Op.i32GeS, 0x72); // i32.or
                  f.ifElse(zeroRow, () => {
                    f.get(channel)
                      .get(iy)
                      .get(W)
                      .op(Op.i32Mul)
                      .get(colShift)
                      .op(Op.i32Add)
                      .i32(bytes)
                      .op(Op.i32Mul, Op.i32Add)
                      .set(src);
                    zeroRange(
                      () => f.i32(0),
                      () => f.get(lo),
                    );
                    f.get(sw)
                      .i32(1)
                      .op(Op.i32Eq)
                      .ifElse(
                        () => {
                          // Whole vectors while they fit, then element by element.
                          f.get(lo).set(ox);
                          f.op(Op.block, 0x40, Op.loop, 0x40);
                          f.get(ox).i32(lanes).op(Op.i32Add).get(hi).op(Op.i32GtS, Op.brIf, 1);
                          at(o, ox);
                          at(src, ox);
                          f.simd(Simd.load, { align: 0, offset: 0 }).simd(Simd.store, {
                            align: 0,
                            offset: 0,
                          });
                          f.increment(ox, lanes);
                          f.op(Op.br, 0, Op.end, Op.end);
                          // The last few as one more vector ending at hi, over some already
                          // written (the same values again), when the run is that long.
                          f.get(ox).get(hi).op(Op.i32LtS);
                          f.get(hi).get(lo).op(Op.i32Sub).i32(lanes).op(Op.i32GeS, Op.i32And);
                          f.ifElse(() => {
                            f.get(hi).i32(lanes).op(Op.i32Sub).set(ox);
                            at(o, ox);
                            at(src, ox);
                            f.simd(Simd.load, { align: 0, offset: 0 }).simd(Simd.store, {
                              align: 0,
                              offset: 0,
                            });
                            f.get(hi).set(ox);
                          });
                          f.op(Op.block, 0x40, Op.loop, 0x40);
                          f.get(ox).get(hi).op(Op.i32GeS, Op.brIf, 1);
                          at(o, ox);
                          at(src, ox);
                          f.memory(load, align, 0).memory(store, align, 0);
                          f.increment(ox, 1);
                          f.op(Op.br, 0, Op.end, Op.end);
                        },
                        () =>
                          f.forLoop(
                            ox,
                            () => f.get(lo),
                            () => f.get(hi),
                            () => {
                              at(o, ox);
                              f.get(src)
                                .get(ox)
                                .get(sw)
                                .op(Op.i32Mul)
                                .i32(bytes)
                                .op(Op.i32Mul, Op.i32Add)
                                .memory(load, align, 0)
                                .memory(store, align, 0);
                            },
                          ),
                      );
                    zeroRange(
                      () => f.get(hi),
                      () => f.get(Wo),
                    );
                  });
                  f.increment(o, () => f.get(Wo).i32(bytes).op(Op.i32Mul));
                },
              );
            },
          );
        },
      );
    },
  );
  return f;
}

/**
 * `im2colImages(x, col, C, H, W, Ho, Wo, kh, kw, sh, sw, pt, pl, dh, dw, imageBytes, planeBytes,
 * rowBytes, lo, hi)`: the whole-image im2col of images [lo, hi) of a batch in wasm memory, image j
 * read at x + j · imageBytes and its columns written at col + j · planeBytes, rows `rowBytes`
 * apart: the images' columns side by side in one matrix. Images are independent, so the ranges
 * are chunks that threads can share.
 */
export function im2colImagesFunction(name: string, im2colIndex: number): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(20).fill(I32));
  const [x, col, C, H, W, Ho, Wo] = [0, 1, 2, 3, 4, 5, 6];
  const window = [7, 8, 9, 10, 11, 12, 13, 14];
  const [imageBytes, planeBytes, rowBytes, lo, hi] = [15, 16, 17, 18, 19];
  const j = f.local(I32);
  f.forLoop(
    j,
    () => f.get(lo),
    () => f.get(hi),
    () => {
      f.get(x).get(j).get(imageBytes).op(Op.i32Mul, Op.i32Add);
      f.get(col).get(j).get(planeBytes).op(Op.i32Mul, Op.i32Add);
      f.get(C).get(H).get(W).get(Wo);
      for (const w of window) f.get(w);
      f.i32(0).get(Ho).get(rowBytes).call(im2colIndex);
    },
  );
  return f;
}
