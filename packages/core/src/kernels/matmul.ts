/** Matrix multiplication kernels: C[m, n] = A[m, k] · B[k, n] over row-major float arrays. */

import type { DataArray } from "../dtype.js";

/**
 * One product of a batch: reads A at `aOffset` and B at `bOffset`, writes C at `cOffset`.
 * i-k-j order, so the inner loop streams rows of B and C contiguously.
 */
export function matmulInto(
  a: DataArray,
  aOffset: number,
  b: DataArray,
  bOffset: number,
  c: DataArray,
  cOffset: number,
  m: number,
  k: number,
  n: number,
): void {
  for (let i = 0; i < m; i++) {
    const cRow = cOffset + i * n;
    const aRow = aOffset + i * k;
    for (let p = 0; p < k; p++) {
      const av = a[aRow + p];
      if (av === 0) continue;
      const bRow = bOffset + p * n;
      for (let j = 0; j < n; j++) c[cRow + j] += av * b[bRow + j];
    }
  }
}
