/** A small WebAssembly assembler: encodes a module of functions over one imported shared memory, so kernels are generated at run time with no build step. */

/** Value types, by their binary encoding. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValueType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** One-byte opcodes used by the kernels. */
export const Op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  call: 0x10,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  f64Load: 0x2b,
  i32Store: 0x36,
  f32Store: 0x38,
  f64Store: 0x39,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32LtS: 0x48,
  i32GtS: 0x4a,
  i32LeS: 0x4c,
  i32GeS: 0x4e,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Shl: 0x74,
  f32Add: 0x92,
  f64Add: 0xa0,
  f32DemoteF64: 0xb6,
  f64PromoteF32: 0xbb,
} as const;

/** SIMD (0xfd-prefixed) opcodes; the relaxed ones (≥ 0x100) need the relaxed-SIMD proposal. */
export const Simd = {
  load: 0x00,
  load32Splat: 0x09,
  load64Splat: 0x0a,
  store: 0x0b,
  v128Const: 0x0c,
  i8x16Shuffle: 0x0d,
  i32x4Splat: 0x11,
  f32x4Splat: 0x13,
  f64x2Splat: 0x14,
  f32x4Eq: 0x41,
  f32x4Ne: 0x42,
  f32x4Gt: 0x44,
  v128And: 0x4e,
  v128Or: 0x50,
  v128Bitselect: 0x52,
  i32x4Add: 0xae,
  f32x4Add: 0xe4,
  f32x4Mul: 0xe6,
  f32x4Max: 0xe9,
  f64x2Add: 0xf0,
  f64x2Mul: 0xf2,
  f64x2Max: 0xf5,
  f32x4RelaxedMadd: 0x105,
  f64x2RelaxedMadd: 0x107,
} as const;

function unsignedLeb(value: number, out: number[]): void {
  let v = value >>> 0;
  do {
    const byte = v & 0x7f;
    v >>>= 7;
    out.push(v === 0 ? byte : byte | 0x80);
  } while (v !== 0);
}

function signedLeb(value: number, out: number[]): void {
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return;
  }
}

function utf8(text: string, out: number[]): void {
  const bytes = new TextEncoder().encode(text);
  unsignedLeb(bytes.length, out);
  out.push(...bytes);
}

/** The body of one function: locals and an instruction stream, with helpers for the kernels' idioms. */
export class FunctionBuilder {
  readonly code: number[] = [];
  private readonly localTypes: ValueType[] = [];

  constructor(
    readonly name: string,
    readonly params: readonly ValueType[],
    readonly results: readonly ValueType[] = [],
  ) {}

  /** A fresh local of `type`; returns its index. */
  local(type: ValueType): number {
    this.localTypes.push(type);
    return this.params.length + this.localTypes.length - 1;
  }

  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  get(index: number): this {
    this.code.push(Op.localGet);
    unsignedLeb(index, this.code);
    return this;
  }

  set(index: number): this {
    this.code.push(Op.localSet);
    unsignedLeb(index, this.code);
    return this;
  }

  tee(index: number): this {
    this.code.push(Op.localTee);
    unsignedLeb(index, this.code);
    return this;
  }

  i32(value: number): this {
    this.code.push(Op.i32Const);
    signedLeb(value, this.code);
    return this;
  }

  /** A SIMD instruction, with a memory argument (log2 alignment, byte offset) when it accesses memory. */
  simd(opcode: number, memory?: { align: number; offset: number }): this {
    this.code.push(0xfd);
    unsignedLeb(opcode, this.code);
    if (memory !== undefined) {
      unsignedLeb(memory.align, this.code);
      unsignedLeb(memory.offset, this.code);
    }
    return this;
  }

  /** A scalar load or store with its memory argument. */
  memory(opcode: number, align: number, offset: number): this {
    this.code.push(opcode);
    unsignedLeb(align, this.code);
    unsignedLeb(offset, this.code);
    return this;
  }

  /** Pushes base + (the product of the locals `factors`) · bytes: an element's byte address. */
  address(base: number, factors: readonly number[], bytes: number): this {
    this.get(base);
    factors.forEach((factor, i) => {
      this.get(factor);
      if (i > 0) this.op(Op.i32Mul);
    });
    return this.i32(bytes).op(Op.i32Mul, Op.i32Add);
  }

  /** memory.copy (bulk memory) of the (destination, source, byte count) already on the stack. */
  memoryCopy(): this {
    return this.op(0xfc, 0x0a, 0x00, 0x00);
  }

  /** memory.fill (bulk memory) of the (destination, byte value, byte count) already on the stack. */
  memoryFill(): this {
    return this.op(0xfc, 0x0b, 0x00);
  }

