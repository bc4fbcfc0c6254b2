import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { add, nn, optim, sum, type Tensor, tensor } from "../src/index.js";

const f64 = (values: number[]) => tensor(values, { dtype: "float64", requiresGrad: true });
const grad = (values: number[]) => tensor(values, { dtype: "float64" });

/** Runs `steps` steps of `opt` on `param` with the given gradients. */
function run(opt: optim.Optimizer, param: Tensor, gradients: number[][]): number[] {
  for (const g of gradients) {
    param.grad = grad(g);
    opt.step();
  }
  return [...param.data];
}

describe("SGD", () => {
  it("takes p − lr · g", () => {
    // p = [1, −2], g = [0.5, 1], lr = 0.1: p = [1 − 0.05, −2 − 0.1] = [0.95, −2.1].
    const p = f64([1, -2]);
    expect(run(new optim.SGD([p], { lr: 0.1 }), p, [[0.5, 1]])).toEqual([0.95, -2.1]);
  });

  it("starts momentum at the first gradient, then b ← μb + g", () => {
    // μ = 0.9, lr = 0.1, p = 1. Step 1: b = 0.5, p = 1 − 0.05 = 0.95.
    // Step 2 with g = 1: b = 0.45 + 1 = 1.45, p = 0.95 − 0.145 = 0.805.
    const p = f64([1]);
    const [value] = run(new optim.SGD([p], { lr: 0.1, momentum: 0.9 }), p, [[0.5], [1]]);
    expect(value).toBeCloseTo(0.805, 15);
  });

  it("looks ahead with Nesterov: g + μb", () => {
    // Step 1: b = 0.5, step = 0.5 + 0.9 · 0.5 = 0.95, p = 1 − 0.095 = 0.905.
    // Step 2 with g = 1: b = 0.45 + 1 = 1.45, step = 1 + 1.305 = 2.305, p = 0.905 − 0.2305 = 0.6745.
    const p = f64([1]);
    const opt = new optim.SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true });
    expect(run(opt, p, [[0.5], [1]])[0]).toBeCloseTo(0.6745, 15);
  });

  it("adds weight decay to the gradient and dampens the momentum", () => {
    // g' = 0.5 + 0.1 · 2 = 0.7; first step b = g' = 0.7, p = 2 − 0.07 = 1.93.
    // Step 2, g = 0: g' = 0.193, b = 0.9 · 0.7 + (1 − 0.5) · 0.193 = 0.7265, p = 1.93 − 0.07265 = 1.85735.
    const p = f64([2]);
    const opt = new optim.SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.5, weightDecay: 0.1 });
    expect(run(opt, p, [[0.5], [0]])[0]).toBeCloseTo(1.85735, 14);
  });

  it("rejects Nesterov without momentum, negative rates, empty and non-trainable params", () => {
    const p = f64([1]);
    expect(() => new optim.SGD([p], { lr: 0.1, nesterov: true })).toThrow(
      "SGD: nesterov needs momentum > 0 and dampening 0, got momentum 0 and dampening 0",
    );
    expect(() => new optim.SGD([p], { lr: -1 })).toThrow("SGD: lr must be a number >= 0, got -1");
    expect(() => new optim.SGD([], { lr: 0.1 })).toThrow("SGD: got an empty list of parameters");
    expect(() => new optim.SGD([tensor([1])], { lr: 0.1 })).toThrow(
      "SGD: params[0] must be a float leaf tensor that requires gradients (pass module.parameters())",
    );
    expect(() => new optim.SGD([p, p], { lr: 0.1 })).toThrow(
      "SGD: a parameter appears more than once in params",
    );
  });
});

