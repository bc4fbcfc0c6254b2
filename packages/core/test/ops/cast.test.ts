/** Tests of ops/cast.ts: conversions by hand, the float↔float gradient, errors. */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cast, type DType, mul, sum, type Tensor, tensor } from "../../src/index.js";
import {
  assertGradcheck,
  assertGradgradcheck,
  floatTensor,
  shape,
} from "../../src/testing/index.js";

// The function is piecewise constant at float32's resolution (~1e-7 near 1), so the default
// eps of 1e-6 would measure rounding, not slope: a step of 1e-3 keeps that error near 1e-4.
const float32Step = { eps: 1e-3, atol: 1e-4 };

describe("gradient of cast between float32 and float64 (property)", () => {
  it("float64 → float32 → float64: first and second order", () => {
    const roundTrip = (x: Tensor) => cast(cast(x, "float32"), "float64");
    // Squared, so that the second derivative goes through cast's rule.
    const squaredTrip = (x: Tensor) => mul(roundTrip(x), cast(x, "float32"));
    fc.assert(
      fc.property(floatTensor(shape({ maxSide: 3 })), (x) => {
        assertGradcheck(roundTrip, [x], float32Step);
        assertGradcheck((y) => cast(y, "float32"), [x], float32Step);
        assertGradgradcheck(squaredTrip, [x], float32Step);
      }),
      { numRuns: 100 },
    );
  });
});

describe("conversions", () => {
  it("float to int32 truncates toward zero; NaN becomes 0", () => {
    const x = tensor([1.7, -1.7, 0.5, Number.NaN, 3]);
    const y = cast(x, "int32");
    expect(y.dtype).toBe("int32");
    expect(y.toArray()).toEqual([1, -1, 0, 0, 3]);
  });

  it("anything becomes bool by != 0 (NaN is not 0)", () => {
    expect(cast(tensor([0, -0, 2, -0.5, Number.NaN]), "bool").toArray()).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    expect(cast(tensor([0, 5], { dtype: "int32" }), "bool").toArray()).toEqual([false, true]);
  });

  it("bool and int32 become floats by value", () => {
    const flags = cast(tensor([true, false]), "float32");
    expect(flags.dtype).toBe("float32");
    expect(flags.toArray()).toEqual([1, 0]);
    expect(cast(tensor([-3, 7], { dtype: "int32" }), "float64").toArray()).toEqual([-3, 7]);
    expect(cast(tensor([true, false]), "int32").toArray()).toEqual([1, 0]);
  });

  it("float64 to float32 rounds to nearest", () => {
    expect(cast(tensor([0.1], { dtype: "float64" }), "float32").item()).toBe(Math.fround(0.1));
  });

  it("to the same dtype returns the tensor itself", () => {
    const x = tensor([1, 2], { dtype: "float64", requiresGrad: true });
    expect(cast(x, "float64")).toBe(x);
  });

  it("gradients flow between float dtypes and come back in the input's dtype", () => {
    const x = tensor([0.1, 2], { dtype: "float32", requiresGrad: true });
    const y = cast(x, "float64");
    expect(y.requiresGrad).toBe(true);
    // d/dx Σ 3·x = 3, computed in float64 and cast back to float32.
    sum(mul(y, 3)).backward();
    expect(x.grad!.dtype).toBe("float32");
    expect(Array.from(x.grad!.data)).toEqual([3, 3]);

    const z = tensor([0.1], { dtype: "float64", requiresGrad: true });
    sum(mul(cast(z, "float32"), 0.5)).backward();
    expect(z.grad!.dtype).toBe("float64");
    expect(z.grad!.item()).toBe(0.5);
  });

  it("into int32 or bool there is no gradient", () => {
    const x = tensor([0.5], { dtype: "float64", requiresGrad: true });
    expect(cast(x, "int32").requiresGrad).toBe(false);
    expect(cast(x, "bool").requiresGrad).toBe(false);
  });
});

describe("errors", () => {
  it("an unknown dtype names what was given and what is expected", () => {
    const x = tensor([1]);
    expect(() => cast(x, "float16" as DType)).toThrow(
      'cast: unknown dtype "float16" (expected float32, float64, int32 or bool)',
    );
    expect(() => cast(x, undefined as unknown as DType)).toThrow("cast: unknown dtype undefined");
  });

  it("a number where a tensor is needed", () => {
    expect(() => cast(1 as unknown as Tensor, "float32")).toThrow(
      "cast: x must be a Tensor, got number",
    );
  });
});
