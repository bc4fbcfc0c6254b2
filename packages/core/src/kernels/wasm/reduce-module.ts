/** The WebAssembly row sums: each row of a float array summed in double precision from its first element to its last (the JavaScript loop's order, so its bits), four rows interleaved. */

import { F64, FunctionBuilder, I32, Op } from "./assembler.js";

/**
 * `sumRows(x, out, length, lo, hi)` (byte addresses x, out; floats of `bytes`): out[o] = the sum
 * of row o of x (`length` elements from x + o · length · bytes) for rows [lo, hi), accumulated in
 * double precision from the row's first element to its last and then rounded to the output's
 * precision: the bits of the JavaScript loop. Four rows at a time, so that four additions are in
 * flight instead of one chain; rows are independent, so ranges of them are chunks for threads.
 */
export function sumRowsFunction(name: string, bytes: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(name, [I32, I32, I32, I32, I32]);
  const [x, out, length, lo, hi] = [0, 1, 2, 3, 4];
  const [o, r, rowBytes] = [f.local(I32), f.local(I32), f.local(I32)];
  const rows = Array.from({ length: 4 }, () => f.local(I32));
  const sums = Array.from({ length: 4 }, () => f.local(F64));
  const align = bytes === 4 ? 2 : 3;
  const load = bytes === 4 ? Op.f32Load : Op.f64Load;
  const store = bytes === 4 ? Op.f32Store : Op.f64Store;
  /** Adds the element at `row` to `sum`, and moves `row` on by one element. */
  const accumulate = (sum: number, row: number) => {
    f.get(sum).get(row).memory(load, align, 0);
    if (bytes === 4) f.op(Op.f64PromoteF32);
    f.op(Op.f64Add).set(sum);
    f.increment(row, bytes);
  };
  /** out[o + k] = sum, in the output's precision. */
  const write = (k: number, sum: number) => {
    f.get(out).get(o).i32(k).op(Op.i32Add).i32(bytes).op(Op.i32Mul, Op.i32Add);
    f.get(sum);
    if (bytes === 4) f.op(Op.f32DemoteF64);
    f.memory(store, align, 0);
  };
  f.get(length).i32(bytes).op(Op.i32Mul).set(rowBytes);
  f.get(lo).set(o);
  // Four rows at a time while four are left.
  f.op(Op.block, 0x40, Op.loop, 0x40);
  f.get(o).i32(4).op(Op.i32Add).get(hi).op(Op.i32GtS, Op.brIf, 1);
  f.get(x).get(o).get(rowBytes).op(Op.i32Mul, Op.i32Add).set(rows[0]);
  for (let k = 1; k < 4; k++)
    f.get(rows[k - 1])
      .get(rowBytes)
      .op(Op.i32Add)
      .set(rows[k]);
  for (const sum of sums) f.zero(8).set(sum);
  f.forLoop(
    r,
    () => f.i32(0),
    () => f.get(length),
    () => {
      for (let k = 0; k < 4; k++) accumulate(sums[k], rows[k]);
    },
  );
  for (let k = 0; k < 4; k++) write(k, sums[k]);
  f.increment(o, 4);
  f.op(Op.br, 0, Op.end, Op.end);
  // The last few one at a time.
  f.op(Op.block, 0x40, Op.loop, 0x40);
  f.get(o).get(hi).op(Op.i32GeS, Op.brIf, 1);
  f.get(x).get(o).get(rowBytes).op(Op.i32Mul, Op.i32Add).set(rows[0]);
  f.zero(8).set(sums[0]);
  f.forLoop(
    r,
    () => f.i32(0),
    () => f.get(length),
    () => accumulate(sums[0], rows[0]),
  );
  write(0, sums[0]);
  f.increment(o, 1);
  f.op(Op.br, 0, Op.end, Op.end);
  return f;
}