describe("Adam and AdamW", () => {
  it("matches two hand-computed Adam steps", () => {
    // lr 0.1, β = (0.9, 0.999), p = 1.
    // Step 1, g = 0.5: m = 0.05, v = 2.5e−4, m̂ = 0.5, v̂ = 0.25, p = 1 − 0.1 · 0.5 / (0.5 + 1e−8) = 0.900000002.
    // Step 2, g = −1: m = 0.045 − 0.1 = −0.055, v = 2.4975e−4 + 1e−3 = 1.24975e−3,
    //   m̂ = −0.055 / 0.19 = −0.289474, v̂ = 1.24975e−3 / 1.999e−3 = 0.625188,
    //   p = 0.900000002 + 0.1 · 0.289474 / 0.790688 = 0.936610354.
    const p = f64([1]);
    const opt = new optim.Adam([p], { lr: 0.1 });
    expect(run(opt, p, [[0.5]])[0]).toBeCloseTo(0.900000002, 12);
    expect(run(opt, p, [[-1]])[0]).toBeCloseTo(0.9366103542405654, 13);
    expect(opt.stepCount).toBe(2);
  });

  it("adds Adam's weight decay to the gradient (L2)", () => {
    // g' = 0.5 + 0.1 · 1 = 0.6; the first step of Adam moves by lr · g' / |g'| = lr: p = 0.9.
    const p = f64([1]);
    const [value] = run(new optim.Adam([p], { lr: 0.1, weightDecay: 0.1 }), p, [[0.5]]);
    expect(value).toBeCloseTo(0.9, 7);
  });

  it("decouples AdamW's weight decay: p(1 − lr · λ) before the Adam step", () => {
    // λ = 0.1: step 1 p = 1 · 0.99 − 0.1 · (1 − 2e−8) = 0.890000002;
    // step 2 p = 0.890000002 · 0.99 + 0.1 · 0.289474 / 0.790688 = 0.917710354.
    const p = f64([1]);
    const opt = new optim.AdamW([p], { lr: 0.1, weightDecay: 0.1 });
    expect(run(opt, p, [[0.5], [-1]])[0]).toBeCloseTo(0.9177103542205653, 13);
    expect(new optim.AdamW([f64([1])]).weightDecay).toBe(0.01);
  });

  it("rejects betas outside [0, 1)", () => {
    expect(() => new optim.Adam([f64([1])], { betas: [0.9, 1] })).toThrow(
      "Adam: betas[1] must be in [0, 1), got 1",
    );
  });
});

