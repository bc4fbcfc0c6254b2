/** The WebAssembly GEMM: a register-tiled SIMD micro-kernel over packed panels and the blocked loop nest around it, generated for float32 or float64, with or without relaxed fused multiply-add. */

import { FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";

/** Element type and the shape of one register tile. */
export interface GemmLayout {
  /** Bytes per element: 4 (float32) or 8 (float64). */
  bytes: 4 | 8;
  /** Rows of C per tile (rows of a packed A panel). */
  mr: number;
  /** Columns of C per tile (columns of a packed B panel): a whole number of 16-byte vectors. */
  nr: number;
}

/**
 * Tile shapes: float32 keeps 4 × 8 (eight f32x4 accumulators, two B vectors and one broadcast A
 * value in registers), float64 4 × 4 of f64x2 likewise. 6 × 8 needs fifteen vector registers,
 * which V8 does not leave free on x64 (it keeps one as scratch): it spilled and ran at 60 %.
 */
export const LAYOUTS: Record<"float32" | "float64", GemmLayout> = {
  float32: { bytes: 4, mr: 4, nr: 8 },
  float64: { bytes: 8, mr: 4, nr: 4 },
};

/**
 * The two functions of one GEMM, `micro<suffix>` (to be placed at function index `firstIndex`)
 * and `gemm<suffix>` right after it:
 *
 * `gemm(ap, bp, cp, ldc, mPanels, nPanels, iStart, iEnd, jStart, jEnd, k, kc, mc, accumulate)`
 * computes (adds into C when `accumulate` is 1, else overwrites) the
 * tiles of C (row-major at byte address `cp`, `ldc` bytes per row) in row panels [iStart, iEnd)
 * and column panels [jStart, jEnd), from A packed at `ap` and B at `bp`. The depth is cut into
 * blocks of `kc`; block `pc` of A holds mPanels panels of `kcLen × mr` (p-major), starting at
 * element pc · mPanels · mr, and likewise for B. Row panels go `mc` at a time, so that those A
 * panels stay in L2 while every B panel of the range passes through L1. Each element of C is
 * summed over p in the same order whatever the tile range: splitting the ranges between threads
 * cannot change a bit.
 */
export function gemmFunctions(
  suffix: string,
  layout: GemmLayout,
  relaxed: boolean,
  firstIndex: number,
): FunctionBuilder[] {
  return [
    microKernel(`micro${suffix}`, layout, relaxed),
    loopNest(`gemm${suffix}`, layout, firstIndex),
  ];
}

/** micro(a, b, c, ldc, kc, first): one mr × nr tile of C (+)= A panel · B panel over kc steps. */
function microKernel(
  name: string,
  { bytes, mr, nr }: GemmLayout,
  relaxed: boolean,
): FunctionBuilder {
  const f = new FunctionBuilder(name, [I32, I32, I32, I32, I32, I32]);
  const [a, b, c, ldc, kc, first] = [0, 1, 2, 3, 4, 5];
  const vectors = (nr * bytes) / 16;
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) acc.push(Array.from({ length: vectors }, () => f.local(V128)));
  const bv = Array.from({ length: vectors }, () => f.local(V128));
  const av = f.local(V128);
  const row = f.local(I32);
  const end = f.local(I32);
  const align = bytes === 4 ? 2 : 3;
  const splat = bytes === 4 ? Simd.load32Splat : Simd.load64Splat;
  const add = bytes === 4 ? Simd.f32x4Add : Simd.f64x2Add;
  const mul = bytes === 4 ? Simd.f32x4Mul : Simd.f64x2Mul;
  const madd = bytes === 4 ? Simd.f32x4RelaxedMadd : Simd.f64x2RelaxedMadd;

  // Start from zero on the first depth block, from the stored partial sums after it.
  f.get(first).ifElse(
    () => {
      for (const line of acc) {
        for (const v of line) {
          f.zeroVector().set(v);
        }
      }
    },
    () => {
      f.get(c).set(row);
      for (const line of acc) {
        line.forEach((v, i) => {
          f.get(row)
            .simd(Simd.load, { align: 4, offset: 16 * i })
            .set(v);
        });
        f.increment(row, () => f.get(ldc));
      }
    },
  );
  f.get(a)
    .get(kc)
    .i32(mr * bytes)
    .op(Op.i32Mul, Op.i32Add)
    .set(end);
  f.op(Op.loop, 0x40);
  bv.forEach((v, i) => {
    f.get(b)
      .simd(Simd.load, { align: 4, offset: 16 * i })
      .set(v);
  });
  for (let r = 0; r < mr; r++) {
    f.get(a)
      .simd(splat, { align, offset: r * bytes })
      .set(av);
    bv.forEach((v, i) => {
      if (relaxed) f.get(av).get(v).get(acc[r][i]).simd(madd);
      else f.get(acc[r][i]).get(av).get(v).simd(mul).simd(add);
      f.set(acc[r][i]);
    });
  }
  f.increment(a, mr * bytes);
  f.increment(b, nr * bytes);
  f.get(a).get(end).op(Op.i32LtS, Op.brIf, 0, Op.end);
  f.get(c).set(row);
  for (const line of acc) {
    line.forEach((v, i) => {
      f.get(row)
        .get(v)
        .simd(Simd.store, { align: 4, offset: 16 * i });
    });
    f.increment(row, () => f.get(ldc));
  }
  return f;
}

