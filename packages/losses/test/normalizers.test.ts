import { tensor } from "@focalgrad/core";
import { describe, expect, it } from "vitest";
import { anchorStateOf, batchNormalizer, imageNormalizer } from "../src/index.js";
import { f64 } from "./helpers.js";

describe("normaliser helpers", () => {
  const anchorState = tensor([
    [1, 0, -1, 1],
    [0, 0, -1, 0],
    [1, -1, -1, -1],
  ]);
  it("per batch (the seed): max(1, object anchors in the whole batch)", () => {
    // Objects: 2 in image 0, 0 in image 1, 1 in image 2 → max(1, 3) = 3
    expect(batchNormalizer(anchorState).item()).toBe(3);
    expect(batchNormalizer(tensor([[0, -1]])).item()).toBe(1);
    expect(batchNormalizer(tensor([], { shape: [0, 4] })).item()).toBe(1);
  });
  it("per image (torchvision's head): max(1, object anchors of that image)", () => {
    // [max(1, 2), max(1, 0), max(1, 1)] = [2, 1, 1]
    expect(Array.from(imageNormalizer(anchorState).data)).toEqual([2, 1, 1]);
  });
  it("float dtypes are kept, integer states give float32", () => {
    expect(batchNormalizer(f64([[1, 0]])).dtype).toBe("float64");
    expect(imageNormalizer(tensor([[1, 0]], { dtype: "int32" })).dtype).toBe("float32");
  });
  it("anchorStateOf takes the last column of yTrue", () => {
    expect(
      anchorStateOf(
        f64([
          [
            [0, 1, 1],
            [1, 0, -1],
          ],
        ]),
      ).toArray(),
    ).toEqual([[1, -1]]);
  });
  it("bad input", () => {
    expect(() => batchNormalizer(tensor([[2, 0]]))).toThrow(
      /batchNormalizer: anchorState must hold only -1 \(ignore\), 0 \(background\) or 1 \(object\), got 2 at \[0, 0\]/,
    );
    expect(() => imageNormalizer(tensor([1, 0]))).toThrow(
      /imageNormalizer: anchorState must have rank 2/,
    );
    expect(() => imageNormalizer(tensor([[true]]))).toThrow(
      /imageNormalizer: anchorState must be a float32, float64 or int32 tensor/,
    );
  });
});