describe("every optimiser", () => {
  it("skips parameters without a gradient, and zeroGrad clears them", () => {
    const a = f64([1]);
    const b = f64([2]);
    const opt = new optim.Adam([a, b], { lr: 0.1 });
    a.grad = grad([1]);
    opt.step();
    expect(b.data[0]).toBe(2);
    expect(a.data[0]).not.toBe(1);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
  });

  it("rejects a gradient whose shape differs from its parameter's", () => {
    const a = f64([1, 2]);
    a.grad = grad([1]);
    expect(() => new optim.SGD([a], { lr: 1 }).step()).toThrow(
      "SGD: the gradient of shape [1] does not match its parameter's shape [2]",
    );
  });

  it("updates in place: a module's parameters change, the tensors stay the same", () => {
    const lin = new nn.Linear(2, 1, { seed: 0 });
    const weight = lin.weight;
    const before = [...weight.data];
    const opt = new optim.SGD(lin.parameters(), { lr: 0.5 });
    sum(lin.forward(tensor([[1, 1]]))).backward();
    opt.step();
    expect(lin.weight).toBe(weight);
    // d/dw sum(x wᵀ) = x = [1, 1]: every weight drops by 0.5 (rounded to float32).
    expect([...weight.data]).toEqual(before.map((v) => Math.fround(v - 0.5)));
  });

  /** f(x) = Σ ½ qᵢ xᵢ² − bᵢ xᵢ, minimised at xᵢ = bᵢ / qᵢ. */
  const quadratic = fc.tuple(
    fc.array(fc.double({ min: 0.5, max: 2, noNaN: true }), { minLength: 1, maxLength: 5 }),
    fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 5, maxLength: 5 }),
  );
  const makers: [string, (p: Tensor[]) => optim.Optimizer, optim.Schedule | null][] = [
    ["SGD", (p) => new optim.SGD(p, { lr: 0.1 }), null],
    ["SGD momentum", (p) => new optim.SGD(p, { lr: 0.05, momentum: 0.9 }), null],
    ["SGD Nesterov", (p) => new optim.SGD(p, { lr: 0.05, momentum: 0.9, nesterov: true }), null],
    ["Adam", (p) => new optim.Adam(p), optim.cosineDecay({ lr: 0.1, totalSteps: 300 })],
    [
      "AdamW",
      (p) => new optim.AdamW(p, { weightDecay: 0 }),
      optim.linearWarmup(optim.cosineDecay({ lr: 0.1, totalSteps: 300 }), { warmupSteps: 20 }),
    ],
  ];
  for (const [name, make, schedule] of makers) {
    it(`converges on a convex quadratic in 300 steps: ${name}`, () => {
      fc.assert(
        fc.property(quadratic, ([q, b]) => {
          const n = q.length;
          const x = f64(new Array(n).fill(0));
          const opt = make([x]);
          const scheduler =
            schedule === null ? null : new optim.LearningRateScheduler(opt, schedule);
          for (let step = 0; step < 300; step++) {
            opt.zeroGrad();
            // The gradient ∇f = q · x − b, written straight in: these steps test the optimiser.
            x.grad = grad(Array.from(x.data, (v, i) => q[i] * v - b[i]));
            opt.step();
            scheduler?.step();
          }
          x.data.forEach((v, i) => {
            expect(Math.abs(v - b[i] / q[i])).toBeLessThan(1e-2);
          });
        }),
        { numRuns: 100 },
      );
    });
  }
});

describe("schedules", () => {
  it("step decay multiplies by gamma every stepSize steps", () => {
    const s = optim.stepDecay({ lr: 1, stepSize: 10, gamma: 0.5 });
    expect([0, 9, 10, 25].map(s)).toEqual([1, 1, 0.5, 0.25]);
  });

  it("cosine decay runs half a cosine from lr to minLr, then stays", () => {
    const s = optim.cosineDecay({ lr: 0.1, totalSteps: 100, minLr: 0.02 });
    // Halfway: 0.02 + 0.08 · (1 + cos(π/2)) / 2 = 0.06.
    expect(s(0)).toBeCloseTo(0.1, 15);
    expect(s(50)).toBeCloseTo(0.06, 15);
    expect(s(100)).toBeCloseTo(0.02, 15);
    expect(s(150)).toBeCloseTo(0.02, 15);
  });

  it("linear warm-up ramps from startFactor to the base schedule", () => {
    const s = optim.linearWarmup(0.1, { warmupSteps: 4, startFactor: 0.2 });
    // Factors 0.2, 0.4, 0.6, 0.8, then 1.
    expect([0, 1, 2, 3, 4, 10].map((t) => Number(s(t).toFixed(12)))).toEqual([
      0.02, 0.04, 0.06, 0.08, 0.1, 0.1,
    ]);
    expect(() => optim.linearWarmup(0.1, { warmupSteps: 0 })).toThrow(
      "linearWarmup: warmupSteps must be an integer >= 1, got 0",
    );
  });

  it("rejects bad schedule settings and a schedule that yields a bad rate", () => {
    expect(() => optim.stepDecay({ lr: 0.1, stepSize: 0 })).toThrow(
      "stepDecay: stepSize must be an integer >= 1, got 0",
    );
    expect(() => optim.cosineDecay({ lr: -1, totalSteps: 10 })).toThrow(
      "cosineDecay: lr must be a finite number >= 0, got -1",
    );
    expect(() => optim.linearWarmup(0.1, { warmupSteps: 5, startFactor: 2 })).toThrow(
      "linearWarmup: startFactor must be in [0, 1], got 2",
    );
    const opt = new optim.SGD([f64([1])], { lr: 1 });
    expect(() => new optim.LearningRateScheduler(opt, () => Number.NaN)).toThrow(
      "LearningRateScheduler: the schedule's rate at step 0 must be a finite number >= 0, got NaN",
    );
  });

  it("a scheduler sets the optimiser's rate at once and after every step", () => {
    const opt = new optim.SGD([f64([1])], { lr: 5 });
    const scheduler = new optim.LearningRateScheduler(
      opt,
      optim.stepDecay({ lr: 1, stepSize: 1, gamma: 0.5 }),
    );
    expect(opt.lr).toBe(1);
    scheduler.step();
    scheduler.step();
    expect(opt.lr).toBe(0.25);
  });
});

