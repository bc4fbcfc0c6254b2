/**
 * Elementwise kernels. Each (expression, dtypes) pair is compiled once into its own loop with
 * `new Function`, so every loop stays monomorphic and inlines its arithmetic: no per-element
 * closure calls, no index arithmetic through shape arrays in the inner loop.
 */

import { allocate, type DataArray, type DType } from "../dtype.js";
import { broadcastStrides, type Shape, shapesEqual, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";

const operandNames = ["a", "b", "c", "d", "e"] as const;

type Kernel = (
  out: DataArray,
  n: number,
  shape: Int32Array,
  rank: number,
  ...operands: unknown[]
) => void;

/** One input of a strided loop: its elements, its stride per axis (0 to broadcast), its first element. */
export interface StridedOperand {
  data: DataArray;
  strides: readonly number[];
  offset: number;
}

const kernels = new Map<string, Kernel>();

/**
 * The loop for `expr` over up to five operands named a … e, read with broadcast strides.
 * Axes are coalesced first, so same-shape and scalar operands run as one flat loop.
 */
function compile(expr: string, arity: number, key: string): Kernel {
  const cached = kernels.get(key);
  if (cached !== undefined) return cached;
  const names = operandNames.slice(0, arity);
  const each = (f: (x: string) => string) => names.map(f).join("\n");
  const source = `
    const inner = shape[rank - 1];
    ${each((x) => `const ${x}Step = ${x}Strides[rank - 1]; let ${x}Base = ${x}Offset;`)}
    const index = new Int32Array(rank);
    let o = 0;
    while (o < n) {
      ${each((x) => `let ${x}i = ${x}Base;`)}
      for (let j = 0; j < inner; j++) {
        ${each((x) => `const ${x} = ${x}Data[${x}i]; ${x}i += ${x}Step;`)}
        out[o++] = ${expr};
      }
      for (let d = rank - 2; d >= 0; d--) {
        ${each((x) => `${x}Base += ${x}Strides[d];`)}
        if (++index[d] < shape[d]) break;
        index[d] = 0;
        ${each((x) => `${x}Base -= ${x}Strides[d] * shape[d];`)}
      }
    }`;
  const params = [
    "out",
    "n",
    "shape",
    "rank",
    ...names.flatMap((x) => [`${x}Data`, `${x}Strides`, `${x}Offset`]),
  ];
  const kernel = new Function(...params, source) as Kernel;
  kernels.set(key, kernel);
  return kernel;
}

/**
 * Drops size-1 axes and merges neighbours that every operand reads contiguously, so that the
 * common cases (same shapes, a scalar, a trailing row) become a single flat inner loop.
 */
function coalesce(shape: Shape, strides: number[][]): { shape: Int32Array; strides: Int32Array[] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => {
        outStrides[k][last] = s[d];
      });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => {
        outStrides[k].push(s[d]);
      });
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => {
      s.push(0);
    });
  }
  return { shape: Int32Array.from(outShape), strides: outStrides.map((s) => Int32Array.from(s)) };
}

/**
 * Evaluates `expr` (in terms of `a` … `e`) over strided operands laid over `shape`, writing
 * `out` in row-major order. The building block of elementwise ops, broadcasts, slices and permutes.
 */
export function strided(
  expr: string,
  out: DataArray,
  shape: Shape,
  operands: readonly StridedOperand[],
): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  const key = `${expr}|${out.constructor.name}|${operands.map((o) => o.data.constructor.name).join(",")}`;
  const kernel = compile(expr, operands.length, key);
  const c = coalesce(
    shape,
    operands.map((o) => [...o.strides]),
  );
  kernel(
    out,
    n,
    c.shape,
    c.shape.length,
    ...operands.flatMap((o, k) => [o.data, c.strides[k], o.offset]),
  );
}

const unitStride = new Int32Array([1]);

/**
 * Evaluates `expr` (in terms of `a` … `e`) elementwise over `operands` broadcast to `shape`,
 * into a new tensor of `dtype`. The caller has already checked that the shapes broadcast.
 */
export function elementwise(
  expr: string,
  operands: readonly Tensor[],
  shape: Shape,
  dtype: DType,
): Tensor {
  const n = sizeOf(shape);
  const out = allocate(dtype, n);
  if (n === 0) return new Tensor(out, shape, dtype);
  if (operands.every((t) => shapesEqual(t.shape, shape))) {
    const key = `${expr}|${out.constructor.name}|${operands.map((t) => t.data.constructor.name).join(",")}`;
    const kernel = compile(expr, operands.length, key);
    kernel(out, n, new Int32Array([n]), 1, ...operands.flatMap((t) => [t.data, unitStride, 0]));
  } else {
    strided(
      expr,
      out,
      shape,
      operands.map((t) => ({ data: t.data, strides: broadcastStrides(t.shape, shape), offset: 0 })),
    );
  }
  return new Tensor(out, shape, dtype);
}

/** `target += g`, in place, for a gradient buffer the engine owns; `g` may broadcast to it. */
export function addInPlace(target: Tensor, g: Tensor): void {
  const out = target.data;
  const src = g.data;
  if (shapesEqual(target.shape, g.shape)) {
    for (let i = 0; i < out.length; i++) out[i] += src[i];
    return;
  }
  const sum = elementwise("a + b", [target, g], target.shape, target.dtype);
  out.set(sum.data);
}
