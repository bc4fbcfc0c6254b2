/** Seeded pseudo-random numbers, so that every run (data, initial weights) is reproducible bit for bit. */

/**
 * xoshiro128** seeded through splitmix32: fast, 2^128 period, good statistical quality.
 *
 * @example
 * const gen = new Generator(42);
 * gen.uniform(); // in [0, 1)
 * gen.normal();  // standard normal
 */
export class Generator {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | undefined;

  /**
   * A generator whose sequence is fixed by `seed` (any finite number; its integer part modulo 2^32
   * is used, so seeds that differ only there give the same sequence).
   */
  constructor(seed: number) {
    this.manualSeed(seed);
  }

  /**
   * Restarts this generator's sequence from `seed`, as `torch.Generator.manual_seed` does; returns
   * the generator.
   *
   * @example
   * const gen = new Generator(1);
   * const first = gen.uniform();
   * gen.manualSeed(1).uniform() === first; // true
   */
  manualSeed(seed: number): this {
    if (typeof seed !== "number" || !Number.isFinite(seed))
      throw new Error(`Generator: seed must be a finite number, got ${String(seed)}`);
    this.spare = undefined;
    let x = Math.trunc(seed) >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    return this;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [low, high), with 53 bits of randomness. */
  uniform(low = 0, high = 1): number {
    const u = (this.nextUint32() * 2 ** 21 + (this.nextUint32() >>> 11)) / 2 ** 53;
    return low + (high - low) * u;
  }

  /** Normal with the given mean and standard deviation (Box–Muller, both values used). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** A uniformly random integer in [0, n). */
  integer(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * The generator that layers, initialisers and random creators draw from when given neither a
 * `generator` nor a `seed` (PyTorch's default generator). It starts from seed 0, so a program is
 * reproducible even without `manualSeed`.
 */
const defaultGenerator = new Generator(0);

/**
 * Reseeds the default generator, like `torch.manual_seed`, and returns it. Everything drawn
 * afterwards without an explicit `generator` or `seed` follows from `seed`.
 *
 * @example
 * manualSeed(42);
 * const a = new nn.Linear(4, 2);
 * manualSeed(42);
 * const b = new nn.Linear(4, 2); // the same weights as a
 */
export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}

/**
 * The default generator itself (see `manualSeed`), for code that wants to pass it on explicitly.
 *
 * @example
 * getDefaultGenerator().uniform(); // advances the default sequence
 */
export function getDefaultGenerator(): Generator {
  return defaultGenerator;
}

/**
 * Where random numbers come from: a generator (advanced by the draw), a seed for a fresh one, or,
 * with neither, the default generator (`manualSeed`).
 */
export interface RandomSource {
  /** The generator to draw from; its state advances, so successive layers get different weights. */
  generator?: Generator;
  /** A seed for a fresh generator, used when `generator` is not given. */
  seed?: number;
}

/**
 * @internal The generator of `source`: its `generator`, a fresh one of its `seed`, or else the
 * default generator. Errors name `op`.
 */
export function generatorOf(op: string, source: RandomSource | undefined): Generator {
  if (source?.generator !== undefined) {
    if (!(source.generator instanceof Generator)) {
      throw new Error(`${op}: generator must be a Generator, got ${typeof source.generator}`);
    }
    return source.generator;
  }
  if (source?.seed !== undefined) {
    if (typeof source.seed !== "number" || !Number.isFinite(source.seed)) {
      throw new Error(`${op}: seed must be a finite number, got ${String(source.seed)}`);
    }
    return new Generator(source.seed);
  }
  return defaultGenerator;
}