describe("gradient clipping", () => {
  it("scales all gradients together to the global norm", () => {
    // Gradients [3] and [4]: global norm 5; clipped to 1 they become [0.6] and [0.8].
    const a = f64([0]);
    const b = f64([0]);
    a.grad = grad([3]);
    b.grad = grad([4]);
    expect(optim.clipGradNorm([a, b], 1)).toBe(5);
    expect(a.grad.data[0]).toBeCloseTo(0.6, 6);
    expect(b.grad?.data[0]).toBeCloseTo(0.8, 6);
    // Below the limit nothing changes.
    const before = a.grad;
    optim.clipGradNorm([a, b], 10);
    expect(a.grad).toBe(before);
  });

  it("scales a gradient buffer shared by two parameters once", () => {
    // d/dx sum(x + y) and d/dy are the same tensor from the backward pass of add.
    const x = f64([3]);
    const y = f64([4]);
    sum(add(x, y)).backward();
    optim.clipGradNorm([x, y], Math.SQRT2 / 2);
    expect(x.grad?.data[0]).toBeCloseTo(0.5, 6);
    expect(y.grad?.data[0]).toBeCloseTo(0.5, 6);
  });

  it("rejects a bad maxNorm", () => {
    expect(() => optim.clipGradNorm([f64([1])], Number.POSITIVE_INFINITY)).toThrow(
      "clipGradNorm: maxNorm must be a finite number >= 0, got Infinity",
    );
  });

  it("clamps by value", () => {
    const a = f64([0, 0, 0]);
    a.grad = grad([-3, 0.5, 2]);
    optim.clipGradValue([a], 1);
    expect([...a.grad.data]).toEqual([-1, 0.5, 1]);
    expect(() => optim.clipGradValue([a], -1)).toThrow(
      "clipGradValue: clipValue must be a finite number >= 0, got -1",
    );
  });
});

describe("RMSprop", () => {
  it("takes p − lr · g / (√v + ε) with v = αv + (1 − α)g²", () => {
    // p = 1, g = 0.5, lr 0.01, α 0.99: v = 0.01 · 0.25 = 0.0025, √v = 0.05, step 0.5 / 0.05 = 10
    // (less 2e-6 for ε): p = 1 − 0.1 = 0.9.
    const p = f64([1]);
    expect(run(new optim.RMSprop([p]), p, [[0.5]])[0]).toBeCloseTo(0.9, 7);
    // Centred: m = 0.005, v − m² = 0.002475, √ = 0.049749…, p = 1 − 0.01 · 0.5 / 0.049749 = 0.899496…
    const q = f64([1]);
    expect(run(new optim.RMSprop([q], { centered: true }), q, [[0.5]])[0]).toBeCloseTo(
      0.8994962,
      6,
    );
  });

  it("accumulates the scaled step with momentum", () => {
    // Step 1 as above: b = 10, p = 0.9. Step 2: v = 0.99 · 0.0025 + 0.01 · 0.25 = 0.004975,
    // √v = 0.0705337, b = 0.9 · 10 + 0.5 / 0.0705337 = 16.08881, p = 0.9 − 0.1608881 = 0.7391119.
    const p = f64([1]);
    const opt = new optim.RMSprop([p], { momentum: 0.9 });
    expect(run(opt, p, [[0.5], [0.5]])[0]).toBeCloseTo(0.7391119, 6);
  });

  it("rejects bad hyperparameters", () => {
    expect(() => new optim.RMSprop([f64([1])], { alpha: 1 })).toThrow(
      "RMSprop: alpha must be in [0, 1), got 1",
    );
  });
});

