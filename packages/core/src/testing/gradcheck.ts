/** Checking gradients against central finite differences in float64, for ops and for users' own losses. */

import { isFloat } from "../dtype.js";
import { grad } from "../engine.js";
import { add, mul } from "../ops/arithmetic.js";
import { cast } from "../ops/cast.js";
import { sum } from "../ops/reduce.js";
import { Generator } from "../random.js";
import { formatShape } from "../shape.js";
import { noGrad } from "../tape.js";
import { Tensor } from "../tensor.js";

/** Options of `gradcheck` and `gradgradcheck`: step, tolerances, inputs and projection seed. */
export interface GradcheckOptions {
  /** Finite-difference step. Default 1e-6 (PyTorch's). */
  eps?: number;
  /** Absolute tolerance. Default 1e-5. */
  atol?: number;
  /** Relative tolerance, against the numerical value. Default 1e-3. */
  rtol?: number;
  /** Which inputs to check (indices into `inputs`); default every float input. */
  wrt?: readonly number[];
  /** Seed of the random projection used for non-scalar outputs. Default 0. */
  seed?: number;
}

/** One checked element: where it is, and its analytic and numerical derivatives. */
export interface GradcheckElement {
  /** Position of the input in `inputs`. */
  input: number;
  /** Flat (row-major) index of the element within that input. */
  index: number;
  /** The derivative from the autodiff engine. */
  analytic: number;
  /** The central finite difference `(f(x + eps) − f(x − eps)) / (2 eps)`, in float64. */
  numeric: number;
}

/** What `gradcheck` found: whether it passed, the largest errors, and the worst element. */
export interface GradcheckReport {
  /** Whether every element satisfied |analytic − numeric| <= atol + rtol · |numeric|. */
  ok: boolean;
  /** Largest |analytic − numeric| over every checked element. */
  maxAbsError: number;
  /** Largest |analytic − numeric| / max(|numeric|, tiny). */
  maxRelError: number;
  /** The element that exceeded its tolerance by the most (or came closest to it). */
  worst: GradcheckElement | null;
  /** How many elements were compared. */
  checked: number;
}

type Fn = (...inputs: Tensor[]) => Tensor;

/** Reduces `f` to a scalar: itself if it is one, else a fixed random projection of its output. */
function scalarised(f: Fn, inputs: readonly Tensor[], seed: number): Fn {
  const probe = noGrad(() => f(...inputs));
  if (!(probe instanceof Tensor))
    throw new Error(`gradcheck: the function must return a Tensor, got ${typeof probe}`);
  if (!isFloat(probe.dtype))
    throw new Error(`gradcheck: the function must return a float tensor, got ${probe.dtype}`);
  if (probe.size === 1) return (...xs) => sum(f(...xs));
  const gen = new Generator(seed);
  const weights = new Float64Array(probe.size);
  for (let i = 0; i < weights.length; i++)
    weights[i] = gen.uniform(0.5, 1.5) * (gen.uniform() < 0.5 ? -1 : 1);
  const projection = new Tensor(weights, probe.shape, "float64");
  return (...xs) => {
    const out = f(...xs);
    if (out.size !== probe.size) {
      throw new Error(
        `gradcheck: the output changed shape between calls (${formatShape(out.shape)} vs ${formatShape(probe.shape)})`,
      );
    }
    return sum(mul(out, projection));
  };
}

/**
 * Compares the gradient of `f` computed by the autodiff engine with central finite differences,
 * `(f(x + eps) − f(x − eps)) / 2eps`, element by element, with every float input promoted to
 * float64. A non-scalar output is checked through a fixed random projection `sum(f(x) · r)`,
 * which catches any wrong Jacobian entry with probability one.
 *
 * @example
 * import { gradcheck } from "@focalgrad/core/testing";
 * const report = gradcheck((p) => sum(myLoss(labels, p)), [uniform([4, 3], { low: 0.1, high: 0.9, seed: 1 })]);
 * report.ok; // true when the gradient is right
 */
