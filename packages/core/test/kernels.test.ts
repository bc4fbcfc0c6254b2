// The kernel IR and its JavaScript renderer, below the ops: hash-consing, conversions, the
// scheduling of the loop body (each node at most once on every path) and the outputs.
import { describe, expect, it } from "vitest";
import { constant, type Expr, input, ir, type Lowerings, node } from "../src/kernels/ir.js";
import { javascript, javascriptSource } from "../src/kernels/javascript.js";
import type { Kernel } from "../src/kernels/kernel.js";

const x = input(0, "float64");
const y = input(1, "float64");

/** A kernel over two float64 inputs of `n` contiguous elements. */
function over(n: number, value: Expr, output: Kernel["output"] = { kind: "sum" }): Kernel {
  const strided = { kind: "strided", dtype: "float64", strides: [1], offset: 0 } as const;
  return { shape: [n], inputs: [strided, strided], value, output, sums: [] };
}

/** How often `needle` occurs in `text`. */
const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

describe("the kernel IR", () => {
  it("is hash-consed: equal expressions are one node, other dtypes or constants are not", () => {
    expect(ir.add(x, ir.exp(y))).toBe(ir.add(x, ir.exp(y)));
    expect(ir.add(x, 1)).toBe(ir.add(x, constant(1, "float64")));
    expect(ir.exp(input(0, "float32"))).not.toBe(ir.exp(x));
    // 0 and −0 are different constants (1 / −0 is −∞).
    expect(constant(-0, "float64")).not.toBe(constant(0, "float64"));
  });

  it("types results: arithmetic in the wider dtype, comparisons and logic in bool", () => {
    expect(ir.mul(input(0, "float32"), x).dtype).toBe("float64");
    expect(ir.lt(x, 0).dtype).toBe("bool");
    expect(ir.select(ir.lt(x, 0), input(1, "float32"), x).dtype).toBe("float64");
  });

  it("marks expressions that call a transcendental function as heavy, by the ops' declared cost", () => {
    expect(ir.add(x, y).heavy).toBe(false);
    expect(ir.add(x, ir.log(y)).heavy).toBe(true);
  });

  it("converts only what is not already exact in the target dtype", () => {
    const f = input(0, "float32");
    expect(ir.convert(f, "float32")).toBe(f);
    expect(ir.convert(ir.neg(f), "float32")).toBe(ir.neg(f));
    expect(ir.convert(ir.mul(f, f), "float32").op).toBe("convert");
    const i = input(0, "int32");
    expect(ir.convert(ir.imul(i, i), "int32")).toBe(ir.imul(i, i));
    expect(ir.convert(ir.add(i, i), "int32").op).toBe("convert");
  });

  it("refuses a wrong number of arguments and a conversion into bool", () => {
    expect(() => node("add", "float64", [x])).toThrow("ir: add takes 2 arguments, got 1");
    expect(() => ir.convert(x, "bool")).toThrow("ir: no conversion into bool");
  });

  it("needs a lowering of every op in every renderer (a type error otherwise)", () => {
    // @ts-expect-error: a renderer with only `add` lacks the other ops.
    const partial: Lowerings<string> = { add: ([a, b]) => `${a} + ${b}` };
    expect(Object.keys(partial)).toEqual(["add"]);
  });
});

