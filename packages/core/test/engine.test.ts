import { describe, expect, it } from "vitest";
import {
  add,
  cast,
  equal,
  exp,
  grad,
  greater,
  log,
  mul,
  noGrad,
  pow,
  reshape,
  sum,
  type Tensor,
  tensor,
  valueAndGrad,
  where,
} from "../src/index.js";
import { record } from "../src/tape.js";

const f64 = (values: number[], requiresGrad = false) =>
  tensor(values, { dtype: "float64", requiresGrad });
const values = (t: Tensor | null) => Array.from(t!.data);

describe("backward()", () => {
  it("fills .grad of leaves and accumulates across calls", () => {
    const x = f64([1, 2, 3], true);
    sum(mul(x, x)).backward(); // d/dx Σx² = 2x
    expect(values(x.grad)).toEqual([2, 4, 6]);
    sum(x).backward(); // + 1 each
    expect(values(x.grad)).toEqual([3, 5, 7]);
  });

  it("sums gradients of a tensor used twice and of broadcast inputs", () => {
    const x = f64([1, 2, 3], true);
    const y = tensor(
      [
        [1, 1, 1],
        [2, 2, 2],
      ],
      { dtype: "float64", requiresGrad: true },
    );
    // s = Σ_ij (x_j + y_ij) + Σ_j x_j  →  ds/dx_j = 2 (rows) + 1 = 3, ds/dy = 1.
    sum(add(sum(add(x, y)), sum(x))).backward();
    expect(values(x.grad)).toEqual([3, 3, 3]);
    expect(values(y.grad)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it("never adds in place into a gradient that a rule handed on to two inputs", () => {
    const a = f64([1], true);
    const b = f64([1], true);
    const t = add(a, b);
    // s = 3a + 2t = 5a + 2b: add's rule passes t's summed gradient (2) to both a and b, and a
    // then receives 3 more; adding that in place would also change b's gradient.
    sum(add(mul(a, 3), add(t, t))).backward();
    expect(values(a.grad)).toEqual([5]);
    expect(values(b.grad)).toEqual([2]);
  });

  it("returns each gradient in its input's dtype", () => {
    const a = tensor([1, 2], { dtype: "float32", requiresGrad: true });
    const b = tensor([3, 4], { dtype: "float64", requiresGrad: true });
    const out = mul(a, b);
    expect(out.dtype).toBe("float64");
    sum(out).backward();
    expect(a.grad!.dtype).toBe("float32");
    expect(values(a.grad)).toEqual([3, 4]);
    expect(b.grad!.dtype).toBe("float64");
  });

  it("needs an explicit upstream gradient for a non-scalar output", () => {
    const x = f64([1, 2], true);
    const y = mul(x, 3);
    expect(() => y.backward()).toThrow(
      /non-scalar output of shape \[2\] needs an explicit upstream gradient/,
    );
    expect(() => y.backward(f64([1, 2, 3]))).toThrow(
      /upstream gradient of shape \[3\] does not match the output's shape \[2\]/,
    );
    y.backward(f64([1, 10]));
    expect(values(x.grad)).toEqual([3, 30]);
  });

  it("refuses a tensor that does not require gradients", () => {
    expect(() => sum(f64([1, 2])).backward()).toThrow(/does not require gradients/);
  });

  it("refuses requiresGrad on integer and bool tensors", () => {
    expect(() => tensor([1, 2], { dtype: "int32", requiresGrad: true })).toThrow(
      /only float32 and float64 tensors can require gradients, got int32/,
    );
    const b = tensor([true]);
    expect(() => {
      b.requiresGrad = true;
    }).toThrow(/got bool/);
  });

  it("releases the graph, so a second walk needs retainGraph", () => {
    const x = f64([2], true);
    const y = mul(x, x);
    y.backward();
    expect(() => y.backward()).toThrow(/already released.*retainGraph/);
    const z = mul(x, x);
    z.backward(undefined, { retainGraph: true });
    z.backward();
    expect(values(x.grad)).toEqual([4 + 4 + 4]);
  });

  it("walks a chain of 100 000 ops without overflowing the stack", () => {
    const x = f64([1], true);
    let y: Tensor = x;
    for (let i = 0; i < 100_000; i++) y = mul(y, 1.0001);
    y.backward();
    // d/dx (1.0001^100000 x) = 1.0001^100000 = e^(100000 ln 1.0001) ≈ 22015.5
    expect(x.grad!.item()).toBeCloseTo(1.0001 ** 100_000, 3);
  }, 30_000);

  it("never calls the gradient rule of an input that needs no gradient", () => {
    const x = f64([1, 2], true);
    const constant = f64([5, 6]);
    const out = record(
      "probe",
      f64([0, 0]),
      [x, constant],
      [
        (g) => g,
        () => {
          throw new Error("visited an input that needs no gradient");
        },
      ],
    );
    sum(out).backward();
    expect(values(x.grad)).toEqual([1, 1]);
  });

  it("backward({ createGraph: true }) leaves a differentiable .grad", () => {
    const x = f64([1.5], true);
    sum(pow(x, 3)).backward(undefined, { createGraph: true }); // x.grad = 3x² (with a graph)
    const first = x.grad!;
    expect(first.requiresGrad).toBe(true);
    x.grad = null;
    first.backward(); // d(3x²)/dx = 6x = 9
    expect(x.grad!.item()).toBeCloseTo(9, 12);
  });
});

describe("grad and valueAndGrad", () => {
  it("differentiate with respect to the chosen arguments", () => {
    const f = (a: Tensor, b: Tensor) => sum(mul(mul(a, a), b)); // Σ a² b
    const [value, [da, db]] = valueAndGrad(f, { argnums: [0, 1] })(f64([1, 2]), f64([3, 4]));
    expect(value.item()).toBe(1 * 3 + 4 * 4);
    expect(values(da)).toEqual([6, 16]); // 2ab
    expect(values(db)).toEqual([1, 4]); // a²
    expect(values(grad(f, { argnums: 1 })(f64([1, 2]), f64([3, 4])))).toEqual([1, 4]);
  });

  it("leave the arguments untouched and return detached results", () => {
    const x = f64([1, 2]);
    const g = grad((t: Tensor) => sum(exp(t)))(x);
    expect(x.grad).toBeNull();
    expect(x.requiresGrad).toBe(false);
    expect(g.requiresGrad).toBe(false);
  });

  it("give zeros for an argument the value does not depend on", () => {
    const g = grad((_a: Tensor, b: Tensor) => sum(b), { argnums: 0 })(f64([1, 2]), f64([3]));
    expect(values(g)).toEqual([0, 0]);
  });

  it("nest: second and third derivatives, for any op", () => {
    const d1 = grad((x: Tensor) => sum(pow(x, 4)));
    const d2 = grad((x: Tensor) => sum(d1(x)));
    const d3 = grad((x: Tensor) => sum(d2(x)));
    const x = f64([1, 2]);
    expect(values(d1(x))).toEqual([4, 32]); // 4x³
    expect(values(d2(x))).toEqual([12, 48]); // 12x²
    expect(values(d3(x))).toEqual([24, 48]); // 24x
    const e2 = grad((x: Tensor) => sum(grad((y: Tensor) => sum(exp(y)))(x)));
    expect(e2(f64([0])).item()).toBeCloseTo(1, 14); // (e^x)'' = e^x
  });

  it("compute Hessian-vector products", () => {
    // f(x) = Σ x_i² x_j (all pairs) = (Σx²)(Σx); H v by differentiating <∇f, v>.
    const f = (x: Tensor) => mul(sum(mul(x, x)), sum(x));
    const v = f64([1, -1, 2]);
    const hvp = grad((x: Tensor) => sum(mul(grad(f)(x), v)));
    const x = f64([1, 2, 3]);
    // ∇f_i = 2 x_i S1 + S2 with S1 = Σx = 6, S2 = Σx² = 14.
    // H_ij = 2 δ_ij S1 + 2 x_i + 2 x_j; (Hv)_i = 2 S1 v_i + 2 x_i Σv + 2 Σ_j x_j v_j.
    // Σv = 2, Σ x_j v_j = 1 - 2 + 6 = 5 → (Hv)_i = 12 v_i + 4 x_i + 10.
    expect(values(hvp(x))).toEqual([12 + 4 + 10, -12 + 8 + 10, 24 + 12 + 10]);
  });

  it("name what is wrong with the function or its arguments", () => {
    expect(() => grad((x: Tensor) => mul(x, 2))(f64([1, 2]))).toThrow(
      /must return a float scalar tensor, got a float64 tensor of shape \[2\]/,
    );
    expect(() => grad((x: Tensor) => sum(x))(tensor([1], { dtype: "int32" }))).toThrow(
      /argument 0 has dtype int32/,
    );
    expect(() => grad((x: number) => f64([x]) as Tensor)(3)).toThrow(/argument 0 must be a Tensor/);
  });
});

describe("noGrad and detach", () => {
  it("record nothing", () => {
    const w = f64([1, 2], true);
    const y = noGrad(() => mul(w, 2));
    expect(y.requiresGrad).toBe(false);
    expect(mul(w.detach(), 2).requiresGrad).toBe(false);
    expect(reshape(w, [2, 1]).requiresGrad).toBe(true);
  });
});

describe("the double-where pattern", () => {
  it("selecting away an infinite branch gives finite gradients when the input is made safe", () => {
    const x = f64([0, 1, 2], true);
    const positive = greater(x, 0);
    // log(x) is -inf at 0; the inner where feeds log a harmless 1 there instead.
    sum(where(positive, log(where(positive, x, 1)), 0)).backward();
    expect(values(x.grad)).toEqual([0, 1, 0.5]); // d log x = 1/x where x > 0, 0 elsewhere
  });

  it("the naive form gives 0 at the unselected point too: a zero upstream stays zero", () => {
    const x = f64([0, 1], true);
    sum(where(greater(x, 0), log(x), 0)).backward();
    // where sends an exact 0 to log's branch at x = 0; log's rule gives 0 for it although
    // 1 / x is infinite there (0 / 0 before the zero-upstream policy).
    expect(x.grad!.read()[0]).toBe(0);
    expect(x.grad!.read()[1]).toBe(1);
  });

  it("a bool mask cast to float carries no gradient", () => {
    const x = f64([0.5, 2], true);
    const mask = cast(equal(x, 2), "float64");
    sum(mul(mask, x)).backward();
    expect(values(x.grad)).toEqual([0, 1]);
  });
});