export function gradcheck(
  f: Fn,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): GradcheckReport {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  inputs.forEach((t, i) => {
    if (!(t instanceof Tensor))
      throw new Error(`gradcheck: inputs[${i}] must be a Tensor, got ${typeof t}`);
  });
  const promoted = inputs.map((t) =>
    isFloat(t.dtype) ? noGrad(() => cast(t.detach(), "float64")) : t.detach(),
  );
  const wrt = options.wrt ?? promoted.flatMap((t, i) => (isFloat(t.dtype) ? [i] : []));
  for (const i of wrt) {
    if (i < 0 || i >= inputs.length || !isFloat(promoted[i].dtype)) {
      throw new Error(
        `gradcheck: wrt index ${i} does not name a float input (there are ${inputs.length} inputs)`,
      );
    }
  }
  const g = scalarised(f, promoted, options.seed ?? 0);
  const analytic = grad(g, { argnums: [...wrt] })(...promoted);

  const report: GradcheckReport = {
    ok: true,
    maxAbsError: 0,
    maxRelError: 0,
    worst: null,
    checked: 0,
  };
  let worstExcess = -Infinity;
  wrt.forEach((inputIndex, k) => {
    const x = promoted[inputIndex];
    const at = (delta: number, j: number): number => {
      const copy = new Float64Array(x.read() as Float64Array);
      copy[j] += delta;
      const args = promoted.slice();
      args[inputIndex] = new Tensor(copy, x.shape, "float64");
      return noGrad(() => g(...args)).item();
    };
    for (let j = 0; j < x.size; j++) {
      const numeric = (at(eps, j) - at(-eps, j)) / (2 * eps);
      const a = analytic[k].read()[j];
      const absError = Math.abs(a - numeric);
      const relError = absError / Math.max(Math.abs(numeric), 1e-12);
      const excess = absError - (atol + rtol * Math.abs(numeric));
      report.checked++;
      report.maxAbsError = Math.max(report.maxAbsError, absError);
      report.maxRelError = Math.max(report.maxRelError, relError);
      if (!(excess <= 0)) report.ok = false;
      if (!(excess <= worstExcess)) {
        worstExcess = excess;
        report.worst = { input: inputIndex, index: j, analytic: a, numeric };
      }
    }
  });
  return report;
}

function describeFailure(what: string, report: GradcheckReport, options: GradcheckOptions): string {
  const w = report.worst!;
  return (
    `${what} failed: input ${w.input}, element ${w.index}: analytic ${w.analytic}, numeric ${w.numeric} ` +
    `(max abs error ${report.maxAbsError.toExponential(3)}, max rel error ${report.maxRelError.toExponential(3)}; ` +
    `atol ${options.atol ?? 1e-5}, rtol ${options.rtol ?? 1e-3})`
  );
}

/**
 * `gradcheck` that throws a descriptive error when the gradient is wrong; for tests.
 *
 * @example
 * assertGradcheck((x) => sum(exp(x)), [tensor([0.1, 0.2], { dtype: "float64" })]);
 */
export function assertGradcheck(
  f: Fn,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): GradcheckReport {
  const report = gradcheck(f, inputs, options);
  if (!report.ok) throw new Error(describeFailure("gradcheck", report, options));
  return report;
}

/**
 * Checks second derivatives: the gradient of `f` (itself computed by the engine, with a graph) is
 * projected onto fixed random directions and that scalar is checked by `gradcheck`. Equivalent to
 * checking Hessian-vector products against finite differences of the gradient.
 *
 * @example
 * gradgradcheck((x) => sum(pow(x, 3)), [tensor([0.5, 1.5], { dtype: "float64" })]).ok; // true
 */
export function gradgradcheck(
  f: Fn,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): GradcheckReport {
  const promoted = inputs.map((t) =>
    isFloat(t.dtype) ? noGrad(() => cast(t.detach(), "float64")) : t.detach(),
  );
  const wrt = options.wrt ?? promoted.flatMap((t, i) => (isFloat(t.dtype) ? [i] : []));
  const seed = options.seed ?? 0;
  const g = scalarised(f, promoted, seed);
  const gen = new Generator(seed + 1);
  const directions = wrt.map((i) => {
    const v = new Float64Array(promoted[i].size);
    for (let j = 0; j < v.length; j++) v[j] = gen.uniform(-1, 1);
    return new Tensor(v, promoted[i].shape, "float64");
  });
  const firstOrder = (...xs: Tensor[]) => {
    const grads = grad(g, { argnums: [...wrt] })(...xs);
    return grads.map((gi, k) => sum(mul(gi, directions[k]))).reduce((acc, t) => add(acc, t));
  };
  return gradcheck(firstOrder, promoted, { ...options, wrt });
}

/**
 * `gradgradcheck` that throws a descriptive error when the second derivative is wrong.
 *
 * @example
 * assertGradgradcheck((x) => sum(sigmoid(x)), [tensor([0.3], { dtype: "float64" })]);
 */
export function assertGradgradcheck(
  f: Fn,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): GradcheckReport {
  const report = gradgradcheck(f, inputs, options);
  if (!report.ok) throw new Error(describeFailure("gradgradcheck", report, options));
  return report;
}
