/** Argument checks shared by the detector's configs: one clear message that names the op and the setting. */

/**
 * `value` if it is an integer >= `min`, else an error naming `op` and `name`.
 *
 * @example
 * integerAtLeast("train", "steps", 700, 1); // 700
 * integerAtLeast("train", "steps", 0, 1);   // throws "train: steps must be an integer >= 1, got 0"
 */
export function integerAtLeast(op: string, name: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new Error(`${op}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}
