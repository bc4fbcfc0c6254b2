/** Argument checks and coercions shared by the ops, so that every error reads the same way. */

import { type DType, isFloat } from "../dtype.js";
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

export function scalarTensor(value: number, dtype: DType): Tensor {
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
    return [scalarTensor(a, weakDtype(a, b.dtype)), b];
  }
  checkTensor(op, "a", a);
  if (typeof b === "number") return [a, scalarTensor(b, weakDtype(b, a.dtype))];
  checkTensor(op, "b", b);
  return [a, b];
}

export function checkInteger(op: string, name: string, value: number, min = -Infinity): void {
  if (!Number.isInteger(value) || value < min) {
    const range = min === -Infinity ? "an integer" : `an integer >= ${min}`;
    throw new Error(`${op}: ${name} must be ${range}, got ${value}`);
  }
}
