/** Vectorised float32 transcendentals for WebAssembly SIMD (`log`, `log1p`, `exp` over f32x4), emitted inline into generated functions: Cephes-style range reduction and polynomials, within 2 ulp of the correctly rounded result over the whole float32 range, with IEEE special values. */

import { type FunctionBuilder, Op, Simd, V128 } from "./assembler.js";

/** SIMD opcodes the assembler's table lacks: these functions' own, and the elementwise kernels' arithmetic. */
export const MathSimd = {
  f32x4Lt: 0x43,
  f32x4Ge: 0x46,
  f32x4Nearest: 0x6a,
  i32x4Shl: 0xab,
  i32x4ShrS: 0xac,
  i32x4Sub: 0xb1,
  f32x4Sub: 0xe5,
  f32x4Div: 0xe7,
  f32x4Min: 0xe8,
  i32x4TruncSatF32x4S: 0xf8,
  f32x4ConvertI32x4S: 0xfa,
  i32x4LtU: 0x3a,
  i32x4AllTrue: 0xa3,
} as const;

/** The bits of the quiet NaN the functions return for arguments outside their domain. */
const QUIET_NAN = 0x7fc00000;

/** The float32 bit pattern of `value` (rounded to float32). */
function float32Bits(value: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value, true);
  return view.getInt32(0, true);
}

/** ln 2 split for range reduction (Cephes): `LN2_HI` has 9 significant bits, so `k · LN2_HI` is exact for |k| < 2^15. */
const LN2_HI = 0.693359375;
const LN2_LO = -2.1219444e-4;

/** Cephes `logf`: log(1 + f) ≈ f − f²/2 + f³ · P(f) for f in [√½ − 1, √2 − 1], highest power first. */
const LOG_POLYNOMIAL = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
];

/** Cephes `expf`: e^r ≈ 1 + r + r² · Q(r) for |r| ≤ ln 2 / 2, highest power first. */
const EXP_POLYNOMIAL = [
  1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
  5.0000001201e-1,
];

/**
 * Emits vectorised float32 functions into one generated function. Each takes its f32x4 argument
 * from the stack and leaves its result there, using scratch locals of the function (allocated once
 * per `VectorMath`, so a function may use many calls). With `relaxed`, polynomials are evaluated
 * with `f32x4.relaxed_madd` (fused where the CPU has it); the error bound holds either way.
 *
 * @example
 * const f = new FunctionBuilder("logs", [I32]);
 * const math = new VectorMath(f, false);
 * f.get(0).simd(Simd.load, { align: 4, offset: 0 });
 * math.log();
 * f.set(math.scratch()); // or store it, combine it, …
 */
export class VectorMath {
  private readonly locals: number[] = [];
  private used = 0;

  constructor(
    private readonly f: FunctionBuilder,
    private readonly relaxed: boolean,
  ) {}

  /** A scratch v128 local, reused by later calls of this object once the current one has returned. */
  scratch(): number {
    if (this.used === this.locals.length) this.locals.push(this.f.local(V128));
    return this.locals[this.used++];
  }

  /** Runs `emit` with fresh scratch locals, released when it returns. */
  private withLocals(count: number, emit: (...locals: number[]) => void): void {
    const first = this.used;
    const locals = Array.from({ length: count }, () => this.scratch());
    emit(...locals);
    this.used = first;
  }

  /** Pushes an f32x4 of four copies of `value` (rounded to float32). */
  constant(value: number): this {
    return this.constantBits(float32Bits(value));
  }

  /** Pushes an i32x4 (or the float lanes with these bits) of four copies of `bits`. */
  constantBits(bits: number): this {
    const bytes: number[] = [];
    for (let lane = 0; lane < 4; lane++) {
      for (let b = 0; b < 4; b++) bytes.push((bits >>> (8 * b)) & 0xff);
    }
    this.f.simd(Simd.v128Const).op(...bytes);
    return this;
  }