describe("optimiser state", () => {
  const trajectory = (
    make: (params: Tensor[]) => optim.Optimizer,
    interruptAt: number | null,
  ): number[] => {
    const p = f64([1, -2]);
    let opt = make([p]);
    const gradients = [
      [0.5, 1],
      [-0.25, 0.5],
      [1, -1],
      [0.1, 0.2],
    ];
    gradients.forEach((g, i) => {
      if (i === interruptAt) {
        // Save, build a fresh optimiser over the same parameter, restore through JSON.
        const saved = JSON.parse(JSON.stringify(opt.stateDict()));
        opt = make([p]);
        opt.loadStateDict(saved);
      }
      p.grad = grad(g);
      opt.step();
    });
    return [...p.data];
  };

  it.each([
    ["SGD with momentum", (ps: Tensor[]) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9 })],
    ["Adam", (ps: Tensor[]) => new optim.Adam(ps, { lr: 0.1 })],
    ["AdamW", (ps: Tensor[]) => new optim.AdamW(ps, { lr: 0.1 })],
    ["RMSprop", (ps: Tensor[]) => new optim.RMSprop(ps, { momentum: 0.5, centered: true })],
  ] as const)("%s resumes from its stateDict exactly where it stopped", (_, make) => {
    const straight = trajectory(make, null);
    expect(trajectory(make, 2)).toEqual(straight);
    // A fresh optimiser has taken no step and holds no buffers.
    const p = f64([1]);
    const opt = make([p]);
    expect(opt.stateDict()).toEqual({
      name: opt.name,
      lr: opt.lr,
      groupLrs: [opt.lr],
      stepCount: 0,
      state: {},
    });
  });

  it("refuses the state of another optimiser or of other parameters", () => {
    const p = f64([1, 2]);
    const adam = new optim.Adam([p], { lr: 0.1 });
    p.grad = grad([1, 1]);
    adam.step();
    expect(() => new optim.SGD([p], { lr: 0.1 }).loadStateDict(adam.stateDict())).toThrow(
      'SGD.loadStateDict: expected the state of a SGD optimiser, got one of "Adam"',
    );
    expect(() => new optim.Adam([f64([1, 2, 3])]).loadStateDict(adam.stateDict())).toThrow(
      "Adam.loadStateDict: the buffers of parameter 0 have lengths [2, 2, 1], expected [3, 3, 1] for a parameter of shape [3]",
    );
    expect(() =>
      new optim.Adam([f64([1])]).loadStateDict({ ...adam.stateDict(), state: { 3: [] } }),
    ).toThrow(
      "Adam.loadStateDict: the state has buffers for parameter 3, but the optimiser has 1 parameters",
    );
  });
});

