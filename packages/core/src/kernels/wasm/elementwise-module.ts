/**
 * The WebAssembly elementwise machine: one generated function that runs a fused float32 kernel,
 * given as instructions in wasm memory, over a range of elements, a block of 256 at a time, each
 * instruction an f32x4 loop over the block's registers. One module serves every kernel (no
 * compilation per kernel), so the worker pool that instantiated it runs any of them.
 */

import { F64, FunctionBuilder, I32, Op, Simd, V128 } from "./assembler.js";
import { MathSimd, VectorMath } from "./math-module.js";

/** Elements per block: the length of a register. */
export const BLOCK = 256;
/** Bytes per register: a block and one vector of slack, which the gathers' last vector may write. */
export const REGISTER_BYTES = BLOCK * 4 + 16;
/** i32 words per instruction: the operation, then up to seven operands. */
export const INSTRUCTION_WORDS = 8;

/**
 * The instructions, by their code (the index here). `r…` operands are register numbers, the
 * others byte addresses or plain integers; element `e` of the range is lane `e − b` of block `b`.
 *
 * - `load r, at`: the float32 array at `at`, element e.
 * - `const r, bits`: every lane the float32 with these bits.
 * - `gather r, at, rows, scale, start, width, colStride`: rows gathered through the int32 table at
 *   `rows`: element e = row ⌊e / width⌋, column c, at element `start + rows[row] · scale + c ·
 *   colStride` of the float32 array at `at`.
 * - unary `op r, ra`; binary `op r, ra, rb`; comparisons give lanes of all ones (true) or zeros,
 *   `and`/`or` combine them bitwise, `andnot r, ra, rb` is a AND NOT b (a where b's lanes are
 *   zeros, else +0), `pmin`/`pmax` are b < a ? b : a and a < b ? b : a (one instruction each,
 *   unlike min and max), and `select r, rmask, ra, rb` is `mask ? a : b`.
 * - `store ra, at`: element e of the float32 array at `at` = a.
 * - `storeMask ra, at`: byte e of the bool array at `at` = 1 where a's lane is set, else 0 (a a
 *   mask, as comparisons give).
 * - `place ra, at, rows, scale, start, width, colStride` (`scatter`: += a): the inverse of
 *   `gather`, into distinct rows.
 * - `sum ra, at, k, count`: the block's sum of a, in double precision in a fixed order, to the
 *   float64 at `at + 8 · (blockIndex · count + k)`, so that sums never depend on how a range is split.
 */
export const INSTRUCTIONS = [
  "load",
  "const",
  "gather",
  "neg",
  "abs",
  "sqrt",
  "floor",
  "ceil",
  "trunc",
  "log",
  "log1p",
  "exp",
  "add",
  "sub",
  "mul",
  "div",
  "min",
  "max",
  "lt",
  "le",
  "gt",
  "ge",
  "eq",
  "ne",
  "and",
  "or",
  "andnot",
  "pmin",
  "pmax",
  "select",
  "store",
  "storeMask",
  "place",
  "scatter",
  "sum",
] as const;
export type Instruction = (typeof INSTRUCTIONS)[number];

const UNARY = {
  neg: 0xe1,
  abs: 0xe0,
  sqrt: 0xe3,
  floor: 0x68,
  ceil: 0x67,
  trunc: 0x69,
} satisfies Partial<Record<Instruction, number>>;
const BINARY = {
  add: Simd.f32x4Add,
  sub: MathSimd.f32x4Sub,
  mul: Simd.f32x4Mul,
  div: MathSimd.f32x4Div,
  min: MathSimd.f32x4Min,
  max: Simd.f32x4Max,
  lt: MathSimd.f32x4Lt,
  le: 0x45,
  gt: Simd.f32x4Gt,
  ge: MathSimd.f32x4Ge,
  eq: Simd.f32x4Eq,
  ne: Simd.f32x4Ne,
  and: Simd.v128And,
  or: Simd.v128Or,
  andnot: 0x4f,
  pmin: 0xea,
  pmax: 0xeb,
} satisfies Partial<Record<Instruction, number>>;

