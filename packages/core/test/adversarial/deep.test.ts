// Long chains of lazy steps compute without recursion limits, forward and backward.
import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";

describe("deep lazy chains", () => {
  it("reads and backpropagates through 20 000 lazy steps above the fusion threshold", () => {
    const n = 16_384;
    const x = F.zeros([n], { dtype: "float64", requiresGrad: true });
    let y: F.Tensor = x;
    for (let i = 0; i < 20_000; i++) y = F.add(y, 0.5);
    // 20 000 additions of 0.5 to 0 are exact in float64.
    expect(y.read()[0]).toBe(10_000);
    expect(y.read()[n - 1]).toBe(10_000);
    let z: F.Tensor = x;
    for (let i = 0; i < 20_000; i++) z = F.add(z, 0.5);
    const loss = F.sum(z);
    loss.backward();
    expect(loss.item()).toBe(10_000 * n);
    expect(x.grad!.read()[0]).toBe(1);
    expect(x.grad!.read()[n - 1]).toBe(1);
  }, 120_000); // 40 000 ops on 16 384 elements: a few seconds alone, more on a shared host
});
