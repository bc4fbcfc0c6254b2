/** Tests of ops/compare.ts: bool results with broadcasting, NaN, dtype checks, no gradient. */

import { describe, expect, it } from "vitest";
import {
  equal,
  greater,
  greaterEqual,
  less,
  lessEqual,
  logicalAnd,
  logicalNot,
  logicalOr,
  notEqual,
  type Tensor,
  tensor,
} from "../../src/index.js";

const comparisons = [
  ["equal", equal],
  ["notEqual", notEqual],
  ["greater", greater],
  ["greaterEqual", greaterEqual],
  ["less", less],
  ["lessEqual", lessEqual],
] as const;

describe("comparisons", () => {
  it("compare elementwise with broadcasting, into bool", () => {
    const col = tensor([[1], [2]]);
    const row = tensor([1, 2, 3]);
    // out[i][j] compares col[i] with row[j].
    expect(equal(col, row).toArray()).toEqual([
      [true, false, false],
      [false, true, false],
    ]);
    expect(notEqual(col, row).toArray()).toEqual([
      [false, true, true],
      [true, false, true],
    ]);
    expect(greater(col, row).toArray()).toEqual([
      [false, false, false],
      [true, false, false],
    ]);
    expect(greaterEqual(col, row).toArray()).toEqual([
      [true, false, false],
      [true, true, false],
    ]);
    expect(less(col, row).toArray()).toEqual([
      [false, true, true],
      [false, false, true],
    ]);
    expect(lessEqual(col, row).toArray()).toEqual([
      [true, true, true],
      [false, true, true],
    ]);
    for (const [, op] of comparisons) expect(op(col, row).dtype).toBe("bool");
  });

  it("takes plain numbers on either side, in the tensor's dtype", () => {
    const state = tensor([-1, 0, 1, 1], { dtype: "int32" });
    expect(equal(state, 1).toArray()).toEqual([false, false, true, true]);
    expect(less(0, state).toArray()).toEqual([false, false, true, true]);
    // 0.1 next to float32 is fround(0.1), which equals the stored float32 0.1.
    expect(equal(tensor([0.1], { dtype: "float32" }), 0.1).item()).toBe(1);
    expect(greaterEqual(tensor([2], { dtype: "int32" }), 1.5).toArray()).toEqual([true]);
  });

  it("compares mixed dtypes by value", () => {
    const ints = tensor([1, 2], { dtype: "int32" });
    const floats = tensor([1, 2.5], { dtype: "float64" });
    expect(equal(ints, floats).toArray()).toEqual([true, false]);
    expect(less(ints, floats).toArray()).toEqual([false, true]);
  });

  it("NaN is unequal to everything, itself included", () => {
    const x = tensor([Number.NaN, 1]);
    expect(equal(x, x).toArray()).toEqual([false, true]);
    expect(notEqual(x, x).toArray()).toEqual([true, false]);
    for (const op of [greater, greaterEqual, less, lessEqual]) {
      expect(op(x, Number.NaN).toArray()).toEqual([false, false]);
    }
  });

  it("equal and notEqual accept two bool tensors; ordering does not", () => {
    const a = tensor([true, false, true]);
    const b = tensor([true, true, false]);
    expect(equal(a, b).toArray()).toEqual([true, false, false]);
    expect(notEqual(a, b).toArray()).toEqual([false, true, true]);
    expect(() => greater(a, b)).toThrow("greater: a must be a numeric tensor, got bool");
    expect(() => less(tensor([1]), b)).toThrow("less: b must be a numeric tensor, got bool");
  });

  it("has no gradient", () => {
    const x = tensor([1, 2], { dtype: "float64", requiresGrad: true });
    for (const [, op] of comparisons) expect(op(x, 1).requiresGrad).toBe(false);
  });

  it("mismatched shapes name the op and both shapes", () => {
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const b = tensor([1, 2]);
    for (const [name, op] of comparisons) {
      expect(() => op(a, b)).toThrow(`${name}: shapes [2, 3] and [2] cannot be broadcast together`);
    }
  });

  it("a number where a tensor is needed", () => {
    expect(() => equal(1, 1)).toThrow("equal: at least one operand must be a Tensor");
    expect(() => less(tensor([1]), [1] as unknown as Tensor)).toThrow(
      "less: b must be a Tensor, got an array",
    );
  });
});

describe("logical ops", () => {
  it("combine bool tensors with broadcasting", () => {
    const col = tensor([[true], [false]]);
    const row = tensor([true, false]);
    expect(logicalAnd(col, row).toArray()).toEqual([
      [true, false],
      [false, false],
    ]);
    expect(logicalOr(col, row).toArray()).toEqual([
      [true, true],
      [true, false],
    ]);
    expect(logicalNot(row).toArray()).toEqual([false, true]);
    expect(logicalNot(row).dtype).toBe("bool");
  });

  it("reject non-bool operands", () => {
    const ints = tensor([1, 0], { dtype: "int32" });
    const flags = tensor([true, false]);
    expect(() => logicalAnd(ints, flags)).toThrow("logicalAnd: a must be a bool tensor, got int32");
    expect(() => logicalOr(flags, tensor([1, 0]))).toThrow(
      "logicalOr: b must be a bool tensor, got float32",
    );
    expect(() => logicalNot(ints)).toThrow("logicalNot: x must be a bool tensor, got int32");
  });

  it("reject mismatched shapes and numbers", () => {
    expect(() => logicalAnd(tensor([true, false]), tensor([true, false, true]))).toThrow(
      "logicalAnd: shapes [2] and [3] cannot be broadcast together",
    );
    expect(() => logicalNot(true as unknown as Tensor)).toThrow(
      "logicalNot: x must be a Tensor, got boolean",
    );
    expect(() => logicalOr(tensor([true]), 1 as unknown as Tensor)).toThrow(
      "logicalOr: b must be a Tensor, got number",
    );
  });
});
