/** Integer kernels whose results must wrap modulo 2^32 exactly, beyond what one expression gives. */

/** out[i] = x[i] ** k wrapped to int32 (two's complement), by squaring with 32-bit products. */
export function int32PowerInto(x: Int32Array, k: number, out: Int32Array): void {
  for (let i = 0; i < x.length; i++) {
    let result = 1;
    let base = x[i];
    for (let e = k; e > 0; e = Math.floor(e / 2)) {
      if (e % 2 === 1) result = Math.imul(result, base);
      base = Math.imul(base, base);
    }
    out[i] = result;
  }
}