function loopNest(
  name: string,
  { bytes, mr, nr }: GemmLayout,
  microIndex: number,
): FunctionBuilder {
  const params = new Array(14).fill(I32);
  const f = new FunctionBuilder(name, params);
  const [ap, bp, cp, ldc, mPanels, nPanels, iStart, iEnd, jStart, jEnd, k, kc, mc, accumulate] =
    params.map((_, i) => i);
  const [pc, kcLen, aBlock, bBlock, ic, icEnd, jp, ip, bPanel, first] = Array.from(
    { length: 10 },
    () => f.local(I32),
  );
  f.forLoop(
    pc,
    () => f.i32(0),
    () => f.get(k),
    () => {
      f.min(
        () => f.get(kc),
        () => f.get(k).get(pc).op(Op.i32Sub),
      );
      f.set(kcLen);
      f.get(pc).op(Op.i32Eqz).get(accumulate).op(Op.i32Eqz, Op.i32And).set(first);
      f.get(ap)
        .get(pc)
        .get(mPanels)
        .op(Op.i32Mul)
        .i32(mr * bytes)
        .op(Op.i32Mul, Op.i32Add)
        .set(aBlock);
      f.get(bp)
        .get(pc)
        .get(nPanels)
        .op(Op.i32Mul)
        .i32(nr * bytes)
        .op(Op.i32Mul, Op.i32Add)
        .set(bBlock);
      f.forLoop(
        ic,
        () => f.get(iStart),
        () => f.get(iEnd),
        () => {
          f.min(
            () => f.get(ic).get(mc).op(Op.i32Add),
            () => f.get(iEnd),
          );
          f.set(icEnd);
          f.forLoop(
            jp,
            () => f.get(jStart),
            () => f.get(jEnd),
            () => {
              f.get(bBlock)
                .get(jp)
                .get(kcLen)
                .op(Op.i32Mul)
                .i32(nr * bytes)
                .op(Op.i32Mul, Op.i32Add)
                .set(bPanel);
              f.forLoop(
                ip,
                () => f.get(ic),
                () => f.get(icEnd),
                () => {
                  // micro(aBlock + ip·kcLen·mr·bytes, bPanel, cp + ip·mr·ldc + jp·nr·bytes, ldc, kcLen, first)
                  f.get(aBlock)
                    .get(ip)
                    .get(kcLen)
                    .op(Op.i32Mul)
                    .i32(mr * bytes)
                    .op(Op.i32Mul, Op.i32Add);
                  f.get(bPanel);
                  f.get(cp)
                    .get(ip)
                    .i32(mr)
                    .op(Op.i32Mul)
                    .get(ldc)
                    .op(Op.i32Mul, Op.i32Add)
                    .get(jp)
                    .i32(nr * bytes)
                    .op(Op.i32Mul, Op.i32Add);
                  f.get(ldc).get(kcLen).get(first).call(microIndex);
                },
              );
            },
          );
        },
        () => f.get(mc),
      );
    },
    () => f.get(kc),
  );
  return f;
}