// Scalar opcodes only this function uses.
const I32_DIV_U = 0x6e;
const BR_TABLE = 0x0e;
const F64X2_PROMOTE_LOW = 0x5f;
const F64X2_EXTRACT_LANE = 0x21;
const I32_SHR_U = 0x76;
const I32_STORE8 = 0x3a;
const I8X16_SPLAT = 0x0f;
const I16X8_NARROW_I32X4_S = 0x85;
const I8X16_NARROW_I16X8_S = 0x65;
/** The shuffle that moves lanes 2, 3 of an f32x4 to lanes 0, 1. */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];

/**
 * A kernel's lane-wise instructions compiled into one (code `INSTRUCTIONS.length`, no operands):
 * for each vector of the block, its values computed in locals from the registers of `inputs`, and
 * those of `outputs` written to their registers for the instructions after it. Values are numbers
 * in single assignment; `lines` come in an order where each value is defined before it is read.
 */
export interface FusedInstruction {
  readonly lines: readonly {
    readonly code: Instruction;
    readonly defines: number;
    readonly reads: readonly number[];
    /** The float32 bits of a `const`. */
    readonly bits?: number;
    /** For a `const` whose bits vary from call to call: the word of the instruction holding them (1–7). */
    readonly word?: number;
  }[];
  /** Register of each value read from the block's registers (loaded or gathered before). */
  readonly inputs: ReadonlyMap<number, number>;
  /** Register of each value the instructions after this one read. */
  readonly outputs: ReadonlyMap<number, number>;
}

/** Instructions costly enough that a selection whose side needs one branches to skip it. */
const HEAVY = new Set<Instruction>(["log", "log1p", "exp"]);
/** `i32x4.all_true` and `v128.any_true`: whether every lane, or any lane, of a mask is set. */
const ALL_TRUE = 0xa3;
const ANY_TRUE = 0x53;

/**
 * One vector (byte offset `i` in every register) of a fused instruction. A selection with a
 * costly side (a logarithm or exponential on it) branches on its mask: where the vector's four
 * lanes all choose one side, only that side is computed (a focal loss's background anchors need
 * log(1 − p), never log p); otherwise both are, as a `bitselect` of them. Which lanes take which
 * side is what the mask says either way, so the values are the same bits.
 */
