/** Seeds of independent random streams, derived from a run's seed and a position (a split, an image, a step). */

import { Generator } from "@focalgrad/core";

/**
 * A 32-bit seed for the stream named by `keys` under `seed`, by a murmur3-style finaliser over each
 * key in turn: every image, epoch and step draws from a stream of its own, so any one of them can
 * be reproduced (or resumed) without replaying the draws before it.
 *
 * @example
 * mixSeed(0, 1, 2) === mixSeed(0, 1, 2); // true
 * mixSeed(0, 1, 2) === mixSeed(0, 2, 1); // false
 */
export function mixSeed(seed: number, ...keys: number[]): number {
  let h = Math.trunc(seed) >>> 0;
  for (const key of keys) {
    h = Math.imul(h ^ (Math.trunc(key) >>> 0), 0x9e3779b1) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
  }
  return h;
}

/**
 * A generator for the stream named by `keys` under `seed` (see `mixSeed`).
 *
 * @example
 * streamOf(0, 7).uniform() === streamOf(0, 7).uniform(); // true
 */
export function streamOf(seed: number, ...keys: number[]): Generator {
  return new Generator(mixSeed(seed, ...keys));
}

/**
 * An integer drawn uniformly from [low, high], both included.
 *
 * @example
 * integerIn(streamOf(0), 8, 32); // one of 8, 9, …, 32
 */
export function integerIn(gen: Generator, low: number, high: number): number {
  return low + gen.integer(high - low + 1);
}
