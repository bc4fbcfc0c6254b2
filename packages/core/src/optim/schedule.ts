/** Learning-rate schedules as plain functions of the step number, a scheduler that applies one to an optimiser, and ReduceLROnPlateau. */

import { checkOptions } from "../ops/util.js";
import type { Optimizer } from "./optimizer.js";

/** The learning rate for step `step` (0 for the first step). */
export type Schedule = (step: number) => number;

function checkPositiveInteger(op: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${op}: ${name} must be an integer >= 1, got ${value}`);
  }
}

function checkRate(op: string, name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new Error(`${op}: ${name} must be a finite number >= 0, got ${value}`);
  }
}

/**
 * lr · gamma^⌊step / stepSize⌋ (PyTorch's StepLR).
 *
 * @example
 * const s = stepDecay({ lr: 0.1, stepSize: 30, gamma: 0.1 });
 * s(29); // 0.1
 * s(30); // 0.01 (up to rounding)
 */
export function stepDecay(options: { lr: number; stepSize: number; gamma?: number }): Schedule {
  const {
    lr,
    stepSize,
    gamma = 0.1,
  } = checkOptions("stepDecay", options, {
    lr: "number",
    stepSize: "number",
    gamma: "number",
  });
  checkRate("stepDecay", "lr", lr);
  checkPositiveInteger("stepDecay", "stepSize", stepSize);
  checkRate("stepDecay", "gamma", gamma);
  return (step) => lr * gamma ** Math.floor(step / stepSize);
}

/**
 * Half a cosine from lr down to minLr over totalSteps, then minLr (PyTorch's CosineAnnealingLR
 * without restarts): minLr + (lr − minLr)(1 + cos(π · step / totalSteps)) / 2.
 *
 * @example
 * const s = cosineDecay({ lr: 0.1, totalSteps: 100 });
 * s(0); s(50); s(100); // 0.1, 0.05, 0
 */
export function cosineDecay(options: { lr: number; totalSteps: number; minLr?: number }): Schedule {
  const {
    lr,
    totalSteps,
    minLr = 0,
  } = checkOptions("cosineDecay", options, {
    lr: "number",
    totalSteps: "number",
    minLr: "number",
  });
  checkRate("cosineDecay", "lr", lr);
  checkRate("cosineDecay", "minLr", minLr);
  checkPositiveInteger("cosineDecay", "totalSteps", totalSteps);
  return (step) =>
    minLr +
    ((lr - minLr) * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / totalSteps))) / 2;
}

/**
 * Ramps the learning rate up linearly over the first `warmupSteps` steps, from startFactor · the
 * base rate to the full base rate, then follows `base` (a schedule or a constant). Detectors
 * warm up so that the first large gradients of a fresh head do not blow the weights apart.
 *
 * @example
 * const s = linearWarmup(cosineDecay({ lr: 0.01, totalSteps: 1000 }), { warmupSteps: 100 });
 * s(0);   // 0.01 · (1 / 100) = 1e-4 (default startFactor 1 / warmupSteps)
 * s(100); // the cosine schedule from here on
 */
export function linearWarmup(
  base: Schedule | number,
  options: { warmupSteps: number; startFactor?: number },
): Schedule {
  // Default start: one step's worth of the ramp, so step 0 already trains a little.
  const { warmupSteps, startFactor = 1 / warmupSteps } = checkOptions("linearWarmup", options, {
    warmupSteps: "number",
    startFactor: "number",
  });
  checkPositiveInteger("linearWarmup", "warmupSteps", warmupSteps);
  if (!(startFactor >= 0 && startFactor <= 1)) {
    throw new Error(`linearWarmup: startFactor must be in [0, 1], got ${startFactor}`);
  }
  const schedule = typeof base === "number" ? () => base : base;
  return (step) => {
    const factor = step >= warmupSteps ? 1 : startFactor + ((1 - startFactor) * step) / warmupSteps;
    return factor * schedule(step);
  };
}

/**
 * Applies a schedule to an optimiser: sets its rate for step 0 at once, and for the next step on
 * every `step()` (call it after `optimizer.step()`, as in PyTorch).
 *
 * @example
 * const scheduler = new LearningRateScheduler(opt, cosineDecay({ lr: 0.01, totalSteps: 500 }));
 * for (…) { opt.zeroGrad(); loss.backward(); opt.step(); scheduler.step(); }
 */
export class LearningRateScheduler {
  /** The step whose rate the optimiser holds now. */
  current = 0;

  /** Drives `optimizer`'s rate by `schedule`, setting the rate of step 0 at once. */
  constructor(
    /** The optimiser whose `lr` this sets. */
    readonly optimizer: Optimizer,
    /** The rate of every step. */
    readonly schedule: Schedule,
  ) {
    this.optimizer.lr = this.rateAt(0);
  }

  private rateAt(step: number): number {
    const lr = this.schedule(step);
    checkRate("LearningRateScheduler", `the schedule's rate at step ${step}`, lr);
    return lr;
  }

  /** Moves to the next step and sets its rate; call it after `optimizer.step()`. */
  step(): void {
    this.current++;
    this.optimizer.lr = this.rateAt(this.current);
  }

  /** The scheduler's position, as PyTorch's `scheduler.state_dict()` (the schedule is code). */
  stateDict(): SchedulerState {
    return { current: this.current };
  }

  /** Resumes at a saved position and sets the optimiser's rate for it. */
  loadStateDict(saved: SchedulerState): void {
    checkInteger("LearningRateScheduler.loadStateDict", "current", saved?.current);
    this.current = saved.current;
    this.optimizer.lr = this.rateAt(this.current);
  }
}

