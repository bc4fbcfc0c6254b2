/** Making tensors: from JavaScript values, constants, ranges and seeded random numbers. */

import { allocate, type DataArray, type DType, dtypeOfArray, isDType } from "../dtype.js";
import { type Generator, generatorOf, type RandomSource } from "../random.js";
import { checkShape, checkSize, formatShape, type Shape, sizeOf } from "../shape.js";
import { type NestedArray, Tensor } from "../tensor.js";
import { checkInt32Value, checkOptions, describeValue } from "./util.js";

/** Options of `tensor()`: the shape of flat data, the dtype, and whether to record gradients. */
export interface TensorOptions {
  /** Required for flat arrays and typed arrays of rank other than 1; inferred from nested arrays. */
  shape?: Shape;
  /** Default: the typed array's own dtype, `bool` for booleans, else `float32`. */
  dtype?: DType;
  /** Make the result a leaf that records gradients (float dtypes only). Default false. */
  requiresGrad?: boolean;
}

type Values = NestedArray | readonly NestedArray[] | ArrayLike<number>;

function checkDtype(op: string, dtype: unknown): asserts dtype is DType {
  if (!isDType(dtype)) {
    throw new Error(
      `${op}: unknown dtype ${JSON.stringify(dtype)} (expected float32, float64, int32 or bool)`,
    );
  }
}

function inferShape(values: NestedArray): number[] {
  const shape: number[] = [];
  let level: NestedArray = values;
  while (Array.isArray(level)) {
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
  }
  return shape;
}

function flatten(
  values: NestedArray,
  shape: readonly number[],
  out: (number | boolean)[],
  depth = 0,
): void {
  if (depth === shape.length) {
    if (Array.isArray(values))
      throw new Error("tensor: nested arrays are ragged (deeper than the first element)");
    out.push(values);
    return;
  }
  if (!Array.isArray(values) || values.length !== shape[depth]) {
    throw new Error(
      `tensor: nested arrays are ragged: expected ${shape[depth]} elements at depth ${depth}, as in the first row`,
    );
  }
  for (const v of values) flatten(v, shape, out, depth + 1);
}

/**
 * A tensor from a number, nested arrays, a flat array with `shape`, or a typed array. The values
 * are always copied, as `torch.tensor` copies: writing into the array afterwards does not change
 * the tensor (write into the tensor's own `data` for that).
 *
 * @example
 * tensor([[1, 2], [3, 4]]);                      // float32, shape [2, 2]
 * tensor([0, 1, 1], { dtype: "int32" });
 * tensor(new Float64Array(6), { shape: [2, 3], requiresGrad: true });
 */
export function tensor(values: Values, options?: TensorOptions): Tensor {
  const { dtype: wanted } = checkOptions("tensor", options, {
    shape: "shape",
    dtype: "any", // checkDtype lists the dtypes
    requiresGrad: "boolean",
  });
  options ??= {};
  if (wanted !== undefined) checkDtype("tensor", wanted);
  if (options.shape !== undefined) checkShape("tensor", options.shape);
  let flat: ArrayLike<number | boolean>;
  let shape: readonly number[];
  let natural: DType = "float32";
  if (ArrayBuffer.isView(values)) {
    flat = values as ArrayLike<number>;
    shape = options.shape ?? [flat.length];
    natural = dtypeOfArray(values) ?? "float32";
  } else if (typeof values === "number" || typeof values === "boolean") {
    flat = [values];
    shape = options.shape ?? [];
    if (typeof values === "boolean") natural = "bool";
  } else if (Array.isArray(values)) {
    const nestedShape = inferShape(values as NestedArray);
    const out: (number | boolean)[] = [];
    flatten(values as NestedArray, nestedShape, out);
    flat = out;
    shape = options.shape ?? nestedShape;
    if (out.length > 0 && typeof out[0] === "boolean") natural = "bool";
  } else {
    throw new Error(
      `tensor: cannot make a tensor from ${typeof values}; pass a number, an array or a typed array`,
    );
  }
  // A typed array holds numbers only; nested or flat JavaScript arrays may hold anything.
  for (let i = 0; !ArrayBuffer.isView(values) && i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== "number" && typeof v !== "boolean") {
      throw new Error(
        `tensor: element ${i} is ${typeof v}; only numbers and booleans can be tensor elements`,
      );
    }
  }
  const dtype = options.dtype ?? natural;
  if (sizeOf(shape) !== flat.length) {
    throw new Error(
      `tensor: ${flat.length} values do not fill shape ${formatShape(shape)} (${sizeOf(shape)} expected)`,
    );
  }
  let data: DataArray;
  // Copied, as torch.tensor copies: the caller keeps its array, and writes into it never reach
  // the tensor. Bytes other than 0 and 1 become 1 as bool: the logic kernels need exact 0/1.
  const copyable =
    ArrayBuffer.isView(values) &&
    dtypeOfArray(values) === dtype &&
    !(dtype === "bool" && (values as Uint8Array).some((v) => v > 1));
  if (copyable) {
    data = allocate(dtype, flat.length);
    data.set(values as unknown as DataArray);
  } else {
    data = allocate(dtype, flat.length);
    // bool is "not 0", as in cast(): NaN is true (a plain truthiness test would make it false).
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (dtype === "int32") checkInt32Value("tensor", `element ${i}`, Number(v));
      data[i] = dtype === "bool" ? (v === 0 || v === false ? 0 : 1) : Number(v);
    }
  }
  const t = new Tensor(data, shape, dtype);
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