describe("the JavaScript renderer", () => {
  const data = [new Float64Array([1, -2, 3]), new Float64Array([0.5, 4, -1])];

  it("sums, stores, scatters and places", () => {
    // Σ x·y = 0.5 − 8 − 3 = −10.5.
    expect(javascript.run(over(3, ir.mul(x, y)), { inputs: data, out: null, sums: null })).toBe(
      -10.5,
    );
    const out = new Float64Array(3);
    javascript.run(over(3, ir.sub(x, y), { kind: "store", dtype: "float64" }), {
      inputs: data,
      out,
      sums: null,
    });
    expect([...out]).toEqual([0.5, -6, 4]);
    // Rows of one element at starts 2, 0, 2: x lands on out[2] twice (1 + 3) and out[0] once (−2).
    const rows = { index: new Int32Array([2, 0, 2]), scale: 1, start: 0 };
    const scattered = new Float64Array([10, 10, 10]);
    javascript.run(over(3, x, { kind: "scatter", dtype: "float64", rows, width: 1 }), {
      inputs: data,
      out: scattered,
      sums: null,
    });
    expect([...scattered]).toEqual([8, 10, 14]);
    // Placing −0 into a zero buffer gives +0, as adding would.
    const placed = new Float64Array(2);
    const disjoint = { index: new Int32Array([1, 0]), scale: 1, start: 0 };
    javascript.run(
      over(2, ir.mul(x, -0), { kind: "place", dtype: "float64", rows: disjoint, width: 1 }),
      { inputs: data, out: placed, sums: null },
    );
    expect(Object.is(placed[0], 0) && Object.is(placed[1], 0)).toBe(true);
  });

  it("computes further sums alongside the value", () => {
    const sums = new Float64Array(2);
    const kernel = { ...over(3, x), sums: [y, ir.mul(y, y)] };
    // Σ x = 2, Σ y = 3.5, Σ y² = 0.25 + 16 + 1 = 17.25.
    expect(javascript.run(kernel, { inputs: data, out: null, sums })).toBe(2);
    expect([...sums]).toEqual([3.5, 17.25]);
  });

  it("computes a node read twice once", () => {
    const e = ir.exp(x);
    const source = javascriptSource(over(3, ir.add(e, ir.mul(e, y))));
    expect(occurrences(source, "Math.exp(")).toBe(1);
  });

  it("computes a node needed on one side of a choice only there, and once per path", () => {
    // log(x) on both sides of one choice: each path computes it once, so it appears on both sides.
    const l = ir.log(x);
    const bothSides = ir.select(ir.gt(y, 0), ir.neg(l), ir.mul(l, y));
    const source = javascriptSource(over(3, bothSides));
    expect(occurrences(source, "Math.log(")).toBe(2);
    // Needed under two different choices: computed once before both.
    const twoChoices = ir.add(ir.select(ir.gt(y, 0), l, 0), ir.select(ir.lt(y, 1), l, 1));
    expect(occurrences(javascriptSource(over(3, twoChoices)), "Math.log(")).toBe(1);
  });

  it("gives the values of the expression however it schedules it", () => {
    // exp(x) read twice on the else side only: [x=1,y=.5] → e + e·y = 1.5e; [x=−2,y=4] → 0;
    // [x=3,y=−1] → e³ − e³ = 0.
    const e = ir.exp(x);
    const value = ir.select(ir.gt(y, 1), 0, ir.add(e, ir.mul(e, y)));
    const out = new Float64Array(3);
    javascript.run(over(3, value, { kind: "store", dtype: "float64" }), {
      inputs: data,
      out,
      sums: null,
    });
    expect([...out]).toEqual([Math.E + Math.E * 0.5, 0, Math.exp(3) - Math.exp(3)]);
  });

  it("skips the float32 rounding of a value that is only stored into a float32 array", () => {
    const f = input(0, "float32");
    const kernel: Kernel = {
      shape: [2],
      inputs: [{ kind: "strided", dtype: "float32", strides: [1], offset: 0 }],
      value: ir.convert(ir.mul(f, f), "float32"),
      output: { kind: "store", dtype: "float32" },
      sums: [],
    };
    expect(javascriptSource(kernel)).not.toContain("Math.fround(");
    const out = new Float32Array(2);
    javascript.run(kernel, { inputs: [new Float32Array([0.1, 3])], out, sums: null });
    expect([...out]).toEqual([Math.fround(Math.fround(0.1) ** 2), 9]);
  });

  it("runs nothing for an empty shape", () => {
    const sums = new Float64Array([7]);
    const kernel = { ...over(0, x), sums: [y] };
    expect(javascript.run(kernel, { inputs: data, out: null, sums })).toBe(0);
    expect([...sums]).toEqual([0]);
  });
});
