/** The WebAssembly packing routine: copies an operand, already in wasm memory, into the panels the GEMM micro-kernel reads. */

import { FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";

/**
 * `pack(src, rows, depth, rowStride, depthStride, kc, dst, panels, skip)`: op(X)[rows × depth],
 * element (r, p) at byte `src + (r · rowStride + p · depthStride) · bytes`, into panels of `width`
 * rows, depth block by depth block (blocks of `kc`), p-major within a panel, the rows past the last
 * zeroed: block pc starts at element pc · panels · width of `dst`, and panel q of it at
 * q · kcLen · width after that; these rows are panels [skip, skip + ⌈rows / width⌉) of it. A whole
 * operand is `panels` = ⌈rows / width⌉ and `skip` 0; a slice of a larger operand packed in place
 * (threads sharing one packing) gives the whole operand's panel count and its own first panel. When rows are contiguous (rowStride 1) each depth step is read in order and a full
 * panel row moves as 16-byte vectors; otherwise the source is walked panel by panel.
 */
export function packFunction(name: string, bytes: 4 | 8, width: number): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(9).fill(I32));
  const [src, rows, depth, rowStride, depthStride, kc, dst, panels, skip] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8,
  ];
  const slice = f.local(I32);
  const [pc, kcLen, block, p, r0, live, r, s, o, start, panelBytes] = Array.from(
    { length: 11 },
    () => f.local(I32),
  );
  const align = bytes === 4 ? 2 : 3;
  const load = bytes === 4 ? Op.f32Load : Op.f64Load;
  const store = bytes === 4 ? Op.f32Store : Op.f64Store;
  /** min(width, rows − r0): the rows of this panel that exist. */
  const liveRows = () =>
    f.min(
      () => f.i32(width),
      () => f.get(rows).get(r0).op(Op.i32Sub),
    );
  const times = (local: number, n: number) => f.get(local).i32(n).op(Op.i32Mul);
  // Zero rows [live, width) of the panel row at o.
  const padRest = () =>
    f.forLoop(
      r,
      () => f.get(live),
      () => f.i32(width),
      () => {
        f.get(o).get(r).i32(bytes).op(Op.i32Mul, Op.i32Add);
        f.zero(bytes);
        f.memory(store, align, 0);
      },
    );
  f.get(dst).set(block);
  f.forLoop(
    pc,
    () => f.i32(0),
    () => f.get(depth),
    () => {
      f.min(
        () => f.get(kc),
        () => f.get(depth).get(pc).op(Op.i32Sub),
      );
      f.set(kcLen);
      // Bytes from one panel to the next within the block.
      times(kcLen, width * bytes).set(panelBytes);
      // These rows' first panel within the block.
      f.get(block).get(skip).get(panelBytes).op(Op.i32Mul, Op.i32Add).set(slice);
      f.get(rowStride)
        .i32(1)
        .op(Op.i32Eq)
        .ifElse(
          () => {
            f.forLoop(
              p,
              () => f.i32(0),
              () => f.get(kcLen),
              () => {
                f.get(src)
                  .get(pc)
                  .get(p)
                  .op(Op.i32Add)
                  .get(depthStride)
                  .op(Op.i32Mul)
                  .i32(bytes)
                  .op(Op.i32Mul, Op.i32Add)
                  .set(s);
                f.get(slice)
                  .get(p)
                  .i32(width * bytes)
                  .op(Op.i32Mul, Op.i32Add)
                  .set(o);
                f.forLoop(
                  r0,
                  () => f.i32(0),
                  () => f.get(rows),
                  () => {
                    liveRows();
                    f.tee(live)
                      .i32(width)
                      .op(Op.i32Eq)
                      .ifElse(
                        () => {
                          for (let v = 0; v < (width * bytes) / 16; v++) {
                            f.get(o)
                              .get(s)
                              .simd(Simd.load, { align: 0, offset: 16 * v })
                              .simd(Simd.store, { align: 4, offset: 16 * v });
                          }
                        },
                        () => {
                          f.forLoop(
                            r,
                            () => f.i32(0),
                            () => f.get(live),
                            () => {
                              f.get(o).get(r).i32(bytes).op(Op.i32Mul, Op.i32Add);
                              f.get(s).get(r).i32(bytes).op(Op.i32Mul, Op.i32Add);
                              f.memory(load, align, 0).memory(store, align, 0);
                            },
                          );
                          padRest();
                        },
                      );
                    f.increment(s, width * bytes);
                    f.increment(o, () => f.get(panelBytes));
                  },
                  width,
                );
              },
            );
          },
          () => {
            f.get(slice).set(o);
            f.forLoop(
              r0,
              () => f.i32(0),
              () => f.get(rows),
              () => {
                liveRows();
                f.set(live);
                f.get(src)
                  .get(r0)
                  .get(rowStride)
                  .op(Op.i32Mul)
                  .get(pc)
                  .get(depthStride)
                  .op(Op.i32Mul, Op.i32Add)
                  .i32(bytes)
                  .op(Op.i32Mul, Op.i32Add)
                  .set(start);
                f.i32(0).set(p);
                if (bytes === 4)
                  transposeRuns(f, { start, o, p, kcLen, live, rowStride, depthStride }, width);
                f.forLoop(
                  p,
                  () => f.get(p),
                  () => f.get(kcLen),
                  () => {
                    f.get(start).set(s);
                    f.forLoop(
                      r,
                      () => f.i32(0),
                      () => f.get(live),
                      () => {
                        f.get(o).get(r).i32(bytes).op(Op.i32Mul, Op.i32Add);
                        f.get(s).memory(load, align, 0).memory(store, align, 0);
                        f.increment(s, () => times(rowStride, bytes));
                      },
                    );
                    padRest();
                    f.increment(o, width * bytes);
                    f.increment(start, () => times(depthStride, bytes));
                  },
                );
              },
              width,
            );
          },
        );
      // Next block: panels · width · kcLen elements further.
      f.get(block).get(panels).get(panelBytes).op(Op.i32Mul, Op.i32Add).set(block);
    },
    () => f.get(kc),
  );
  return f;
}

