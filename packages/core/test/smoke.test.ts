import { describe, expect, it } from "vitest";
import * as F from "../src/index.js";
import { gradcheck, gradgradcheck } from "../src/testing/index.js";

const t = (v: number[][]) => F.tensor(v, { dtype: "float64" });
describe("smoke", () => {
  it("grads", () => {
    const a = t([
      [0.3, 0.7],
      [0.2, 0.9],
    ]);
    const b = t([[0.5, 1.5]]);
    const y = t([
      [1, 0],
      [0, 1],
    ]);
    const cases: [string, (...x: F.Tensor[]) => F.Tensor, F.Tensor[]][] = [
      ["mul", (x, z) => F.mul(x, z), [a, b]],
      ["div", (x, z) => F.div(x, z), [a, b]],
      ["pow", (x, z) => F.pow(x, z), [a, b]],
      ["pow3", (x) => F.pow(x, 3), [a]],
      ["sigmoid", (x) => F.sigmoid(x), [a]],
      ["bce", (x, z) => F.binaryCrossEntropy(x, z), [y, a]],
      ["bcel", (x, z) => F.bceWithLogits(x, z), [a, y]],
      ["matmul", (x, z) => F.matmul(x, F.transpose(z)), [a, b]],
      ["max", (x) => F.max(x, { axis: 1 }), [a]],
      ["lse", (x) => F.logSoftmax(x, 0), [a]],
      [
        "gatherNd",
        (x) =>
          F.gatherNd(
            x,
            F.tensor(
              [
                [1, 0],
                [1, 0],
                [0, 1],
              ],
              { dtype: "int32" },
            ),
          ),
        [a],
      ],
      ["gather", (x) => F.gather(x, F.tensor([1, 1, 0], { dtype: "int32" }), 1), [a]],
      ["where", (x, z) => F.where(F.greater(x, 0.5), F.exp(x), z), [a, b]],
      ["slice", (x) => F.slice(x, [0, 1], [2, 1]), [a]],
      ["concat", (x, z) => F.concat([x, z], 0), [a, b]],
      ["clip", (x) => F.clip(x, 0.25, 0.8), [a]],
    ];
    for (const [name, f, xs] of cases) {
      const r1 = gradcheck(f, xs);
      const r2 = gradgradcheck(f, xs);
      expect([name, r1.ok, r2.ok, r1.maxAbsError, r2.maxAbsError]).toEqual([
        name,
        true,
        true,
        r1.maxAbsError,
        r2.maxAbsError,
      ]);
    }
  });
});
