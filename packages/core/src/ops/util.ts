/** Argument checks and coercions shared by the ops, so that every error reads the same way. */

import { type DType, isFloat } from "../dtype.js";
import { Generator } from "../random.js";
import { formatShape } from "../shape.js";
import { Tensor } from "../tensor.js";

/** A tensor, or a plain number that takes the dtype of the tensor it meets. */
export type TensorLike = Tensor | number;

export function describe(t: Tensor): string {
  return `${t.dtype} tensor of shape ${formatShape(t.shape)}`;
}

export function checkTensor(op: string, name: string, value: unknown): asserts value is Tensor {
  if (!(value instanceof Tensor)) {
    const what = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new Error(`${op}: ${name} must be a Tensor, got ${what} (wrap values with tensor(...))`);
  }
}

export function checkFloat(op: string, name: string, t: Tensor): void {
  checkTensor(op, name, t);
  if (!isFloat(t.dtype)) {
    throw new Error(
      `${op}: ${name} must be float32 or float64, got ${t.dtype}; convert it first with cast(${name}, "float32")`,
    );
  }
}

export function checkNumeric(op: string, name: string, t: Tensor): void {
  checkTensor(op, name, t);
  if (t.dtype === "bool") {
    throw new Error(
      `${op}: ${name} must be a numeric tensor, got bool; use where(), or cast(${name}, "float32")`,
    );
  }
}

export function checkBool(op: string, name: string, t: Tensor): void {
  checkTensor(op, name, t);
  if (t.dtype !== "bool") throw new Error(`${op}: ${name} must be a bool tensor, got ${t.dtype}`);
}

export function checkInt32(op: string, name: string, t: Tensor): void {
  checkTensor(op, name, t);
  if (t.dtype !== "int32") {
    throw new Error(
      `${op}: ${name} must be an int32 tensor, got ${t.dtype}; convert it with cast(${name}, "int32")`,
    );
  }
}

/** The dtype a plain number takes next to a tensor of `dtype` (PyTorch's "weak" scalars). */
function weakDtype(value: number, dtype: DType): DType {
  if (isFloat(dtype)) return dtype;
  if (dtype === "int32" && Number.isInteger(value)) return "int32";
  if (dtype === "bool" && (value === 0 || value === 1)) return "bool";
  return Number.isInteger(value) ? "int32" : "float32";
}

/**
 * Checks that `value` is an int32: an integer in [−2^31, 2^31 − 1]. Values are never wrapped or
 * truncated on their way into an int32 tensor (that would be a silently different number); `cast`
 * is the explicit conversion, which truncates and wraps.
 */
export function checkInt32Value(op: string, name: string, value: unknown): void {
  if (
    typeof value !== "number" ||
    !Number.isInteger(value) ||
    value < -(2 ** 31) ||
    value >= 2 ** 31
  ) {
    const why =
      typeof value === "number" && Number.isInteger(value) ? "outside" : "not an integer in";
    throw new Error(
      `${op}: ${name} ${String(value)} is ${why} the int32 range [-2147483648, 2147483647] ` +
        `(int32 tensors hold integers only; cast() truncates and wraps a float tensor explicitly)`,
    );
  }
}

/** A scalar tensor of `dtype` holding `value`; an int32 value must fit (see `checkInt32Value`). */
export function scalarTensor(value: number, dtype: DType, op = "scalarTensor"): Tensor {
  if (dtype === "int32") checkInt32Value(op, "the scalar", value);
  const data = new (arrayFor(dtype))(1);
  data[0] = value;
  return new Tensor(data, [], dtype);
}

function arrayFor(dtype: DType) {
  return { float32: Float32Array, float64: Float64Array, int32: Int32Array, bool: Uint8Array }[
    dtype
  ];
}

/** Coerces a pair of operands where either may be a plain number. */
export function operandPair(op: string, a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error(`${op}: at least one operand must be a Tensor, got two numbers`);
  }
  if (typeof a === "number") {
    checkTensor(op, "b", b);
    return [scalarTensor(a, weakDtype(a, b.dtype), op), b];
  }
  checkTensor(op, "a", a);
  if (typeof b === "number") return [a, scalarTensor(b, weakDtype(b, a.dtype), op)];
  checkTensor(op, "b", b);
  return [a, b];
}

