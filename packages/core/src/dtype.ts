/** The four element types a tensor can hold, and the rules for mixing them. */

/** The element type of a tensor: two float widths, 32-bit integers (indices) and booleans (masks). */
export type DType = "float32" | "float64" | "int32" | "bool";

/** The typed array that stores each dtype. `bool` is one byte per element, 0 or 1. */
export interface DataArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  bool: Uint8Array;
}
/** The typed array of any dtype: what `tensor.data` is when the dtype is not known statically. */
export type DataArray = DataArrayOf[DType];

/** Every dtype, as a list (to iterate over them, as the tests do). */
export const DTYPES = ["float32", "float64", "int32", "bool"] as const satisfies readonly DType[];

const constructors = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  bool: Uint8Array,
} satisfies { [D in DType]: { new (n: number): DataArrayOf[D] } };

/**
 * Where arrays of at least `PLACED_BYTES` come from when a backend places them (`setPlacement`):
 * an array of `n` elements of `dtype`, zeroed unless `zeroed` is false (then its elements are
 * whatever its memory held), or null to leave it to JavaScript memory.
 */
export type Placement = <D extends DType>(
  dtype: D,
  n: number,
  zeroed?: boolean,
) => DataArrayOf[D] | null;

/** Arrays this large or larger are offered to the placement (smaller ones cost little to copy). */
export const PLACED_BYTES = 1 << 16;

let placement: Placement | null = null;

/**
 * @internal Sets where large arrays come from (the backend module sets it: the wasm backend puts
 * them in its memory, so that its kernels read and write them in place); null: JavaScript memory.
 */
export function setPlacement(placed: Placement | null): void {
  placement = placed;
}

/**
 * A new zero-filled array of `n` elements for `dtype`, where the backend places large ones. With
 * `zeroed` false, for a caller that writes every element before anything reads one, a placed
 * array is not cleared first (JavaScript's arrays always are).
 */
export function allocate<D extends DType>(dtype: D, n: number, zeroed = true): DataArrayOf[D] {
  const Made = constructors[dtype];
  if (placement !== null && n * Made.BYTES_PER_ELEMENT >= PLACED_BYTES) {
    const placed = placement(dtype, n, zeroed);
    if (placed !== null) return placed;
  }
  return new Made(n) as DataArrayOf[D];
}

/**
 * Whether `dtype` is floating point (float32 or float64): the dtypes that can take gradients.
 *
 * @example
 * isFloat("float64"); // true
 * isFloat("int32");   // false
 */
export function isFloat(dtype: DType): dtype is "float32" | "float64" {
  return dtype === "float32" || dtype === "float64";
}

export function isDType(value: unknown): value is DType {
  return typeof value === "string" && (DTYPES as readonly string[]).includes(value);
}

const rank: { [D in DType]: number } = { bool: 0, int32: 1, float32: 2, float64: 3 };

/** The smallest dtype both operands fit in: bool < int32 < float32 < float64. */
export function promoteTypes(a: DType, b: DType): DType {
  return rank[a] >= rank[b] ? a : b;
}

/** The dtype of the typed array itself, for tensors built from typed arrays. */
export function dtypeOfArray(array: ArrayBufferView): DType | undefined {
  if (array instanceof Float32Array) return "float32";
  if (array instanceof Float64Array) return "float64";
  if (array instanceof Int32Array) return "int32";
  if (array instanceof Uint8Array) return "bool";
  return undefined;
}
