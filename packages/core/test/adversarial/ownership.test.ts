// Gradient memory belongs to the leaf whose `.grad` it is: no two leaves, and no caller's tensor,
// ever share a gradient buffer that a later backward() adds into in place.
import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";
import { withFusion } from "../../src/testing/index.js";

/** Runs `fn` once op by op and once with every elementwise chain fused. */
function bothPaths(fn: () => void): void {
  withFusion("opByOp", fn);
  withFusion("fused", fn);
}

describe("gradient ownership", () => {
  it("accumulates two backward passes through add into separate buffers", () => {
    bothPaths(() => {
      const x = F.tensor([1, 2], { requiresGrad: true });
      const y = F.tensor([3, 4], { requiresGrad: true });
      F.sum(F.add(x, y)).backward();
      expect(x.grad!.read()).not.toBe(y.grad!.read());
      F.sum(F.add(x, y)).backward();
      // d/dx Σ(x + y) = 1 per pass: two passes give 2 each, for x and y alike.
      expect(x.grad!.toArray()).toEqual([2, 2]);
      expect(y.grad!.toArray()).toEqual([2, 2]);
    });
  });

  it("never writes into the caller's upstream gradient", () => {
    bothPaths(() => {
      const x = F.tensor([1, 2, 3], { requiresGrad: true });
      const up = F.tensor([1, 1, 1]);
      x.backward(up); // x is a leaf: its gradient is the upstream itself, copied
      x.backward(up);
      F.reshape(F.mul(x, 1), [3]).backward(up);
      expect(up.toArray()).toEqual([1, 1, 1]);
      expect(x.grad!.toArray()).toEqual([3, 3, 3]);
    });
  });

  it("gives views, reshapes and detached copies gradients of their own", () => {
    bothPaths(() => {
      const x = F.tensor([1, 2, 3, 4], { requiresGrad: true });
      const y = F.tensor([5, 6, 7, 8], { requiresGrad: true });
      // reshape's rule hands on a view of the upstream; identity and broadcastTo hand it on whole.
      const loss = () =>
        F.sum(F.add(F.reshape(F.add(x, y), [2, 2]), F.broadcastTo(F.tensor(0), [2, 2])));
      loss().backward();
      loss().backward();
      expect(x.grad!.toArray()).toEqual([2, 2, 2, 2]);
      expect(y.grad!.toArray()).toEqual([2, 2, 2, 2]);
      const g = x.grad!;
      const copy = g.detach();
      F.sum(x).backward();
      // The detached copy shares the buffer, as in PyTorch: it sees the in-place accumulation.
      expect(copy.toArray()).toEqual([3, 3, 3, 3]);
      expect(y.grad!.toArray()).toEqual([2, 2, 2, 2]);
    });
  });

  it("keeps the gradients grad() returns apart", () => {
    const [gx, gy] = F.grad((a: F.Tensor, b: F.Tensor) => F.sum(F.add(a, b)), {
      argnums: [0, 1],
    })(F.tensor([1, 2]), F.tensor([3, 4]));
    expect(gx.read()).not.toBe(gy.read());
    gx.data[0] = 7;
    expect(gy.toArray()).toEqual([1, 1]);
  });

  it("does not add into a .grad the user assigned", () => {
    const x = F.tensor([1, 2], { requiresGrad: true });
    const mine = F.tensor([10, 10]);
    x.grad = mine;
    F.sum(F.mul(x, 3)).backward();
    expect(mine.toArray()).toEqual([10, 10]);
    expect(x.grad.toArray()).toEqual([13, 13]);
  });

  it("places a scattered gradient exactly as adding into zeros would (+0, never -0)", () => {
    bothPaths(() => {
      const x = F.tensor([[1], [2], [3]], { dtype: "float64", requiresGrad: true });
      const idx = F.tensor([[0], [2]], { dtype: "int32" });
      // d/dx of Σ(gatherNd(x) · -0) is -0 · 1 at the gathered rows; 0 + -0 is +0.
      F.sum(F.mul(F.gatherNd(x, idx), -0)).backward();
      for (const v of x.grad!.read()) expect(Object.is(v, -0)).toBe(false);
    });
  });
});