export function checkInteger(op: string, name: string, value: number, min = -Infinity): void {
  if (!Number.isInteger(value) || value < min) {
    const range = min === -Infinity ? "an integer" : `an integer >= ${min}`;
    throw new Error(`${op}: ${name} must be ${range}, got ${value}`);
  }
}

/** A description of a JavaScript value for an error message: its kind, and the value if short. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Tensor) return `a ${describe(value)}`;
  if (Array.isArray(value)) return `an array [${value.map((v) => String(v)).join(", ")}]`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "object") return `an object (${value.constructor?.name ?? "no prototype"})`;
  if (typeof value === "number") return String(value);
  return `${typeof value} ${String(value)}`;
}

/** The checks an option's value can be given to `checkOptions`, each with what it expects. */
const optionKinds = {
  number: [(v) => typeof v === "number" && !Number.isNaN(v), "a number"],
  integer: [(v) => Number.isInteger(v), "an integer"],
  boolean: [(v) => typeof v === "boolean", "true or false"],
  string: [(v) => typeof v === "string", "a string"],
  // Axes are numbers here; normalizeAxis then says which integers are in range.
  axis: [(v) => typeof v === "number", "an integer axis"],
  axes: [
    (v) => typeof v === "number" || (Array.isArray(v) && v.every((a) => typeof a === "number")),
    "an integer axis or an array of them",
  ],
  pair: [
    (v) =>
      typeof v === "number" ||
      (Array.isArray(v) && v.length === 2 && v.every((a) => typeof a === "number")),
    "a number or a pair [h, w] of numbers",
  ],
  shape: [(v) => Array.isArray(v), "an array of sizes"],
  numberPair: [
    (v) => Array.isArray(v) && v.length === 2 && v.every((a) => typeof a === "number"),
    "a pair [a, b] of numbers",
  ],
  floatDtype: [(v) => v === "float32" || v === "float64", '"float32" or "float64"'],
  tensor: [(v) => v instanceof Tensor, "a Tensor"],
  generator: [(v) => v instanceof Generator, "a Generator"],
  object: [
    (v) =>
      typeof v === "object" &&
      v !== null &&
      !Array.isArray(v) &&
      !ArrayBuffer.isView(v) &&
      !(v instanceof Tensor),
    "an object",
  ],
  // For options whose values the op checks itself, with a message of its own.
  any: [() => true, "anything"],
} satisfies Record<string, readonly [(v: unknown) => boolean, string]>;

/** What an option may hold: one of the kinds of the table above. */
export type OptionKind = keyof typeof optionKinds;

/**
 * Validates an options object at run time, for callers in plain JavaScript: `options` must be
 * undefined or a plain object (not a number, an array or a Tensor), hold only the keys of `spec`,
 * and each key present (and not undefined) must hold a value of its kind. An error names the op,
 * the key, what was given and what was expected. Returns the options (`{}` for undefined).
 *
 * @example
 * const { axis, keepdims } = checkOptions("sum", options, { axis: "axes", keepdims: "boolean" });
 */
export function checkOptions<T extends object>(
  op: string,
  options: T | undefined,
  spec: { readonly [K in keyof T]-?: OptionKind },
): T {
  if (options === undefined) return {} as T;
  const keys = Object.keys(spec);
  const example = keys.length > 0 ? ` such as { ${keys[0]}: … }` : "";
  if (!optionKinds.object[0](options)) {
    throw new Error(
      `${op}: options must be an object${example} (keys: ${keys.join(", ")}), got ${describeValue(options)}`,
    );
  }
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(spec, key)) {
      throw new Error(
        `${op}: unknown option ${JSON.stringify(key)} (expected ${keys.length > 0 ? keys.join(", ") : "no options"})`,
      );
    }
    if (value === undefined) continue;
    const [ok, expected] = optionKinds[(spec as Record<string, OptionKind>)[key]];
    if (!ok(value)) {
      throw new Error(`${op}: option ${key} must be ${expected}, got ${describeValue(value)}`);
    }
  }
  return options;
}