  call(functionIndex: number): this {
    this.code.push(Op.call);
    unsignedLeb(functionIndex, this.code);
    return this;
  }

  /** The smaller (signed) of two i32 values, each pushed by its callback (called twice). */
  min(x: () => void, y: () => void): this {
    x();
    y();
    x();
    y();
    return this.op(Op.i32LtS, Op.select);
  }

  /** A floating-point zero of `bytes` (4: f32.const 0, 8: f64.const 0). */
  zero(bytes: 4 | 8): this {
    return bytes === 4 ? this.op(0x43, 0, 0, 0, 0) : this.op(0x44, 0, 0, 0, 0, 0, 0, 0, 0);
  }

  /** v128.const 0. */
  zeroVector(): this {
    return this.simd(0x0c).op(...new Array<number>(16).fill(0));
  }

  /** local[index] += step (i32). */
  increment(index: number, step: number | (() => void)): this {
    this.get(index);
    if (typeof step === "number") this.i32(step);
    else step();
    return this.op(Op.i32Add).set(index);
  }

  /**
   * `for (counter = start; counter < end; counter += step) body()`, with start and end pushed by the
   * given callbacks (end re-evaluated on each test). The body never runs when start >= end.
   */
  forLoop(
    counter: number,
    start: () => void,
    end: () => void,
    body: () => void,
    step: number | (() => void) = 1,
  ): this {
    start();
    this.set(counter);
    this.op(Op.block, 0x40);
    this.get(counter);
    end();
    this.op(Op.i32GeS, Op.brIf, 0);
    this.op(Op.loop, 0x40);
    body();
    this.increment(counter, step);
    this.get(counter);
    end();
    this.op(Op.i32LtS, Op.brIf, 0, Op.end, Op.end);
    return this;
  }

  /** `if (condition) then() else otherwise()`, the condition already on the stack. */
  ifElse(then: () => void, otherwise?: () => void): this {
    this.op(Op.if, 0x40);
    then();
    if (otherwise !== undefined) {
      this.op(Op.else);
      otherwise();
    }
    return this.op(Op.end);
  }

  /** The encoded body: local declarations, code, end. */
  encode(): number[] {
    const body: number[] = [];
    const groups: [number, ValueType][] = [];
    for (const type of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === type) last[0]++;
      else groups.push([1, type]);
    }
    unsignedLeb(groups.length, body);
    for (const [count, type] of groups) {
      unsignedLeb(count, body);
      body.push(type);
    }
    body.push(...this.code, Op.end);
    const out: number[] = [];
    unsignedLeb(body.length, out);
    out.push(...body);
    return out;
  }
}

function section(id: number, content: number[], out: number[]): void {
  out.push(id);
  unsignedLeb(content.length, out);
  out.push(...content);
}

/**
 * A module importing `env.memory` (a shared memory of `initialPages`..`maximumPages` 64 KiB pages)
 * and exporting every function under its name. Functions call each other by their index in
 * `functions`.
 *
 * @example
 * const f = new FunctionBuilder("answer", [], [I32]);
 * f.i32(42);
 * const bytes = assemble([f], { initialPages: 1, maximumPages: 1 });
 * WebAssembly.validate(bytes); // true
 */
export function assemble(
  functions: readonly FunctionBuilder[],
  memory: { initialPages: number; maximumPages: number },
): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [];
  unsignedLeb(functions.length, types);
  for (const f of functions) {
    types.push(0x60);
    unsignedLeb(f.params.length, types);
    types.push(...f.params);
    unsignedLeb(f.results.length, types);
    types.push(...f.results);
  }
  section(1, types, out);
  const imports: number[] = [1];
  utf8("env", imports);
  utf8("memory", imports);
  // Kind 2 (memory), limits flag 3: a maximum is given and the memory is shared.
  imports.push(0x02, 0x03);
  unsignedLeb(memory.initialPages, imports);
  unsignedLeb(memory.maximumPages, imports);
  section(2, imports, out);
  const declarations: number[] = [];
  unsignedLeb(functions.length, declarations);
  functions.forEach((_, i) => {
    unsignedLeb(i, declarations);
  });
  section(3, declarations, out);
  const exports: number[] = [];
  unsignedLeb(functions.length, exports);
  functions.forEach((f, i) => {
    utf8(f.name, exports);
    exports.push(0x00);
    unsignedLeb(i, exports);
  });
  section(7, exports, out);
  const code: number[] = [];
  unsignedLeb(functions.length, code);
  for (const f of functions) code.push(...f.encode());
  section(10, code, out);
  return new Uint8Array(out);
}
