// Writes into a tensor's memory never reach a result computed before them, lazily or not, and
// autograd refuses to backpropagate through an op whose saved values were modified since.
import { describe, expect, it } from "vitest";
import * as F from "../../src/index.js";

/** Sizes on both sides of the 16 384-element fusion threshold. */
const sizes = [10, 20_000];

describe("in-place writes and laziness", () => {
  for (const n of sizes) {
    it(`a result made before a write keeps the old values (${n} elements)`, () => {
      const a = F.ones([n]);
      const b = F.mul(a, 3);
      a.data[0] = 100;
      a.markModified();
      expect(b.read()[0]).toBe(3);
      // A write through memory handed out before the op was made, without markModified.
      const c = F.ones([n]);
      const held = c.data;
      const d = F.mul(c, 3);
      held[0] = 100;
      expect(d.read()[0]).toBe(3);
      expect(F.mul(c, 3).read()[0]).toBe(300);
    });

    it(`write() and .data writes are seen by later ops (${n} elements)`, () => {
      const a = F.zeros([n]);
      a.write((d) => {
        d[1] = 2;
      });
      expect(F.mul(a, 2).read()[1]).toBe(4);
      a.data[1] = 5;
      expect(F.mul(a, 2).read()[1]).toBe(10);
    });

    it(`backward through a tensor modified after it was recorded is an error (${n} elements)`, () => {
      const w = F.ones([n], { requiresGrad: true });
      const l = F.sum(F.mul(w, w));
      w.data[0] = 5;
      w.markModified();
      expect(() => l.backward()).toThrow(
        /'mul' needs for its gradient \(input 0, shape \[\d+\], float32\) was modified in place/,
      );
    });

    it(`reading a result, then writing an input its gradient does not need, is safe (${n} elements)`, () => {
      const x = F.ones([n], { requiresGrad: true });
      const y = F.mul(x, 2); // d/dx = 2 needs nothing of x
      const l = F.sum(F.add(y, 1));
      expect(l.item()).toBe(3 * n);
      x.write((d) => d.fill(7));
      l.backward();
      expect(x.grad!.read()[0]).toBe(2);
      expect(x.grad!.read()[n - 1]).toBe(2);
    });

    it(`an optimiser step after a pending loss keeps the loss's value (${n} elements)`, () => {
      const w = F.full([n], 2, { requiresGrad: true });
      const loss = F.sum(F.mul(w, 3)); // 6n, not computed yet when lazy
      loss.backward();
      const opt = new F.optim.SGD([w], { lr: 1 });
      opt.step(); // w becomes 2 - 3 = -1
      expect(loss.item()).toBe(6 * n);
      expect(w.read()[0]).toBe(-1);
    });
  }

  it("views share memory and version: a write through a reshape is seen, and checked", () => {
    const w = F.tensor([1, 2, 3, 4], { requiresGrad: true });
    const l = F.sum(F.mul(w, w));
    const v = F.reshape(w.detach(), [2, 2]);
    v.data[0] = 9;
    v.markModified();
    expect(w.read()[0]).toBe(9);
    expect(() => l.backward()).toThrow(/modified in place/);
  });
});