describe("oneCycle", () => {
  it("warms up from maxLr / 25 to maxLr over 30 % of the steps, then anneals to maxLr / 25e4", () => {
    const s = optim.oneCycle({ maxLr: 0.1, totalSteps: 100 });
    // Phase ends at step 0.3 · 100 − 1 = 29 and at step 99.
    expect(s(0)).toBeCloseTo(0.004, 15);
    expect(s(29)).toBeCloseTo(0.1, 15);
    expect(s(99)).toBeCloseTo(4e-7, 15);
    // Step 10, cosine: 0.1 + (0.004 − 0.1) / 2 · (cos(π · 10 / 29) + 1) = 0.0295163948…
    expect(s(10)).toBeCloseTo(0.029516394846410082, 12);
    // Linear: halfway down phase 2 (step 64) is the mean of 0.1 and 4e-7.
    const linear = optim.oneCycle({ maxLr: 0.1, totalSteps: 100, annealStrategy: "linear" });
    expect(linear(64)).toBeCloseTo((0.1 + 4e-7) / 2, 12);
    expect(s(500)).toBe(s(99));
    expect(() => optim.oneCycle({ maxLr: 0.1, totalSteps: 10, pctStart: 1 })).toThrow(
      "oneCycle: pctStart must be in (0, 1), got 1",
    );
  });

  it("drives an optimiser through LearningRateScheduler, whose position can be saved", () => {
    const opt = new optim.SGD([f64([1])], { lr: 1 });
    const scheduler = new optim.LearningRateScheduler(
      opt,
      optim.oneCycle({ maxLr: 0.1, totalSteps: 100 }),
    );
    expect(opt.lr).toBeCloseTo(0.004, 15);
    for (let i = 0; i < 29; i++) scheduler.step();
    expect(opt.lr).toBeCloseTo(0.1, 15);
    const other = new optim.LearningRateScheduler(
      opt,
      optim.oneCycle({ maxLr: 0.1, totalSteps: 100 }),
    );
    other.loadStateDict(scheduler.stateDict());
    expect(other.current).toBe(29);
    expect(opt.lr).toBeCloseTo(0.1, 15);
  });
});

describe("ReduceLROnPlateau", () => {
  it("multiplies the rate by factor after more than patience steps without improvement", () => {
    const opt = new optim.SGD([f64([1])], { lr: 1 });
    const plateau = new optim.ReduceLROnPlateau(opt, { patience: 2, factor: 0.5 });
    // 1 (best), 1, 1 (two bad steps: tolerated), 1 (third: reduce to 0.5), then 0.5 improves.
    for (const loss of [1, 1, 1]) plateau.step(loss);
    expect(opt.lr).toBe(1);
    plateau.step(1);
    expect(opt.lr).toBe(0.5);
    plateau.step(0.5);
    expect(plateau.best).toBe(0.5);
    expect(plateau.numBadSteps).toBe(0);
  });

  it("counts an improvement only beyond the relative threshold, and respects cooldown and minLr", () => {
    const opt = new optim.SGD([f64([1])], { lr: 1 });
    const plateau = new optim.ReduceLROnPlateau(opt, {
      patience: 0,
      factor: 0.1,
      cooldown: 1,
      minLr: 0.05,
      threshold: 0.1,
    });
    plateau.step(1); // best 1
    plateau.step(0.95); // not below 1 · (1 − 0.1) = 0.9: bad, > patience 0: lr 0.1, cooldown 1
    expect(opt.lr).toBeCloseTo(0.1, 15);
    plateau.step(0.95); // bad, but in cooldown: counter back to 0
    expect(opt.lr).toBeCloseTo(0.1, 15);
    plateau.step(0.95); // bad: 0.1 · 0.1 = 0.01, floored at minLr 0.05
    expect(opt.lr).toBe(0.05);
    const saved = plateau.stateDict();
    const restored = new optim.ReduceLROnPlateau(opt);
    restored.loadStateDict(saved);
    expect(restored.stateDict()).toEqual(saved);
  });

  it("maximises in max mode, and names bad options", () => {
    const opt = new optim.SGD([f64([1])], { lr: 1 });
    const plateau = new optim.ReduceLROnPlateau(opt, { mode: "max", patience: 0 });
    plateau.step(0.5);
    plateau.step(0.6); // better
    expect(opt.lr).toBe(1);
    plateau.step(0.6); // not better: reduced to 0.1
    expect(opt.lr).toBeCloseTo(0.1, 15);
    expect(() => new optim.ReduceLROnPlateau(opt, { factor: 1 })).toThrow(
      "ReduceLROnPlateau: factor must be in [0, 1), got 1",
    );
    expect(() => plateau.step(Number.NaN)).toThrow(
      "ReduceLROnPlateau: metric must be a number, got NaN",
    );
  });
});

