import { describe, expect, it } from "vitest";
import {
  add,
  argwhere,
  binaryCrossEntropy,
  equal,
  gatherNd,
  grad,
  matmul,
  mul,
  pow,
  sum,
  tensor,
  where,
} from "../src/index.js";

describe("smoke", () => {
  it("runs", () => {
    const x = tensor([1, 2, 3], { requiresGrad: true });
    const y = sum(mul(x, x));
    y.backward();
    expect(Array.from(x.grad!.data)).toEqual([2, 4, 6]);
    const d2 = grad((v) => sum(grad((u) => sum(pow(u, 3)))(v)));
    expect(Array.from(d2(tensor([1, 2], { dtype: "float64" })).data)).toEqual([6, 12]);
    const s = tensor([
      [1, 0, -1],
      [0, 1, 1],
    ]);
    const idx = argwhere(equal(s, 1));
    expect(idx.toArray()).toEqual([
      [0, 0],
      [1, 1],
      [1, 2],
    ]);
    const p = tensor([[0.9, 0.2]], { requiresGrad: true });
    const l = sum(binaryCrossEntropy(tensor([[1, 0]]), p));
    l.backward();
    console.log(l.item(), p.grad!.toString(), add(x, 1).toString());
    console.log(
      matmul(
        tensor([
          [1, 2],
          [3, 4],
        ]),
        tensor([[1], [1]]),
      ).toString(),
    );
    console.log(where(equal(s, 1), s, 5).toString(), gatherNd(s, idx).toString());
  });
});