  /** a · b + c for a, b, c pushed in that order (fused with relaxed SIMD). */
  private madd(): void {
    if (this.relaxed) this.f.simd(Simd.f32x4RelaxedMadd);
    else {
      // The stack is a, b, c: multiply needs a, b on top, so c goes through a local.
      this.withLocals(1, (c) => {
        this.f.set(c).simd(Simd.f32x4Mul).get(c).simd(Simd.f32x4Add);
      });
    }
  }

  /**
   * Σ coefficients[i] · x^(n−1−i), x in a local, by Estrin's scheme: the low half plus x^h times
   * the high half, each half the same way, so that the chain of dependent multiply-adds is
   * log2(n) long instead of n (Horner's), and the vector units work on the halves side by side.
   */
  private polynomial(x: number, coefficients: readonly number[]): void {
    const f = this.f;
    const lowestFirst = [...coefficients].reverse();
    this.withLocals(3, (...squares) => {
      // powers[j] holds x^(2^j): x itself, then x², x⁴, x⁸ as far as the degree needs.
      const powers = [x];
      for (let j = 1; 2 ** j < lowestFirst.length && j <= squares.length; j++) {
        f.get(powers[j - 1])
          .get(powers[j - 1])
          .simd(Simd.f32x4Mul)
          .set(squares[j - 1]);
        powers.push(squares[j - 1]);
      }
      const emit = (from: number, count: number): void => {
        if (count === 1) {
          this.constant(lowestFirst[from]);
          return;
        }
        // The largest power of two below count: p = low(x) + x^half · high(x).
        let half = 1;
        while (2 * half < count) half *= 2;
        emit(from + half, count - half);
        f.get(powers[Math.log2(half)]);
        emit(from, half);
        this.madd();
      };
      emit(0, lowestFirst.length);
    });
  }

  /** Pushes `mask ? a : b` (lane-wise; `mask` all ones or all zeros per lane), each pushed by its callback. */
  private select(a: () => void, b: () => void, mask: () => void): void {
    a();
    b();
    mask();
    this.f.simd(Simd.v128Bitselect);
  }

  /**
   * log(t) for t > 0 normal in a local, into `result`: t = 2^k · m with m in [√½, √2), f = m − 1
   * (exact), log t = k · ln 2 + f − f²/2 + f³ P(f), the small terms added first. `exponent` (an
   * i32x4 local, or -1) is added to k (a scaled subnormal's); `correction` (a local, or -1) is a
   * term far below the result's magnitude added with the small ones (log1p's rounding of 1 + x).
   */
  private logCore(t: number, exponent: number, correction: number, result: number): void {
    const f = this.f;
    this.withLocals(3, (k, m, z) => {
      // k = (bits(t) − bits(√½)) >> 23 (arithmetic shift), m = bits(t) − (k << 23).
      f.get(t);
      this.constantBits(float32Bits(Math.SQRT1_2));
      f.simd(MathSimd.i32x4Sub).i32(23).simd(MathSimd.i32x4ShrS).set(k);
      f.get(t).get(k).i32(23).simd(MathSimd.i32x4Shl).simd(MathSimd.i32x4Sub);
      this.constant(1);
      f.simd(MathSimd.f32x4Sub).set(m); // m now holds f = m − 1
      if (exponent >= 0) f.get(k).get(exponent).simd(Simd.i32x4Add).set(k);
      f.get(k).simd(MathSimd.f32x4ConvertI32x4S).set(k); // k as a float from here on
      f.get(m).get(m).simd(Simd.f32x4Mul).set(z);
      // y = f · z · P(f) + k · LN2_LO − z / 2 (+ correction)
      this.polynomial(m, LOG_POLYNOMIAL);
      f.get(m).simd(Simd.f32x4Mul).get(z).simd(Simd.f32x4Mul);
      f.get(k);
      this.constant(LN2_LO);
      f.simd(Simd.f32x4Mul).simd(Simd.f32x4Add);
      f.get(z);
      this.constant(-0.5);
      f.simd(Simd.f32x4Mul).simd(Simd.f32x4Add);
      if (correction >= 0) f.get(correction).simd(Simd.f32x4Add);
      // (f + y) + k · LN2_HI
      f.get(m).simd(Simd.f32x4Add);
      f.get(k);
      this.constant(LN2_HI);
      f.simd(Simd.f32x4Mul).simd(Simd.f32x4Add).set(result);
    });
  }