describe("parameter groups", () => {
  it("give each group its own options, the others falling back to the optimiser's", () => {
    // Group 0: lr 0.01; group 1: the optimiser's lr 0.1 and momentum 0.9 overridden to 0.
    // g = 1 for both: a = 1 − 0.01 = 0.99, b = 1 − 0.1 = 0.9.
    const a = f64([1]);
    const b = f64([1]);
    const opt = new optim.SGD(
      [
        { params: [a], lr: 0.01 },
        { params: [b], momentum: 0 },
      ],
      { lr: 0.1, momentum: 0.9 },
    );
    expect(opt.paramGroups.map((g) => g.options.lr)).toEqual([0.01, 0.1]);
    expect(opt.paramGroups[0].options.momentum).toBe(0.9);
    expect(opt.params).toEqual([a, b]);
    a.grad = grad([1]);
    b.grad = grad([1]);
    opt.step();
    expect([a.data[0], b.data[0]]).toEqual([0.99, 0.9]);
    // Setting lr (as schedules do) sets every group's; a group's own lr can be set too.
    opt.lr = 0.5;
    expect(opt.paramGroups.map((g) => g.options.lr)).toEqual([0.5, 0.5]);
    opt.paramGroups[1].options.lr = 0.25;
    expect(opt.stateDict().groupLrs).toEqual([0.5, 0.25]);
  });

  it("work for Adam, AdamW and RMSprop, and are saved and restored by the state", () => {
    const make = (p: Tensor, q: Tensor) =>
      new optim.AdamW(
        [
          { params: [p], weightDecay: 0 },
          { params: [q], lr: 0.5 },
        ],
        { lr: 0.1 },
      );
    const p = f64([1]);
    const q = f64([1]);
    const opt = make(p, q);
    expect(opt.paramGroups.map((g) => g.options.weightDecay)).toEqual([0, 0.01]);
    p.grad = grad([0.5]);
    q.grad = grad([0.5]);
    opt.step();
    // Adam's first step moves by lr: p = 1 − 0.1; q = 1 · (1 − 0.5 · 0.01) − 0.5 = 0.495.
    expect(p.data[0]).toBeCloseTo(0.9, 7);
    expect(q.data[0]).toBeCloseTo(0.495, 7);
    const restored = make(f64([1]), f64([1]));
    restored.loadStateDict(opt.stateDict());
    expect(restored.paramGroups.map((g) => g.options.lr)).toEqual([0.1, 0.5]);
    expect(() =>
      new optim.SGD([f64([1])], { lr: 1 }).loadStateDict({ ...opt.stateDict(), name: "SGD" }),
    ).toThrow("SGD.loadStateDict: the state has 2 parameter groups, the optimiser 1");
    const r = f64([1]);
    new optim.RMSprop([{ params: [r], lr: 0 }]).step();
    expect(r.data[0]).toBe(1);
  });

  it("check every group's options and parameters", () => {
    const a = f64([1]);
    expect(() => new optim.SGD([{ params: [a], lr: -1 }], { lr: 0.1 })).toThrow(
      "SGD: lr must be a number >= 0, got -1",
    );
    expect(() => new optim.SGD([{ params: [a] }, { params: [] }], { lr: 0.1 })).toThrow(
      "SGD: got an empty list of parameters (paramGroups[1].params)",
    );
    expect(() => new optim.SGD([{ params: [a] }, { params: [a] }], { lr: 0.1 })).toThrow(
      "SGD: a parameter appears more than once in params",
    );
    expect(() => new optim.Adam([{ params: [a] }, { params: [tensor([1])] }])).toThrow(
      "Adam: paramGroups[1].params[0] must be a float leaf tensor that requires gradients (pass module.parameters())",
    );
  });
});
