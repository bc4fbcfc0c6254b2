// The autodiff API used the wrong way round: every misuse is a clear error naming what was wrong,
// never a silently wrong gradient.
import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";
import { withFusion } from "../../src/testing/index.js";

describe("misuse of the autodiff API", () => {
  it("rejects upstream gradients of the wrong shape, and a non-tensor upstream", () => {
    const x = F.tensor([1, 2, 3], { requiresGrad: true });
    const y = F.mul(x, 2);
    expect(() => y.backward(F.tensor([1, 2]))).toThrow(
      /upstream gradient of shape \[2\] does not match the output's shape \[3\]/,
    );
    expect(() => y.backward([1, 1, 1] as unknown as F.Tensor)).toThrow(
      /backward: the upstream gradient must be a Tensor of shape \[3\], got an array/,
    );
  });

  it("rejects a second walk through a released graph, and allows it when retained", () => {
    const x = F.tensor([1, 2], { requiresGrad: true });
    const loss = F.sum(F.mul(x, x));
    loss.backward(undefined, { retainGraph: true });
    loss.backward();
    expect(x.grad!.toArray()).toEqual([4, 8]); // 2x, twice
    expect(() => loss.backward()).toThrow(/already released by an earlier backward\(\)/);
  });

  it("gives no gradient to a detached branch and says so when nothing requires one", () => {
    const x = F.tensor([1, 2], { requiresGrad: true });
    const loss = F.sum(F.mul(x.detach(), 3));
    expect(() => loss.backward()).toThrow(/does not require gradients/);
  });

  it("refuses requiresGrad on an op's result being turned off, and on integer leaves", () => {
    const x = F.tensor([1, 2], { requiresGrad: true });
    const y = F.mul(x, 2);
    expect(() => {
      y.requiresGrad = false;
    }).toThrow(/use detach\(\)/);
    expect(() => {
      F.tensor([1], { dtype: "int32" }).requiresGrad = true;
    }).toThrow(/only float32 and float64/);
  });

  it("records nothing under noGrad, even on pending tensors", () => {
    for (const mode of ["fused", "opByOp"] as const) {
      withFusion(mode, () => {
        const x = F.tensor([1, 2, 3], { requiresGrad: true });
        const y = F.noGrad(() => F.sum(F.mul(x, x)));
        expect(y.requiresGrad).toBe(false);
        expect(y.item()).toBe(14);
      });
    }
  });

  it("rejects grad() of functions that do not return a float scalar", () => {
    const x = F.tensor([1, 2]);
    expect(() => F.grad((t: F.Tensor) => F.mul(t, 2))(x)).toThrow(
      /must return a float scalar tensor, got a float32 tensor of shape \[2\]/,
    );
    expect(() => F.grad((t: F.Tensor) => F.cast(F.sum(t), "int32"))(x)).toThrow(
      /float scalar tensor, got a int32/,
    );
    expect(() => F.grad((_t: F.Tensor) => 3 as unknown as F.Tensor)(x)).toThrow(/got number/);
    expect(() => F.grad((t: F.Tensor) => F.sum(t), { argnums: 1 })(x)).toThrow(
      /argument 1 must be a Tensor/,
    );
  });

  it("gives the same gradients fused and op by op when backward runs twice with a retained graph", () => {
    const results = (["fused", "opByOp"] as const).map((mode) =>
      withFusion(mode, () => {
        const x = F.tensor([0.5, 1.5, -2], { dtype: "float64", requiresGrad: true });
        const loss = F.sum(F.mul(F.exp(x), x));
        loss.backward(undefined, { retainGraph: true });
        loss.backward();
        return Array.from(x.grad!.read());
      }),
    );
    // d/dx Σ x eˣ = (1 + x) eˣ, twice.
    const expected = [0.5, 1.5, -2].map((v) => 2 * (1 + v) * Math.exp(v));
    for (let i = 0; i < 3; i++) expect(results[0][i]).toBeCloseTo(expected[i], 12);
    expect(results[0]).toEqual(results[1]);
  });

  it("checks the options of backward() and grad() at run time", () => {
    const x = F.tensor([1, 2], { requiresGrad: true });
    const loss = F.sum(F.mul(x, x));
    expect(() => loss.backward(undefined, { retain: true } as never)).toThrow(
      /backward: unknown option "retain" \(expected retainGraph, createGraph\)/,
    );
    expect(() => loss.backward(undefined, { createGraph: 1 } as never)).toThrow(
      /backward: option createGraph must be true or false, got 1/,
    );
    expect(() => F.grad((t: F.Tensor) => F.sum(t), { argnum: 0 } as never)(x)).toThrow(
      /grad: unknown option "argnum"/,
    );
  });
});
