/** Learning-rate schedules as plain functions of the step number, and a scheduler that applies one to an optimiser. */

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

  constructor(
    readonly optimizer: Optimizer,
    readonly schedule: Schedule,
  ) {
    this.optimizer.lr = this.rateAt(0);
  }

  private rateAt(step: number): number {
    const lr = this.schedule(step);
    checkRate("LearningRateScheduler", `the schedule's rate at step ${step}`, lr);
    return lr;
  }

  step(): void {
    this.current++;
    this.optimizer.lr = this.rateAt(this.current);
  }
}