/** A `LearningRateScheduler`'s saved position. */
export interface SchedulerState {
  /** The step whose rate the optimiser held. */
  current: number;
}

/** A `ReduceLROnPlateau`'s saved counters. */
export interface PlateauState {
  /** The best metric so far. */
  best: number;
  /** Calls since the last improvement. */
  numBadSteps: number;
  /** Calls left before counting again after a reduction. */
  cooldownCounter: number;
}

function checkInteger(op: string, name: string, value: unknown): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new Error(`${op}: ${name} must be an integer >= 0, got ${String(value)}`);
  }
}

/**
 * The one-cycle policy of PyTorch's `OneCycleLR` (Smith and Topin, 2018), as a schedule over
 * `totalSteps` steps: from `maxLr / divFactor` up to `maxLr` over the first
 * `pctStart · totalSteps − 1` steps, then down to `maxLr / (divFactor · finalDivFactor)` at step
 * `totalSteps − 1`, both by half a cosine (or linearly with `annealStrategy: "linear"`). Steps
 * beyond the last keep the final rate.
 *
 * @example
 * const s = oneCycle({ maxLr: 0.1, totalSteps: 100 });
 * s(0);  // 0.004 (0.1 / 25)
 * s(29); // 0.1
 * s(99); // 4e-7
 */
export function oneCycle(options: {
  maxLr: number;
  totalSteps: number;
  pctStart?: number;
  divFactor?: number;
  finalDivFactor?: number;
  annealStrategy?: "cos" | "linear";
}): Schedule {
  const {
    maxLr,
    totalSteps,
    pctStart = 0.3,
    divFactor = 25,
    finalDivFactor = 1e4,
    annealStrategy = "cos",
  } = options;
  checkRate("oneCycle", "maxLr", maxLr);
  checkPositiveInteger("oneCycle", "totalSteps", totalSteps);
  if (!(pctStart > 0 && pctStart < 1)) {
    throw new Error(`oneCycle: pctStart must be in (0, 1), got ${pctStart}`);
  }
  for (const [name, value] of [
    ["divFactor", divFactor],
    ["finalDivFactor", finalDivFactor],
  ] as const) {
    if (!(value > 0 && Number.isFinite(value))) {
      throw new Error(`oneCycle: ${name} must be a finite number > 0, got ${value}`);
    }
  }
  if (annealStrategy !== "cos" && annealStrategy !== "linear") {
    throw new Error(
      `oneCycle: annealStrategy must be "cos" or "linear", got ${JSON.stringify(annealStrategy)}`,
    );
  }
  const initialLr = maxLr / divFactor;
  const minLr = initialLr / finalDivFactor;
  const peak = pctStart * totalSteps - 1;
  const last = totalSteps - 1;
  const anneal = (start: number, end: number, pct: number) =>
    annealStrategy === "cos"
      ? end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1)
      : start + (end - start) * pct;
  return (step) => {
    const t = Math.min(step, last);
    if (t <= peak) return anneal(initialLr, maxLr, peak <= 0 ? 1 : t / peak);
    return anneal(maxLr, minLr, (t - peak) / (last - peak));
  };
}

/** Options of `ReduceLROnPlateau`, as PyTorch's. */
export interface PlateauOptions {
  /** Whether the metric should go down ("min", a loss; default) or up ("max", an accuracy). */
  mode?: "min" | "max";
  /** The rate is multiplied by this, in [0, 1). Default 0.1. */
  factor?: number;
  /** Steps without improvement tolerated before reducing. Default 10. */
  patience?: number;
  /** How much better counts as better. Default 1e-4. */
  threshold?: number;
  /** `threshold` relative to the best value ("rel", default) or absolute ("abs"). */
  thresholdMode?: "rel" | "abs";
  /** Steps to wait after a reduction before counting again. Default 0. */
  cooldown?: number;
  /** The rate never goes below this. Default 0. */
  minLr?: number;
  /** A reduction smaller than this is skipped. Default 1e-8. */
  eps?: number;
}

