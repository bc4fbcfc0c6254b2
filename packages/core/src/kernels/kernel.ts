/**
 * What an elementwise kernel computes, with no tensors in it: a loop shape, how each input is read,
 * the IR expression of its value, and where that value goes; and the interface of the renderers
 * that turn such a description into code.
 */

import type { DataArray, DType } from "../dtype.js";
import type { Shape } from "../shape.js";
import type { Expr } from "./ir.js";

/**
 * Where the rows of a gather start: row `r` at `start + index[r] · scale`. A table of offsets has
 * scale 1 and start 0; `argwhere`'s flat positions serve as a table for any row-major layout.
 */
export interface RowStarts {
  readonly index: Int32Array;
  readonly scale: number;
  readonly start: number;
}

/**
 * How a kernel reads one input, element by element in the loop's row-major order: one element read
 * once (`scalar`), with strides over the loop's shape (broadcasts, and views such as slices), or as
 * rows of `width` elements `colStride` apart gathered from the row starts `rows` (a lazy `gatherNd`).
 * The IR's `input(k)` is element i of input k so read.
 */
export type InputAccess =
  | { readonly kind: "scalar"; readonly dtype: DType; readonly offset: number }
  | {
      readonly kind: "strided";
      readonly dtype: DType;
      readonly strides: readonly number[];
      readonly offset: number;
    }
  | {
      readonly kind: "rows";
      readonly dtype: DType;
      readonly rows: RowStarts;
      readonly width: number;
      readonly colStride: number;
    };

/**
 * Where a kernel's value goes: stored in row-major order into an array of `dtype` (`store`),
 * summed in double precision (`sum`), added into an array at row starts, rows of `width` elements
 * (`scatter`, the adjoint of a gather; `disjoint` when no two rows overlap, so that they may be
 * added in any order), or stored there (`place`: disjoint rows of a zero buffer, which gives
 * exactly what adding would).
 */
export type KernelOutput =
  | { readonly kind: "store"; readonly dtype: DType }
  | { readonly kind: "sum" }
  | {
      readonly kind: "scatter" | "place";
      readonly dtype: DType;
      readonly rows: RowStarts;
      readonly width: number;
      readonly disjoint?: boolean;
    };

/**
 * An elementwise kernel: `value` (an IR expression over `input(k)`, k indexing `inputs`) for each
 * element of `shape`, written to `output`; each of `sums` is summed over the loop too.
 */
export interface Kernel {
  readonly shape: Shape;
  readonly inputs: readonly InputAccess[];
  readonly value: Expr;
  readonly output: KernelOutput;
  readonly sums: readonly Expr[];
}

/** The arrays a kernel runs on: one per input, the output array (none for `sum`), the sums' results. */
export interface KernelArrays {
  readonly inputs: readonly DataArray[];
  readonly out: DataArray | null;
  /** Receives `kernel.sums`, in order. */
  readonly sums: Float64Array | null;
}

/**
 * A code generator for kernels. `run` computes `kernel` on `arrays` and returns the sum of its
 * value for a `sum` output (0 otherwise); a renderer compiles each distinct kernel once (keyed on
 * the IR nodes' ids and the inputs' access kinds and dtypes, not on the arrays or the row tables).
 *
 * A renderer lowers every IR op (its `Lowerings`, a total mapped type over `IrOp`), and must give
 * what the JavaScript renderer gives: float32 rounding only where a `convert` node is (values of
 * other nodes may be held more precisely), int32 values wrapped by `convert`, a `select` reading
 * only the side it chooses, stores into a float32 array rounding as `Math.fround` does, sums in
 * double precision in row-major order, and nothing for an empty shape.
 */
export interface Renderer {
  readonly name: string;
  /** Whether this renderer can run `kernel` (a renderer may cover only some dtypes or outputs). */
  supports(kernel: Kernel): boolean;
  run(kernel: Kernel, arrays: KernelArrays): number;
}

/** How a kernel's loop walks memory: its (coalesced) loop shape and each strided input's strides. */
export interface Layout {
  readonly shape: Int32Array;
  /** Per input: its strides over `shape` (empty for scalars and rows). */
  readonly strides: readonly Int32Array[];
  /** Whether each innermost run of the loop is one whole row of every row input and of the output. */
  readonly rowwise: boolean;
}

/**
 * Drops size-1 axes and merges neighbours that every strided input reads contiguously, so that the
 * common cases (same shapes, a scalar, a trailing row) become a single flat inner loop.
 */
function coalesce(
  shape: Shape,
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
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
    for (const s of outStrides) s.push(0);
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * The loop shape of `kernel`: axes coalesced, and the innermost one split at the rows' width when
 * every row input (and a scattered output) has rows of one width.
 */
export function layout(kernel: Pick<Kernel, "shape" | "inputs" | "output">): Layout {
  const stridedAt: number[] = [];
  kernel.inputs.forEach((input, k) => {
    if (input.kind === "strided") stridedAt.push(k);
  });
  const c = coalesce(
    kernel.shape,
    stridedAt.map((k) => (kernel.inputs[k] as { strides: readonly number[] }).strides),
  );
  const out = kernel.output;
  let width = out.kind === "scatter" || out.kind === "place" ? out.width : 0;
  let rowwise = true;
  for (const input of kernel.inputs) {
    if (input.kind !== "rows") continue;
    if (width === 0) width = input.width;
    else if (input.width !== width) rowwise = false;
  }
  const rank = c.shape.length;
  const last = c.shape[rank - 1];
  let shape = c.shape;
  let strides = c.strides;
  if (width === 0 || last % width !== 0) rowwise = false;
  else if (rowwise && last !== width) {
    shape = [...shape.slice(0, rank - 1), last / width, width];
    strides = strides.map((s) => [...s.slice(0, rank - 1), s[rank - 1] * width, s[rank - 1]]);
  }
  const perInput = kernel.inputs.map(() => new Int32Array(0));
  stridedAt.forEach((k, i) => {
    perInput[k] = Int32Array.from(strides[i]);
  });
  return { shape: Int32Array.from(shape), strides: perInput, rowwise };
}