  /**
   * Pushes `result` with the lanes where `t` is not a positive finite number replaced: log 0 = −∞,
   * log ∞ = ∞, NaN for a negative or NaN `t`.
   */
  private logSpecials(t: number, result: number): void {
    const f = this.f;
    const is = (value: number, compare: number) => () => {
      f.get(t);
      this.constant(value);
      f.simd(compare);
    };
    this.select(
      () => f.get(result),
      () => this.constantBits(QUIET_NAN),
      is(0, MathSimd.f32x4Ge),
    );
    f.set(result);
    this.select(
      () => this.constant(-Infinity),
      () => f.get(result),
      is(0, Simd.f32x4Eq),
    );
    f.set(result);
    this.select(
      () => this.constant(Infinity),
      () => f.get(result),
      is(Infinity, Simd.f32x4Eq),
    );
  }

  /**
   * Runs `slow` unless every lane of `x` has bits b with b − `low` below `span` (unsigned): the
   * lanes in a range of ordinary values, where the special cases cannot arise. One compare and a
   * branch instead of the selections of the special cases, on vectors that need none of them.
   */
  private unlessOrdinary(x: number, low: number, span: number, slow: () => void): void {
    const f = this.f;
    f.get(x);
    this.constantBits(low);
    f.simd(MathSimd.i32x4Sub);
    this.constantBits(span);
    f.simd(MathSimd.i32x4LtU).simd(MathSimd.i32x4AllTrue).op(Op.i32Eqz);
    f.ifElse(slow);
  }

  /** log(x) (natural logarithm) of the f32x4 on the stack. */
  log(): void {
    const f = this.f;
    this.withLocals(4, (x, subnormal, t, result) => {
      f.set(x);
      // Positive normal finite lanes only (bits 0x00800000 … 0x7f7fffff): no scaling, no specials.
      this.logCore(x, -1, -1, result);
      this.unlessOrdinary(x, 0x00800000, 0x7f000000, () => this.logSlow(x, subnormal, t, result));
      f.get(result);
    });
  }

  /** log of `x` with subnormal, zero, negative, infinite and NaN lanes, into `result`. */
  private logSlow(x: number, subnormal: number, t: number, result: number): void {
    const f = this.f;
    // A subnormal x is scaled by 2^25 into the normal range (exactly); k is 25 too large then.
    f.get(x);
    this.constant(2 ** -126);
    f.simd(MathSimd.f32x4Lt).set(subnormal);
    this.select(
      () => {
        f.get(x);
        this.constant(2 ** 25);
        f.simd(Simd.f32x4Mul);
      },
      () => f.get(x),
      () => f.get(subnormal),
    );
    f.set(t);
    f.get(subnormal);
    this.constantBits(-25);
    f.simd(Simd.v128And).set(subnormal);
    this.logCore(t, subnormal, -1, result);
    this.logSpecials(x, result);
    f.set(result);
  }