/**
 * Reduces the optimiser's rate by `factor` when a metric has stopped improving for more than
 * `patience` calls of `step(metric)` (PyTorch's `ReduceLROnPlateau`, same defaults and rules).
 *
 * @example
 * const plateau = new ReduceLROnPlateau(opt, { patience: 2 });
 * for (const epoch of epochs) { train(); plateau.step(validationLoss()); }
 */
export class ReduceLROnPlateau {
  /** The best metric so far. */
  best: number;
  /** Calls since the last improvement. */
  numBadSteps = 0;
  /** Calls left before counting again after a reduction. */
  cooldownCounter = 0;
  readonly #options: Required<PlateauOptions>;

  /** Watches a metric for `optimizer`. */
  constructor(
    /** The optimiser whose `lr` this reduces. */
    readonly optimizer: Optimizer,
    options: PlateauOptions = {},
  ) {
    const op = "ReduceLROnPlateau";
    this.#options = {
      mode: options.mode ?? "min",
      factor: options.factor ?? 0.1,
      patience: options.patience ?? 10,
      threshold: options.threshold ?? 1e-4,
      thresholdMode: options.thresholdMode ?? "rel",
      cooldown: options.cooldown ?? 0,
      minLr: options.minLr ?? 0,
      eps: options.eps ?? 1e-8,
    };
    const o = this.#options;
    if (o.mode !== "min" && o.mode !== "max") {
      throw new Error(`${op}: mode must be "min" or "max", got ${JSON.stringify(o.mode)}`);
    }
    if (o.thresholdMode !== "rel" && o.thresholdMode !== "abs") {
      throw new Error(
        `${op}: thresholdMode must be "rel" or "abs", got ${JSON.stringify(o.thresholdMode)}`,
      );
    }
    if (!(o.factor >= 0 && o.factor < 1)) {
      throw new Error(`${op}: factor must be in [0, 1), got ${o.factor}`);
    }
    checkInteger(op, "patience", o.patience);
    checkInteger(op, "cooldown", o.cooldown);
    checkRate(op, "threshold", o.threshold);
    checkRate(op, "minLr", o.minLr);
    checkRate(op, "eps", o.eps);
    this.best = o.mode === "min" ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  }

  #isBetter(value: number): boolean {
    const { mode, threshold, thresholdMode } = this.#options;
    if (mode === "min") {
      return thresholdMode === "rel"
        ? value < this.best * (1 - threshold)
        : value < this.best - threshold;
    }
    return thresholdMode === "rel"
      ? value > this.best * (1 + threshold)
      : value > this.best + threshold;
  }

  /** Records one value of the metric, reducing the rate when it has plateaued. */
  step(metric: number): void {
    if (typeof metric !== "number" || Number.isNaN(metric)) {
      throw new Error(`ReduceLROnPlateau: metric must be a number, got ${String(metric)}`);
    }
    if (this.#isBetter(metric)) {
      this.best = metric;
      this.numBadSteps = 0;
    } else {
      this.numBadSteps++;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadSteps = 0;
    }
    if (this.numBadSteps > this.#options.patience) {
      const old = this.optimizer.lr;
      const reduced = Math.max(old * this.#options.factor, this.#options.minLr);
      if (old - reduced > this.#options.eps) this.optimizer.lr = reduced;
      this.cooldownCounter = this.#options.cooldown;
      this.numBadSteps = 0;
    }
  }

  /** The counters, as PyTorch's `state_dict()`. */
  stateDict(): PlateauState {
    return {
      best: this.best,
      numBadSteps: this.numBadSteps,
      cooldownCounter: this.cooldownCounter,
    };
  }

  /** Restores saved counters. */
  loadStateDict(saved: PlateauState): void {
    const op = "ReduceLROnPlateau.loadStateDict";
    if (typeof saved?.best !== "number" || Number.isNaN(saved.best)) {
      throw new Error(`${op}: best must be a number, got ${String(saved?.best)}`);
    }
    checkInteger(op, "numBadSteps", saved.numBadSteps);
    checkInteger(op, "cooldownCounter", saved.cooldownCounter);
    this.best = saved.best;
    this.numBadSteps = saved.numBadSteps;
    this.cooldownCounter = saved.cooldownCounter;
  }
}