function fusedVector(
  f: FunctionBuilder,
  math: VectorMath,
  fused: FusedInstruction,
  scratch: number,
  i: number,
  words: readonly number[],
): void {
  const at = (register: number) => ({ align: 4, offset: register * REGISTER_BYTES });
  const lineOf = new Map(fused.lines.map((line) => [line.defines, line]));
  const heavyMemo = new Map<number, boolean>();
  const heavy = (value: number): boolean => {
    const known = heavyMemo.get(value);
    if (known !== undefined) return known;
    const line = lineOf.get(value);
    const result = line !== undefined && (HEAVY.has(line.code) || line.reads.some(heavy));
    heavyMemo.set(value, result);
    return result;
  };
  const branches = (line: FusedInstruction["lines"][number]) =>
    line.code === "select" && (heavy(line.reads[1]) || heavy(line.reads[2]));
  // Values needed whatever a branching selection chooses: computed up front, once.
  const unconditional = new Set<number>();
  const need = (value: number): void => {
    if (unconditional.has(value)) return;
    unconditional.add(value);
    const line = lineOf.get(value);
    if (line !== undefined)
      for (const read of branches(line) ? [line.reads[0]] : line.reads) need(read);
  };
  for (const value of fused.outputs.keys()) need(value);

  // Locals holding computed values, innermost branch last; a branch's locals end with it.
  const scopes: Map<number, number>[] = [new Map()];
  const lookup = (value: number): number | undefined => {
    for (let s = scopes.length - 1; s >= 0; s--) {
      const local = scopes[s].get(value);
      if (local !== undefined) return local;
    }
    return undefined;
  };
  const inBranch = (body: () => void) => {
    scopes.push(new Map());
    body();
    scopes.pop();
  };
  const compute = (value: number): number => {
    const have = lookup(value);
    if (have !== undefined) return have;
    const local = f.local(V128);
    const line = lineOf.get(value);
    if (line === undefined) {
      const register = fused.inputs.get(value);
      if (register === undefined)
        throw new Error(`fusedVector: value ${value} is read before it is defined`);
      f.get(scratch).get(i).op(Op.i32Add).simd(Simd.load, at(register)).set(local);
    } else if (branches(line)) {
      const [mask, a, b] = line.reads;
      const m = compute(mask);
      const side = (x: number) => inBranch(() => f.get(compute(x)).set(local));
      f.get(m).simd(ALL_TRUE);
      f.ifElse(
        () => side(a),
        () => {
          f.get(m).simd(ANY_TRUE);
          f.ifElse(
            () =>
              inBranch(() => {
                const [la, lb] = [compute(a), compute(b)];
                f.get(la).get(lb).get(m).simd(Simd.v128Bitselect).set(local);
              }),
            () => side(b),
          );
        },
      );
    } else {
      const { code, reads } = line;
      const args = code === "select" ? [reads[1], reads[2], reads[0]] : reads;
      const locals = args.map(compute);
      if (code === "const" && line.word !== undefined)
        f.get(words[line.word]).simd(Simd.i32x4Splat);
      else if (code === "const") math.constantBits(line.bits ?? 0);
      else {
        for (const l of locals) f.get(l);
        if (code === "select") f.simd(Simd.v128Bitselect);
        else if (code === "log" || code === "log1p" || code === "exp") math[code]();
        else if (code in UNARY) f.simd(UNARY[code as keyof typeof UNARY]);
        else if (code in BINARY) f.simd(BINARY[code as keyof typeof BINARY]);
        else throw new Error(`fusedVector: ${code} is not a lane-wise instruction`);
      }
      f.set(local);
    }
    scopes[scopes.length - 1].set(value, local);
    return local;
  };
  for (const line of fused.lines) if (unconditional.has(line.defines)) compute(line.defines);
  for (const [value, register] of fused.outputs) {
    if (fused.inputs.has(value)) continue;
    f.get(scratch).get(i).op(Op.i32Add);
    f.get(compute(value));
    f.simd(Simd.store, at(register));
  }
}

/** `switch (selector) { case i: bodies[i](); }` as nested blocks and one br_table. */
function dispatch(f: FunctionBuilder, selector: () => void, bodies: readonly (() => void)[]): void {
  const n = bodies.length;
  f.op(Op.block, 0x40);
  for (let i = 0; i < n; i++) f.op(Op.block, 0x40);
  selector();
  // Case i leaves the i-th innermost block, where its body starts; any other value leaves all.
  f.op(BR_TABLE, n, ...bodies.map((_, i) => i), n, Op.end);
  bodies.forEach((body, i) => {
    body();
    f.op(Op.br, n - 1 - i, Op.end);
  });
}

/**
 * `elementwise32(program, count, scratch, from, to)`: runs the `count` instructions at byte address
 * `program` over elements [from, to) (`from` a multiple of `BLOCK`), with registers at `scratch`
 * (`REGISTER_BYTES` each). Loads and stores move whole vectors: the arrays they read and write
 * need 16 bytes of slack after their last element.
 */
