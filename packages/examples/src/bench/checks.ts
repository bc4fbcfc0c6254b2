/** What the benchmark compares across implementations before it times any of them, and the comparison. */

/** One number an implementation computed, with the tolerance it must meet against the reference. */
export interface Check {
  label: string;
  value: number;
  /** Relative tolerance: |a − b| <= rtol · max(|a|, |b|, scale). */
  rtol: number;
  /** Floor of the relative scale, for sums that may cancel to near 0. */
  scale?: number;
}

/** Fixed pseudo-random weight in [−0.5, 0.5) of element `i`: a checksum that also sees misplaced elements. */
function weightOf(i: number): number {
  return (Math.imul(i, 0x9e3779b1) >>> 0) / 2 ** 32 - 0.5;
}

/**
 * Three checksums of an array, in double precision: the sum, the sum of magnitudes and a sum
 * weighted by a fixed pseudo-random pattern (which changes when elements are swapped or shifted).
 * The signed sums are compared relative to at least 1 % of the sum of magnitudes, since they may
 * cancel.
 *
 * @example
 * checksums("grad", grad.data, 1e-3); // [{ label: "grad sum", … }, …]
 */
export function checksums(label: string, data: ArrayLike<number>, rtol: number): Check[] {
  let sum = 0;
  let sumAbs = 0;
  let weighted = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    sum += v;
    sumAbs += Math.abs(v);
    weighted += v * weightOf(i);
  }
  const scale = 0.01 * sumAbs;
  return [
    { label: `${label} sum`, value: sum, rtol, scale },
    { label: `${label} sum|·|`, value: sumAbs, rtol },
    { label: `${label} weighted sum`, value: weighted, rtol, scale },
  ];
}

/**
 * Throws, naming the implementation, the quantity and both values, unless every check of
 * `candidate` matches the reference's check of the same label within its tolerance (NaN never
 * matches). A check missing on either side is an error too.
 *
 * @example
 * crossCheck("voc512", { name: "fused", checks: ref }, { name: "tfjs-cpu", checks: theirs });
 */
export function crossCheck(
  workload: string,
  reference: { name: string; checks: readonly Check[] },
  candidate: { name: string; checks: readonly Check[] },
): void {
  const theirs = new Map(candidate.checks.map((c) => [c.label, c]));
  for (const ours of reference.checks) {
    const other = theirs.get(ours.label);
    if (other === undefined) {
      throw new Error(
        `cross-check failed on ${workload}: ${candidate.name} reports no '${ours.label}' (the reference ${reference.name} does)`,
      );
    }
    const a = ours.value;
    const b = other.value;
    const bound = ours.rtol * Math.max(Math.abs(a), Math.abs(b), ours.scale ?? 0);
    if (!(Math.abs(a - b) <= bound)) {
      const relative = Math.abs(a - b) / Math.max(Math.abs(a), Number.MIN_VALUE);
      throw new Error(
        `cross-check failed on ${workload}: ${candidate.name} gives ${ours.label} = ${b}, ` +
          `the reference ${reference.name} gives ${a} (relative difference ${relative.toPrecision(3)}, ` +
          `tolerance ${ours.rtol})`,
      );
    }
  }
  if (candidate.checks.length !== reference.checks.length) {
    const known = new Set(reference.checks.map((c) => c.label));
    const extra = candidate.checks.filter((c) => !known.has(c.label)).map((c) => c.label);
    throw new Error(
      `cross-check failed on ${workload}: ${candidate.name} reports ${extra.join(", ")}, which the reference ${reference.name} does not`,
    );
  }
}