/** Function indices a `tiles` function calls. */
export interface TileCallees {
  gemm: number;
  packA: number;
  packB: number;
}

/**
 * `tiles(aFrom, bFrom, aAt, bAt, cAt, ldc, m, n, k, aRowStride, aColStride, bRowStride,
 * bColStride, kc, mc, byColumns, lo, hi)`: one chunk of a threaded product, packing its own share
 * of the operand that is split and computing its tiles, so that packing runs on every thread too.
 * With `byColumns` 1, column panels [lo, hi): B's columns [lo · nr, min(n, hi · nr)) (element
 * (p, j) at byte bFrom + (p · bRowStride + j · bColStride) · bytes) are packed on their own (as
 * a B of hi − lo panels) at bAt + lo · nr · k · bytes, a region no other chunk touches, and
 * multiplied by A, already packed at aAt, into C's columns. With 0, row panels [lo, hi) of A likewise,
 * against B packed at bAt. C is row-major at cAt with `ldc` bytes per row and is added into.
 */
export function tilesFunction(
  name: string,
  { bytes, mr, nr }: GemmLayout,
  callees: TileCallees,
): FunctionBuilder {
  const f = new FunctionBuilder(name, new Array(18).fill(I32));
  const [aFrom, bFrom, aAt, bAt, cAt, ldc, m, n, k, aRowStride, aColStride] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
  ];
  const [bRowStride, bColStride, kc, mc, byColumns, lo, hi] = [11, 12, 13, 14, 15, 16, 17];
  const [first, count, packed] = [f.local(I32), f.local(I32), f.local(I32)];
  /** Sets `first` = lo · width and `count` = min(total, hi · width) − first. */
  const range = (width: number, total: number) => {
    f.get(lo).i32(width).op(Op.i32Mul).set(first);
    f.min(
      () => f.get(total),
      () => f.get(hi).i32(width).op(Op.i32Mul),
    );
    f.get(first).op(Op.i32Sub).set(count);
  };
  /** Pushes address + index · stride · bytes. */
  const offset = (address: number, index: number, stride: number) =>
    f.get(address).get(index).get(stride).op(Op.i32Mul).i32(bytes).op(Op.i32Mul, Op.i32Add);
  /** Pushes panels of `total` in `width`: ⌈total / width⌉. */
  const panels = (total: number, width: number) =>
    f
      .get(total)
      .i32(width - 1)
      .op(Op.i32Add)
      .i32(width)
      .op(0x6d); // i32.div_s
  /** The gemm's last eight arguments after the panel counts: the tile ranges, k, kc, mc, accumulate. */
  const tail = (rows: () => void, columns: () => void) => {
    f.i32(0);
    rows();
    f.i32(0);
    columns();
    f.get(k).get(kc).get(mc).i32(1).call(callees.gemm);
  };
  const span = () => f.get(hi).get(lo).op(Op.i32Sub);
  /**
   * Packs this chunk's panels of the split operand (`total` rows of `width`, row r at
   * from + r · rowStride · bytes) on their own at at + first · k · bytes, into `packed`.
   */
  const packOwn = (
    width: number,
    total: number,
    at: number,
    from: number,
    rowStride: number,
    depthStride: number,
    pack: number,
  ) => {
    range(width, total);
    offset(at, first, k).set(packed);
    offset(from, first, rowStride);
    f.get(count).get(k).get(rowStride).get(depthStride).get(kc).get(packed);
    span();
    f.i32(0).call(pack);
  };
  f.get(byColumns).ifElse(
    () => {
      packOwn(nr, n, bAt, bFrom, bColStride, bRowStride, callees.packB);
      f.get(aAt).get(packed);
      f.get(cAt).get(first).i32(bytes).op(Op.i32Mul, Op.i32Add);
      f.get(ldc);
      panels(m, mr);
      span();
      tail(
        () => panels(m, mr),
        () => span(),
      );
    },
    () => {
      packOwn(mr, m, aAt, aFrom, aRowStride, aColStride, callees.packA);
      f.get(packed).get(bAt);
      f.get(cAt).get(first).get(ldc).op(Op.i32Mul, Op.i32Add);
      f.get(ldc);
      span();
      panels(n, nr);
      tail(
        () => span(),
        () => panels(n, nr),
      );
    },
  );
  return f;
}