export function elementwiseFunction(
  name: string,
  relaxed: boolean,
  fused?: FusedInstruction,
): FunctionBuilder {
  const f = new FunctionBuilder(name, [I32, I32, I32, I32, I32]);
  const [program, count, scratch, from, to] = [0, 1, 2, 3, 4];
  const [b, len, bytes, pc, end, i] = Array.from({ length: 6 }, () => f.local(I32));
  const w = Array.from({ length: INSTRUCTION_WORDS }, () => f.local(I32)); // w[0]: the code
  const [pd, pa, pb, pm] = Array.from({ length: 4 }, () => f.local(I32));
  const [row, column, j, segment, at, k] = Array.from({ length: 6 }, () => f.local(I32));
  const [low, high] = [f.local(V128), f.local(V128)];
  const tail = f.local(F64);
  const math = new VectorMath(f, relaxed);

  const plus = (x: number, y: number) => f.get(x).get(y).op(Op.i32Add);
  const register = (word: number, into: number) =>
    f.get(scratch).get(word).i32(REGISTER_BYTES).op(Op.i32Mul, Op.i32Add).set(into);
  const loadVector = (base: number) => plus(base, i).simd(Simd.load, { align: 4, offset: 0 });
  /** For every vector of the block: `body()` with `i` its byte offset. */
  const vectors = (body: () => void) =>
    f.forLoop(
      i,
      () => f.i32(0),
      () => f.get(bytes),
      body,
      16,
    );
  const unary = (emit: () => void) => () =>
    vectors(() => {
      plus(pd, i);
      loadVector(pa);
      emit();
      f.simd(Simd.store, { align: 4, offset: 0 });
    });

  /**
   * The rows of a gather or a place: for each run of one row's columns within the block, `run`
   * with `at` the byte address of its first element in the array and `j` its first lane.
   */
  const rowRuns = (run: () => void) => {
    // row = ⌊b / width⌋, column = b − row · width
    f.get(b).get(w[6]).op(I32_DIV_U).set(row);
    f.get(b).get(row).get(w[6]).op(Op.i32Mul, Op.i32Sub).set(column);
    f.i32(0).set(j);
    f.op(Op.block, 0x40, Op.loop, 0x40);
    f.get(j).get(len).op(Op.i32GeS, Op.brIf, 1);
    f.min(
      () => f.get(w[6]).get(column).op(Op.i32Sub),
      () => f.get(len).get(j).op(Op.i32Sub),
    );
    f.set(segment);
    // at = data + 4 · (start + rows[row] · scale + column · colStride)
    f.get(w[2]);
    f.get(w[5]);
    f.get(w[3]).get(row).i32(4).op(Op.i32Mul, Op.i32Add).memory(Op.i32Load, 2, 0);
    f.get(w[4]).op(Op.i32Mul, Op.i32Add);
    f.get(column).get(w[7]).op(Op.i32Mul, Op.i32Add);
    f.i32(4).op(Op.i32Mul, Op.i32Add).set(at);
    run();
    f.increment(j, () => f.get(segment));
    f.increment(row, 1);
    f.i32(0).set(column);
    f.op(Op.br, 0, Op.end, Op.end);
  };
  /** Moves `segment` elements between `at` (in memory, `w[7]` apart) and lane `j` of register `pd`. */
  const moveRun = (toRegister: boolean, combine: boolean) => {
    const lane = () => f.get(pd).get(j).get(k).op(Op.i32Add).i32(4).op(Op.i32Mul, Op.i32Add);
    const element = () => f.get(at).get(k).get(w[7]).op(Op.i32Mul).i32(4).op(Op.i32Mul, Op.i32Add);
    // Contiguous rows move whole vectors, the last partial one lane by lane (a place must not
    // touch the next row, which another thread may be writing).
    const whole = () => {
      f.get(w[7]).i32(1).op(Op.i32Eq);
      f.ifElse(() =>
        f.forLoop(
          k,
          () => f.i32(0),
          () => f.get(segment).i32(-4).op(Op.i32And),
          () => {
            if (toRegister) {
              lane();
              element();
              f.simd(Simd.load, { align: 2, offset: 0 });
            } else {
              element();
              if (combine) {
                element();
                f.simd(Simd.load, { align: 2, offset: 0 });
              }
              lane();
              f.simd(Simd.load, { align: 2, offset: 0 });
              if (combine) f.simd(Simd.f32x4Add);
            }
            f.simd(Simd.store, { align: 2, offset: 0 });
          },
          4,
        ),
      );
    };
    // A broadcast row (columns 0 apart) into registers: its one element splatted into whole vectors.
    const splatted = () => {
      f.get(w[7]).op(Op.i32Eqz);
      f.ifElse(() =>
        f.forLoop(
          k,
          () => f.i32(0),
          () => f.get(segment).i32(-4).op(Op.i32And),
          () => {
            lane();
            f.get(at).simd(Simd.load32Splat, { align: 2, offset: 0 });
            f.simd(Simd.store, { align: 2, offset: 0 });
          },
          4,
        ),
      );
    };
    f.i32(0).set(k);
    whole();
    if (toRegister) splatted();
    f.forLoop(
      k,
      () => f.get(k),
      () => f.get(segment),
      () => {
        if (toRegister) {
          lane();
          element();
          f.memory(Op.f32Load, 2, 0);
        } else {
          element();
          if (combine) {
            element();
            f.memory(Op.f32Load, 2, 0);
          }
          lane();
          f.memory(Op.f32Load, 2, 0);
          if (combine) f.op(Op.f32Add);
        }
        f.memory(Op.f32Store, 2, 0);
      },
    );
  };

  const bodies: Record<Instruction, () => void> = {
    load: () =>
      vectors(() => {
        plus(pd, i);
        f.get(w[2]).get(b).i32(4).op(Op.i32Mul, Op.i32Add).get(i).op(Op.i32Add);
        f.simd(Simd.load, { align: 2, offset: 0 }).simd(Simd.store, { align: 4, offset: 0 });
      }),
    const: () =>
      vectors(() => {
        plus(pd, i);
        f.get(w[2]).simd(Simd.i32x4Splat).simd(Simd.store, { align: 4, offset: 0 });
      }),
    gather: () => rowRuns(() => moveRun(true, false)),
    neg: unary(() => f.simd(UNARY.neg)),
    abs: unary(() => f.simd(UNARY.abs)),
    sqrt: unary(() => f.simd(UNARY.sqrt)),
    floor: unary(() => f.simd(UNARY.floor)),
    ceil: unary(() => f.simd(UNARY.ceil)),
    trunc: unary(() => f.simd(UNARY.trunc)),
    log: unary(() => math.log()),
    log1p: unary(() => math.log1p()),
    exp: unary(() => math.exp()),
    ...(Object.fromEntries(
      Object.entries(BINARY).map(([op, code]) => [
        op,
        () => {
          vectors(() => {
            plus(pd, i);
            loadVector(pa);
            loadVector(pb);
            f.simd(code);
            f.simd(Simd.store, { align: 4, offset: 0 });
          });
        },
      ]),
    ) as Record<keyof typeof BINARY, () => void>),
    select: () =>
      vectors(() => {
        plus(pd, i);
        loadVector(pb);
        loadVector(pm);
        loadVector(pa);
        f.simd(Simd.v128Bitselect).simd(Simd.store, { align: 4, offset: 0 });
      }),
    // Whole vectors, then the last partial one lane by lane: an array written in place (a
    // tensor's data in the heap) has no slack after it.
    store: () => {
      f.forLoop(
        i,
        () => f.i32(0),
        () => f.get(len).i32(-4).op(Op.i32And).i32(4).op(Op.i32Mul),
        () => {
          f.get(w[2]).get(b).i32(4).op(Op.i32Mul, Op.i32Add).get(i).op(Op.i32Add);
          loadVector(pd);
          f.simd(Simd.store, { align: 2, offset: 0 });
        },
        16,
      );
      f.forLoop(
        k,
        () => f.get(len).i32(-4).op(Op.i32And),
        () => f.get(len),
        () => {
          f.get(w[2]).get(b).get(k).op(Op.i32Add).i32(4).op(Op.i32Mul, Op.i32Add);
          f.get(pd).get(k).i32(4).op(Op.i32Mul, Op.i32Add).memory(Op.f32Load, 2, 0);
          f.memory(Op.f32Store, 2, 0);
        },
      );
    },
    // Sixteen lanes at a time: their masks narrowed to bytes (all ones stays all ones, zero
    // zero, by signed saturation) and AND 1; then the last few lane by lane.
    storeMask: () => {
      f.forLoop(
        i,
        () => f.i32(0),
        () => f.get(len).i32(-16).op(Op.i32And).i32(4).op(Op.i32Mul),
        () => {
          f.get(w[2]).get(b).op(Op.i32Add).get(i).i32(2).op(I32_SHR_U, Op.i32Add);
          for (let v = 0; v < 4; v++) {
            plus(pd, i).simd(Simd.load, { align: 4, offset: 16 * v });
            if (v % 2 === 1) f.simd(I16X8_NARROW_I32X4_S);
          }
          f.simd(I8X16_NARROW_I16X8_S);
          f.i32(1).simd(I8X16_SPLAT).simd(Simd.v128And);
          f.simd(Simd.store, { align: 0, offset: 0 });
        },
        64,
      );
      f.forLoop(
        k,
        () => f.get(len).i32(-16).op(Op.i32And),
        () => f.get(len),
        () => {
          f.get(w[2]).get(b).get(k).op(Op.i32Add, Op.i32Add);
          f.get(pd).get(k).i32(4).op(Op.i32Mul, Op.i32Add).memory(Op.i32Load, 2, 0);
          f.i32(1).op(Op.i32And).memory(I32_STORE8, 0, 0);
        },
      );
    },
    place: () => rowRuns(() => moveRun(false, false)),
    scatter: () => rowRuns(() => moveRun(false, true)),
    sum: () => {
      // Whole vectors into two f64x2 accumulators (lanes 0, 1 and lanes 2, 3), the rest one by one.
      f.zeroVector().set(low).zeroVector().set(high).zero(8).set(tail);
      f.forLoop(
        i,
        () => f.i32(0),
        () => f.get(len).i32(-4).op(Op.i32And).i32(4).op(Op.i32Mul),
        () => {
          f.get(low);
          loadVector(pd);
          f.simd(F64X2_PROMOTE_LOW).simd(Simd.f64x2Add).set(low);
          f.get(high);
          loadVector(pd);
          loadVector(pd);
          f.simd(Simd.i8x16Shuffle).op(...HIGH_HALF);
          f.simd(F64X2_PROMOTE_LOW).simd(Simd.f64x2Add).set(high);
        },
        16,
      );
      f.forLoop(
        k,
        () => f.get(len).i32(-4).op(Op.i32And),
        () => f.get(len),
        () => {
          f.get(tail);
          f.get(pd).get(k).i32(4).op(Op.i32Mul, Op.i32Add).memory(Op.f32Load, 2, 0);
          f.op(Op.f64PromoteF32, Op.f64Add).set(tail);
        },
      );
      // at + 8 · (b / BLOCK · count + k) = ((lane 0 + lane 1) of low + (…) of high) + tail
      f.get(w[2]);
      f.get(b).i32(BLOCK).op(I32_DIV_U).get(w[4]).op(Op.i32Mul).get(w[3]).op(Op.i32Add);
      f.i32(8).op(Op.i32Mul, Op.i32Add);
      for (const v of [low, high]) {
        f.get(v).simd(F64X2_EXTRACT_LANE).op(0);
        f.get(v).simd(F64X2_EXTRACT_LANE).op(1);
        f.op(Op.f64Add);
      }
      f.op(Op.f64Add).get(tail).op(Op.f64Add).memory(Op.f64Store, 3, 0);
    },
  };

  f.forLoop(
    b,
    () => f.get(from),
    () => f.get(to),
    () => {
      f.min(
        () => f.i32(BLOCK),
        () => f.get(to).get(b).op(Op.i32Sub),
      );
      f.set(len);
      f.get(len).i32(3).op(Op.i32Add).i32(-4).op(Op.i32And).i32(4).op(Op.i32Mul).set(bytes);
      f.get(program)
        .get(count)
        .i32(INSTRUCTION_WORDS * 4)
        .op(Op.i32Mul, Op.i32Add)
        .set(end);
      f.forLoop(
        pc,
        () => f.get(program),
        () => f.get(end),
        () => {
          w.forEach((word, index) => {
            f.get(pc)
              .memory(Op.i32Load, 2, index * 4)
              .set(word);
          });
          register(w[1], pd);
          register(w[2], pa);
          register(w[3], pb);
          register(w[4], pm);
          dispatch(f, () => f.get(w[0]), [
            ...INSTRUCTIONS.map((name) => bodies[name]),
            ...(fused === undefined
              ? []
              : [() => vectors(() => fusedVector(f, math, fused, scratch, i, w))]),
          ]);
        },
        INSTRUCTION_WORDS * 4,
      );
    },
    BLOCK,
  );
  return f;
}