  /**
   * log(1 + x) of the f32x4 on the stack, accurate for small x too: with u = 1 + x rounded,
   * log1p(x) = log(u) + (x − (u − 1)) / u to first order, the second term undoing the rounding of
   * u (both differences exact: u − 1 for u < 2, u − x for u ≥ 2, by Sterbenz's lemma).
   */
  log1p(): void {
    const f = this.f;
    this.withLocals(4, (x, u, correction, result) => {
      f.set(x);
      f.get(x);
      this.constant(1);
      f.simd(Simd.f32x4Add).set(u);
      this.select(
        () => {
          f.get(x).get(u);
          this.constant(1);
          f.simd(MathSimd.f32x4Sub).simd(MathSimd.f32x4Sub);
        },
        () => {
          this.constant(1);
          f.get(u).get(x).simd(MathSimd.f32x4Sub).simd(MathSimd.f32x4Sub);
        },
        () => {
          f.get(u);
          this.constant(2);
          f.simd(MathSimd.f32x4Lt);
        },
      );
      f.get(u).simd(MathSimd.f32x4Div).set(correction);
      this.logCore(u, -1, correction, result);
      // Lanes with u positive and finite (bits 1 … 0x7f7fffff) and x not ±0 need nothing more.
      f.get(x);
      this.constant(0);
      f.simd(Simd.f32x4Ne);
      f.get(u);
      this.constantBits(1);
      f.simd(MathSimd.i32x4Sub);
      this.constantBits(0x7f7fffff);
      f.simd(MathSimd.i32x4LtU).simd(Simd.v128And);
      f.simd(MathSimd.i32x4AllTrue).op(Op.i32Eqz);
      f.ifElse(() => {
        this.logSpecials(u, result);
        f.set(result);
        // log1p(±0) = ±0: the sum above would lose the sign of −0.
        this.select(
          () => f.get(x),
          () => f.get(result),
          () => {
            f.get(x);
            this.constant(0);
            f.simd(Simd.f32x4Eq);
          },
        );
        f.set(result);
      });
      f.get(result);
    });
  }

  /**
   * e^x of the f32x4 on the stack: x = n · ln 2 + r with |r| ≤ ln 2 / 2, e^r by a polynomial, and
   * 2^n applied as two factors 2^(n/2) so that neither overflows nor is subnormal (the one rounding
   * into the subnormal or overflow range is the last multiply). x is clamped to [−104, 89] first,
   * which gives 0 and ∞ beyond; NaN stays NaN.
   */
  exp(): void {
    const f = this.f;
    this.withLocals(4, (x, z, n, r) => {
      this.constant(89);
      f.simd(MathSimd.f32x4Min);
      this.constant(-104);
      f.simd(Simd.f32x4Max).set(x);
      f.get(x);
      this.constant(Math.LOG2E);
      f.simd(Simd.f32x4Mul).simd(MathSimd.f32x4Nearest).tee(z);
      f.simd(MathSimd.i32x4TruncSatF32x4S).set(n);
      // r = (x − z · LN2_HI) − z · LN2_LO: the first product is exact.
      f.get(x).get(z);
      this.constant(LN2_HI);
      f.simd(Simd.f32x4Mul).simd(MathSimd.f32x4Sub).get(z);
      this.constant(LN2_LO);
      f.simd(Simd.f32x4Mul).simd(MathSimd.f32x4Sub).set(r);
      // p = Q(r) · r² + r + 1
      this.polynomial(r, EXP_POLYNOMIAL);
      f.get(r).get(r).simd(Simd.f32x4Mul).simd(Simd.f32x4Mul);
      f.get(r).simd(Simd.f32x4Add);
      this.constant(1);
      f.simd(Simd.f32x4Add);
      // · 2^(n >> 1) · 2^(n − (n >> 1)), each built in the exponent field.
      const power = (exponent: () => void) => {
        exponent();
        this.constantBits(127);
        f.simd(Simd.i32x4Add).i32(23).simd(MathSimd.i32x4Shl).simd(Simd.f32x4Mul);
      };
      f.get(n).i32(1).simd(MathSimd.i32x4ShrS).set(z); // z now holds n >> 1
      power(() => f.get(z));
      power(() => f.get(n).get(z).simd(MathSimd.i32x4Sub));
    });
  }
}