/** Options of the creators of constant and range tensors (`zeros`, `ones`, `full`, `arange`, …). */
export interface CreationOptions {
  /** The element type. Default float32 (`arange`: int32 for integer arguments; `*Like`: the model's). */
  dtype?: DType;
  /** Make the result a leaf that records gradients (float dtypes only). Default false. */
  requiresGrad?: boolean;
}

const creationOptions = { dtype: "any", requiresGrad: "boolean" } as const; // checkDtype checks dtype

/**
 * A tensor of `shape` filled with `value`.
 *
 * @example
 * full([2, 3], 0.5); // float32
 */
export function full(shape: Shape, value: number, options?: CreationOptions): Tensor {
  return filledTensor("full", shape, value, options);
}

/** `full` under the name of the op the caller used, so that errors name it. */
function filledTensor(
  op: string,
  shape: Shape,
  value: number,
  options: CreationOptions | undefined,
): Tensor {
  checkShape(op, shape);
  options = checkOptions(op, options, creationOptions);
  const dtype = options.dtype ?? "float32";
  checkDtype(op, dtype);
  if (typeof value !== "number" && typeof value !== "boolean") {
    throw new Error(`${op}: the fill value must be a number, got ${describeValue(value)}`);
  }
  if (dtype === "int32") checkInt32Value(op, "the fill value", value);
  const data = allocate(dtype, sizeOf(shape));
  if (value !== 0) data.fill(dtype === "bool" ? 1 : value);
  const t = new Tensor(data, shape, dtype);
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

/**
 * A tensor of `shape` filled with zeros, float32 unless `options.dtype` says otherwise (`false` for
 * bool).
 *
 * @example
 * zeros([2, 3], { dtype: "float64" }); // [[0, 0, 0], [0, 0, 0]]
 */
export function zeros(shape: Shape, options?: CreationOptions): Tensor {
  return filledTensor("zeros", shape, 0, options);
}

/**
 * A tensor of `shape` filled with ones, float32 unless `options.dtype` says otherwise (`true` for
 * bool).
 *
 * @example
 * ones([4]); // [1, 1, 1, 1]
 */
export function ones(shape: Shape, options?: CreationOptions): Tensor {
  return filledTensor("ones", shape, 1, options);
}

function filledLike(op: string, like: Tensor, value: number, options?: CreationOptions): Tensor {
  if (!(like instanceof Tensor)) {
    throw new Error(`${op}: like must be a Tensor, got ${describeValue(like)}`);
  }
  const checked = checkOptions(op, options, creationOptions);
  return filledTensor(op, like.shape, value, { dtype: like.dtype, ...checked });
}

/** Zeros of `like`'s shape and (by default) dtype. @example zerosLike(x) */
export function zerosLike(like: Tensor, options?: CreationOptions): Tensor {
  return filledLike("zerosLike", like, 0, options);
}

/** Ones of `like`'s shape and (by default) dtype. @example onesLike(x) */
export function onesLike(like: Tensor, options?: CreationOptions): Tensor {
  return filledLike("onesLike", like, 1, options);
}

/**
 * Evenly spaced values in [start, stop), like `numpy.arange`; `arange(n)` is 0 … n - 1.
 * The dtype is int32 when all arguments are integers, else float32.
 *
 * @example
 * arange(4);           // [0, 1, 2, 3], int32
 * arange(0, 1, 0.25);  // [0, 0.25, 0.5, 0.75], float32
 */
export function arange(start: number, stop?: number, step = 1, options?: CreationOptions): Tensor {
  options = checkOptions("arange", options, creationOptions);
  if (stop === undefined) [start, stop] = [0, start];
  for (const [name, v] of [
    ["start", start],
    ["stop", stop],
    ["step", step],
  ] as const) {
    if (!Number.isFinite(v)) throw new Error(`arange: ${name} must be a finite number, got ${v}`);
  }
  if (step === 0) throw new Error("arange: step must not be 0");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const integral = Number.isInteger(start) && Number.isInteger(stop) && Number.isInteger(step);
  const dtype = options.dtype ?? (integral ? "int32" : "float32");
  checkDtype("arange", dtype);
  checkSize("arange", [n]);
  if (dtype === "int32" && n > 0) {
    // Every value is an integer in range when both ends are (they bound the rest).
    checkInt32Value("arange", "start", start);
    checkInt32Value("arange", "step", step);
    checkInt32Value("arange", "the last value", start + (n - 1) * step);
  }
  const data = allocate(dtype, n);
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  const t = new Tensor(data, [n], dtype);
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

/**
 * `steps` evenly spaced values from `start` to `end`, both included (PyTorch's `linspace`);
 * float32 unless `dtype` says otherwise. As PyTorch, the first half counts up from `start` and the
 * second half down from `end`, so both ends are exact; float32 values are computed in float32.
 *
 * @example
 * linspace(0, 1, 5); // [0, 0.25, 0.5, 0.75, 1]
 * linspace(2, 2, 1); // [2]
 */
export function linspace(
  start: number,
  end: number,
  steps: number,
  options: CreationOptions = {},
): Tensor {
  checkOptions("linspace", options, creationOptions);
  for (const [name, v] of [
    ["start", start],
    ["end", end],
  ] as const) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Error(`linspace: ${name} must be a finite number, got ${v}`);
    }
  }
  if (!Number.isInteger(steps) || steps < 0) {
    throw new Error(`linspace: steps must be an integer >= 0, got ${steps}`);
  }
  checkSize("linspace", [steps]);
  const dtype = options.dtype ?? "float32";
  checkDtype("linspace", dtype);
  if (dtype === "bool") throw new Error("linspace: dtype must be numeric, got bool");
  const round = dtype === "float32" ? Math.fround : (v: number) => v;
  const [first, last] = [round(start), round(end)];
  const step = steps > 1 ? round(round(last - first) / (steps - 1)) : 0;
  // One step is `start` alone (PyTorch fills it); two halves otherwise.
  const halfway = steps === 1 ? 1 : Math.floor(steps / 2);
  const data = allocate(dtype, steps);
  for (let i = 0; i < steps; i++) {
    data[i] =
      i < halfway ? round(first + round(step * i)) : round(last - round(step * (steps - 1 - i)));
  }
  const t = new Tensor(data, [steps], dtype);
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

/** Options of the random creators (`uniform`, `normal`): the dtype and where the numbers come from. */
export interface RandomOptions extends CreationOptions, RandomSource {}

const randomOptions = { ...creationOptions, seed: "integer", generator: "generator" } as const;

function random(
  op: string,
  shape: Shape,
  options: RandomOptions,
  draw: (g: Generator) => number,
): Tensor {
  checkShape(op, shape);
  const dtype = options.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") {
    throw new Error(`${op}: dtype must be float32 or float64, got ${dtype}`);
  }
  const gen = generatorOf(op, options);
  const data = allocate(dtype, sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = draw(gen);
  const t = new Tensor(data, shape, dtype);
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

/**
 * Uniform random values in [low, high) from a seeded generator.
 *
 * @example
 * uniform([2, 2], { low: -1, high: 1, seed: 0 });
 */
export function uniform(
  shape: Shape,
  options: RandomOptions & { low?: number; high?: number } = {},
): Tensor {
  checkOptions("uniform", options, { ...randomOptions, low: "number", high: "number" });
  const low = options.low ?? 0;
  const high = options.high ?? 1;
  if (!(low <= high)) throw new Error(`uniform: low (${low}) must not exceed high (${high})`);
  return random("uniform", shape, options, (g) => g.uniform(low, high));
}

/**
 * Normal random values from a seeded generator.
 *
 * @example
 * normal([3], { mean: 0, std: 0.01, generator: new Generator(1) });
 */
export function normal(
  shape: Shape,
  options: RandomOptions & { mean?: number; std?: number } = {},
): Tensor {
  checkOptions("normal", options, { ...randomOptions, mean: "number", std: "number" });
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  if (!(std >= 0)) throw new Error(`normal: std must be >= 0, got ${std}`);
  return random("normal", shape, options, (g) => g.normal(mean, std));
}

/**
 * A random permutation of 0 … n − 1 as int32 (PyTorch's `randperm`), by a Fisher–Yates shuffle
 * drawn from `options.generator`, a fresh generator of `options.seed`, or the default generator.
 *
 * @example
 * randperm(5, { seed: 0 }); // the numbers 0 to 4, in a seeded order
 */
export function randperm(n: number, options: RandomSource = {}): Tensor {
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`randperm: n must be an integer >= 0, got ${n}`);
  }
  const gen = generatorOf("randperm", options);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = gen.integer(i + 1);
    const swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  return new Tensor(order, [n], "int32");
}
