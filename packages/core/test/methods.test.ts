/** Tests of methods.ts: the op methods of Tensor are their functions, values and gradients. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  add,
  methodNames,
  mul,
  relu,
  reshape,
  softmax,
  sum,
  type Tensor,
  tensor,
  transpose,
} from "../src/index.js";
import { assertGradcheck, floatTensor } from "../src/testing/index.js";

describe("Tensor methods", () => {
  it("chain as PyTorch and tfjs code does, with the values of the functions", () => {
    const x = tensor([-1, 2, -3, 4]);
    const y = tensor([0.5, 0.5, 5, 5]);
    // relu([-0.5, 2.5, 2, 9]) = [0, 2.5, 2, 9], summed 13.5.
    expect(x.add(y).relu().sum().item()).toBe(13.5);
    expect(x.mul(2).reshape([2, 2]).transpose().toArray()).toEqual([
      [-2, -6],
      [4, 8],
    ]);
    expect(x.sum({ axis: 0, keepdims: true }).shape).toEqual([1]);
    expect(x.greater(0).toArray()).toEqual([false, true, false, true]);
    expect(x.cast("int32").dtype).toBe("int32");
  });

  it("give the gradients of the functions they stand for", () => {
    fc.assert(
      fc.property(floatTensor([2, 3], { avoid: [0] }), floatTensor([3], { avoid: [0] }), (a, b) => {
        const methods = (p: Tensor, q: Tensor) => p.mul(q).add(p).relu().mul(p).sum();
        const functions = (p: Tensor, q: Tensor) => sum(mul(relu(add(mul(p, q), p)), p));
        expect(methods(a, b).item()).toBe(functions(a, b).item());
        assertGradcheck(methods, [a, b]);
      }),
      { numRuns: 50 },
    );
  });

  it("exist for every listed function and are the function applied to the tensor", () => {
    const x = tensor([[0.25, 0.5, 0.75]], { dtype: "float64" });
    expect(methodNames.length).toBeGreaterThan(40);
    for (const name of methodNames) {
      expect(typeof (x as unknown as Record<string, unknown>)[name], name).toBe("function");
    }
    expect(x.transpose().shape).toEqual(transpose(x).shape);
    expect(x.reshape([3]).toArray()).toEqual(reshape(x, [3]).toArray());
    expect(x.softmax().toArray()).toEqual(softmax(x).toArray());
  });

  it("pass errors of the function through, named by the op", () => {
    expect(() => tensor([1, 2]).reshape([3])).toThrow(/^reshape: /);
    expect(() => tensor([1, 2]).add(tensor([1, 2, 3]))).toThrow(/^add: /);
  });
});
