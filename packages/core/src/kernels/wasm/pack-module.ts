/** The WebAssembly packing routine: copies an operand, already in wasm memory, into the panels the GEMM micro-kernel reads. */

import { FunctionBuilder, I32, Op, Simd } from "./assembler.js";

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
                f.forLoop(
                  p,
                  () => f.i32(0),
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