/** The bytes of 32-bit lanes for i8x16.shuffle: lanes 0–3 of the first operand, 4–7 of the second. */
const lanes = (picks: readonly number[]) =>
  picks.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

/**
 * The float32 panel rows of a strided operand whose depth is contiguous (depthStride 1: each of
 * the panel's `width` rows is a run along the depth, as dy's rows and the im2col rows are in the
 * weight gradient), four depth steps at a time: each 4 × 4 block (four rows, four steps) loaded
 * as four vectors, transposed by eight shuffles, and stored as four panel rows. Only full panels
 * (`live` = width); it advances `p`, `start` and `o` past what it wrote, and the caller's loop
 * does the rest one element at a time.
 */
function transposeRuns(
  f: FunctionBuilder,
  at: {
    start: number;
    o: number;
    p: number;
    kcLen: number;
    live: number;
    rowStride: number;
    depthStride: number;
  },
  width: number,
): void {
  const { start, o, p, kcLen, live, rowStride, depthStride } = at;
  const v = Array.from({ length: 4 }, () => f.local(V128));
  const [a, b, c, d] = Array.from({ length: 4 }, () => f.local(V128));
  const rowBytes = f.local(I32);
  f.get(depthStride).i32(1).op(Op.i32Eq).get(live).i32(width).op(Op.i32Eq).op(Op.i32And);
  f.ifElse(() => {
    f.get(rowStride).i32(4).op(Op.i32Mul).set(rowBytes);
    f.op(Op.block, 0x40, Op.loop, 0x40);
    f.get(p).i32(4).op(Op.i32Add).get(kcLen).op(Op.i32GtS, Op.brIf, 1);
    for (let g = 0; g < width / 4; g++) {
      // v[i] = the four steps p … p + 3 of row 4g + i: start + (4g + i) · rowStride · 4.
      for (let i = 0; i < 4; i++) {
        f.get(start)
          .get(rowBytes)
          .i32(4 * g + i)
          .op(Op.i32Mul, Op.i32Add);
        f.simd(Simd.load, { align: 2, offset: 0 }).set(v[i]);
      }
      const shuffle = (x: number, y: number, picks: number[], into: number) => {
        f.get(x)
          .get(y)
          .simd(Simd.i8x16Shuffle)
          .op(...lanes(picks))
          .set(into);
      };
      shuffle(v[0], v[1], [0, 4, 1, 5], a); // v0[0] v1[0] v0[1] v1[1]
      shuffle(v[2], v[3], [0, 4, 1, 5], b); // v2[0] v3[0] v2[1] v3[1]
      shuffle(v[0], v[1], [2, 6, 3, 7], c); // v0[2] v1[2] v0[3] v1[3]
      shuffle(v[2], v[3], [2, 6, 3, 7], d); // v2[2] v3[2] v2[3] v3[3]
      // Panel row k (step p + k) gets lane k of the four rows, at o + k · width · 4 + 16g.
      const store = (k: number, x: number, y: number, picks: number[]) => {
        f.get(o);
        f.get(x)
          .get(y)
          .simd(Simd.i8x16Shuffle)
          .op(...lanes(picks));
        f.simd(Simd.store, { align: 4, offset: k * width * 4 + 16 * g });
      };
      store(0, a, b, [0, 1, 4, 5]);
      store(1, a, b, [2, 3, 6, 7]);
      store(2, c, d, [0, 1, 4, 5]);
      store(3, c, d, [2, 3, 6, 7]);
    }
    f.increment(p, 4);
    f.increment(start, 16);
    f.increment(o, 4 * width * 4);
    f.op(Op.br, 0, Op.end, Op.end);
  });
}

/**
 * `packRange(src, rows, depth, rowStride, depthStride, kc, dst, lo, hi)`: panels [lo, hi) of
 * `pack(src, rows, depth, rowStride, depthStride, kc, dst, ⌈rows / width⌉, 0)`, written where that
 * whole packing puts them, so that threads can share the packing of one operand.
 */
export function packRangeFunction(
  name: string,
  bytes: 4 | 8,
  width: number,
  packIndex: number,
): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(9).fill(I32));
  const [src, rows, depth, rowStride, depthStride, kc, dst, lo, hi] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const first = f.local(I32);
  f.get(lo).i32(width).op(Op.i32Mul).set(first);
  f.get(src).get(first).get(rowStride).op(Op.i32Mul).i32(bytes).op(Op.i32Mul, Op.i32Add);
  f.min(
    () => f.get(rows),
    () => f.get(hi).i32(width).op(Op.i32Mul),
  );
  f.get(first).op(Op.i32Sub);
  f.get(depth).get(rowStride).get(depthStride).get(kc).get(dst);
  f.get(rows)
    .i32(width - 1)
    .op(Op.i32Add)
    .i32(width)
    .op(0x6d); // i32.div_s: all the panels
  f.get(lo).call(packIndex);
  return f;
}
