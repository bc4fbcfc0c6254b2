/** The configurations of the Table 1 sweep (cross-entropy by α, focal loss by γ and α, the prior initialisation, OHEM), the per-run budget, and the `train` settings of each run. */

import type { TrainConfig } from "../detection/train.js";

/** One configuration of the sweep: a loss with its parameters and the classification prior. */
export interface SweepConfig {
  /** Stable identifier, e.g. "fl-g2-a0.25", "ce-a0.5-zero-bias", "ohem-1:3". */
  id: string;
  /** Short human name, e.g. "FL γ=2 α=.25". */
  label: string;
  kind: "ce" | "fl" | "ohem";
  alpha: number;
  gamma: number;
  /** π of the classification prior bias; 0.5 is a zero bias. */
  priorProbability: number;
  /** OHEM's negatives per positive (3: the 1:3 variant); null otherwise. */
  ohemRatio: number | null;
}

/** The training budget of every run of a sweep. */
export interface Budget {
  dataset: "shapes" | "digits";
  steps: number;
  batchSize: number;
  trainImages: number;
  testImages: number;
}

/**
 * The per-run budget of the full sweep, chosen so that its 63 runs fit 2 hours on 2 cores, two
 * runs at a time on one thread each. Measured on one thread (process CPU time, on a 2-core machine
 * shared by other jobs, so if anything too high): 0.33 s per training step and 9 s per run for
 * the data, the evaluation on 500 images and the checkpoints. 63 × (9 + 500 × 0.33) s / 2 cores
 * = 5481 s = 1 h 31 min, which leaves a quarter of the 2 hours for a busier machine. Shapes
 * rather than digits: a 40-step digits run took 2.2 times as long as a shapes one (96 × 96
 * canvases against 64 × 64; 33.1 s against 14.9 s for the whole command), and at this
 * budget the shapes detector is far from saturated (the demo's 600 steps reach mAP@0.5 ≈ 0.3), so
 * the losses have room to differ.
 */
export const FULL_BUDGET: Budget = {
  dataset: "shapes",
  steps: 500,
  batchSize: 8,
  trainImages: 2000,
  testImages: 500,
};

/** `--quick`: the reduced grid on a budget that exercises every piece in a few minutes. */
export const QUICK_BUDGET: Budget = {
  dataset: "shapes",
  steps: 40,
  batchSize: 8,
  trainImages: 200,
  testImages: 100,
};

/** The paper's prior π = 0.01 (§3.3, §4.1). */
export const PRIOR = 0.01;
/** π = 0.5 makes the prior bias −log((1 − π) / π) exactly 0. */
export const ZERO_BIAS = 0.5;
/** OHEM's examples per image and NMS threshold: the best setting of Table 1d. */
export const OHEM_EXAMPLES = 128;

const CE_ALPHAS = [0.25, 0.5, 0.75, 0.9, 0.99];
const FL_GAMMAS = [0.5, 1, 2, 5];
const FL_ALPHAS = [0.25, 0.5, 0.75];
/** Standard cross-entropy (both classes weighted alike) is α = 0.5 here, as in §5.1's 30.2 AP. */
export const CE_PRIOR_ALPHA = 0.5;
/** The focal loss of the prior comparison: the paper's default γ = 2, α = 0.25. */
export const FL_PRIOR = { gamma: 2, alpha: 0.25 } as const;

/** ".25" for 0.25, "2" for 2: the paper's way of writing its parameters. */
function short(v: number): string {
  return String(v).replace(/^0\./, ".");
}

/**
 * α-balanced cross-entropy (γ = 0) as the seed's loss on logits, the configuration `ce-a<α>`
 * (`-zero-bias` without the prior).
 *
 * @example
 * ceConfig(0.75).label; // "CE α=.75"
 */
export function ceConfig(alpha: number, priorProbability = PRIOR): SweepConfig {
  const zero = priorProbability === ZERO_BIAS;
  return {
    id: `ce-a${alpha}${zero ? "-zero-bias" : ""}`,
    label: `CE α=${short(alpha)}${zero ? " zero bias" : ""}`,
    kind: "ce",
    alpha,
    gamma: 0,
    priorProbability,
    ohemRatio: null,
  };
}

/**
 * The focal loss on logits with `gamma` and `alpha`, the configuration `fl-g<γ>-a<α>`.
 *
 * @example
 * flConfig(2, 0.25).id; // "fl-g2-a0.25"
 */
export function flConfig(gamma: number, alpha: number, priorProbability = PRIOR): SweepConfig {
  const zero = priorProbability === ZERO_BIAS;
  return {
    id: `fl-g${gamma}-a${alpha}${zero ? "-zero-bias" : ""}`,
    label: `FL γ=${short(gamma)} α=${short(alpha)}${zero ? " zero bias" : ""}`,
    kind: "fl",
    alpha,
    gamma,
    priorProbability,
    ohemRatio: null,
  };
}

/**
 * OHEM with 128 examples per image and NMS 0.5; `ratio` 3 is the 1:3 variant.
 *
 * @example
 * ohemConfig(3).label; // "OHEM 1:3"
 */
export function ohemConfig(ratio: number | null): SweepConfig {
  return {
    id: ratio === null ? "ohem" : `ohem-1:${ratio}`,
    label: ratio === null ? "OHEM" : `OHEM 1:${ratio}`,
    kind: "ohem",
    alpha: 0.25,
    gamma: 2,
    priorProbability: PRIOR,
    ohemRatio: ratio,
  };
}

/**
 * The configurations of the sweep, each once: CE by α, FL by γ × α, CE (α = 0.5) and FL (γ = 2,
 * α = 0.25) with a zero bias beside their π = 0.01 runs, and OHEM plain and 1:3. `quick` keeps
 * one or two of each part, so that every row kind and plot of the report is exercised.
 *
 * @example
 * sweepGrid(false).length; // 21: 5 CE + 12 FL + 2 zero-bias + 2 OHEM
 */
export function sweepGrid(quick: boolean): SweepConfig[] {
  const ceAlphas = quick ? [0.25, 0.5, 0.75] : CE_ALPHAS;
  const gammas = quick ? [1, 2] : FL_GAMMAS;
  const flAlphas = quick ? [0.25] : FL_ALPHAS;
  return [
    ...ceAlphas.map((alpha) => ceConfig(alpha)),
    ...gammas.flatMap((gamma) => flAlphas.map((alpha) => flConfig(gamma, alpha))),
    ceConfig(CE_PRIOR_ALPHA, ZERO_BIAS),
    flConfig(FL_PRIOR.gamma, FL_PRIOR.alpha, ZERO_BIAS),
    ohemConfig(null),
    ohemConfig(3),
  ];
}

/**
 * The `train` settings of one run (without its name and directory): every setting that decides
 * the result is given here or left to `train`'s defaults, which the cache key records resolved.
 *
 * @example
 * trainConfigOf(flConfig(2, 0.25), 1, FULL_BUDGET).loss; // "focalFromLogits"
 */
export function trainConfigOf(config: SweepConfig, seed: number, budget: Budget): TrainConfig {
  return {
    dataset: budget.dataset,
    seed,
    steps: budget.steps,
    batchSize: budget.batchSize,
    trainImages: budget.trainImages,
    testImages: budget.testImages,
    evalEvery: 0,
    checkpointEvery: 100,
    loss: config.kind === "ohem" ? "ohem" : "focalFromLogits",
    alpha: config.alpha,
    gamma: config.gamma,
    ohemExamples: OHEM_EXAMPLES,
    ohemRatio: config.ohemRatio,
    model: { priorProbability: config.priorProbability },
  };
}
