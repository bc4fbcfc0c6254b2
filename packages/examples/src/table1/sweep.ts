/** Running the Table 1 sweep: its jobs, one training run per job, and the loop that skips cached runs, runs the rest a few at a time, caches each result and prints a line per run. */

import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { type TrainConfig, train } from "../detection/train.js";
import {
  CACHE_FORMAT,
  type CachedResult,
  type ResultCache,
  type RunResult,
  runKey,
} from "./cache.js";
import { type Budget, type SweepConfig, trainConfigOf } from "./grid.js";

/** One (configuration, seed) run of the sweep. */
export interface Job {
  config: SweepConfig;
  seed: number;
  /** Its cache key (`runKey`). */
  key: string;
  /** Its `train` settings, without name and directory. */
  training: TrainConfig;
}

/** Something that runs a job to its result: a child process in the sweep, a stand-in in tests. */
export type Runner = (job: Job) => Promise<RunResult>;

/**
 * Every (configuration, seed) of `grid` × seeds 0 … `seeds` − 1, configuration by configuration,
 * with its `train` settings and cache key.
 *
 * @example
 * const jobs = jobsOf(sweepGrid(false), 3, FULL_BUDGET, await codeVersion(dirs)); // 63 jobs
 */
export function jobsOf(
  grid: readonly SweepConfig[],
  seeds: number,
  budget: Budget,
  code: string,
): Job[] {
  return grid.flatMap((config) =>
    Array.from({ length: seeds }, (_, seed) => {
      const training = trainConfigOf(config, seed, budget);
      return { config, seed, key: runKey(training, code), training };
    }),
  );
}

/** `train`'s message when a loss stops being finite: the run diverged. */
const DIVERGED = /loss is not finite/;

/**
 * Trains one job in `runsDir/<key>` (continuing its checkpoint if an earlier sweep was stopped in
 * the middle of it), evaluates it on its held-out images, and removes the run directory: the
 * result is what the sweep keeps. A run whose loss stops being finite is a result too (diverged,
 * AP 0), as the paper reports plain cross-entropy without the prior.
 *
 * @example
 * const result = await runJob(jobs[0], "runs/table1/runs");
 * result.map; // mAP@0.5 on the held-out images
 */
export async function runJob(
  job: Job,
  runsDir: string,
  trainer: typeof train = train,
): Promise<RunResult> {
  const runDir = join(runsDir, job.key);
  const resume = existsSync(join(runDir, "checkpoint.safetensors"));
  const losses: number[] = [];
  const started = performance.now();
  let result: RunResult;
  try {
    const run = await trainer({
      ...job.training,
      name: job.key,
      runsDir,
      resume,
      quiet: true,
      plots: false,
      onStep: (_step, classificationLoss) => losses.push(classificationLoss),
    });
    if (run.final === null) throw new Error(`table1: run ${job.key} stopped before its last step`);
    result = {
      map: run.final.map,
      cocoMap: run.final.cocoMap,
      perClass: run.final.perClass,
      classificationLosses: run.losses.map(([, cls]) => cls),
      seconds: run.seconds,
      diverged: null,
    };
  } catch (e) {
    if (!DIVERGED.test((e as Error).message)) throw e;
    result = {
      map: 0,
      cocoMap: 0,
      perClass: [],
      classificationLosses: losses,
      seconds: (performance.now() - started) / 1000,
      diverged: (e as Error).message,
    };
  }
  await rm(runDir, { recursive: true, force: true });
  return result;
}

/** "1 h 05 min", "4 min 10 s", "12 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600)
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

/** The metrics part of a progress line. */
function outcome(result: RunResult): string {
  if (result.diverged !== null) return `diverged after ${result.classificationLosses.length} steps`;
  return `AP@0.5 ${result.map.toFixed(3)}, COCO AP ${result.cocoMap.toFixed(3)}`;
}

export interface SweepOptions {
  jobs: readonly Job[];
  cache: ResultCache;
  runner: Runner;
  /** Runs at a time. Default 1. */
  concurrency?: number;
  /** Where the progress lines go. */
  log: (line: string) => void;
  /** Clock in milliseconds, for the ETA (tests pass their own). Default `performance.now`. */
  now?: () => number;
}

/**
 * Runs every job that has no cached result, `concurrency` at a time, caching each result as soon
 * as it is in (so a sweep stopped at any point resumes with the runs it had finished), and logs
 * one line per job: `[k/n] label, seed s: AP@0.5 …, COCO AP … (time; ETA …)`, or `(cached)`. The
 * ETA is the wall time so far per run finished, times the runs left.
 * Returns the results in the order of `jobs`. A run that fails (other than by diverging) stops
 * the sweep with its error; what finished before stays cached.
 *
 * @example
 * const results = await runSweep({ jobs, cache, runner: forkedRunner(runsDir, 1), concurrency: 2, log: console.log });
 */
export async function runSweep(options: SweepOptions): Promise<CachedResult[]> {
  const { jobs, cache, runner, log } = options;
  const concurrency = options.concurrency ?? 1;
  const now = options.now ?? (() => performance.now());
  const results: (CachedResult | null)[] = await Promise.all(
    jobs.map((job) => cache.read(job.key)),
  );
  const width = String(jobs.length).length;
  let reported = 0;
  const line = (job: Job, text: string) => {
    reported++;
    log(
      `[${String(reported).padStart(width)}/${jobs.length}] ${job.config.label}, seed ${job.seed}: ${text}`,
    );
  };
  jobs.forEach((job, i) => {
    const cached = results[i];
    if (cached !== null) line(job, `${outcome(cached)} (cached)`);
  });
  const pending = jobs.map((_, i) => i).filter((i) => results[i] === null);
  const began = now();
  let finished = 0;
  let next = 0;
  const work = async () => {
    while (next < pending.length) {
      const index = pending[next++];
      const job = jobs[index];
      const started = now();
      const result = await runner(job);
      const cached: CachedResult = {
        format: CACHE_FORMAT,
        key: job.key,
        configId: job.config.id,
        seed: job.seed,
        ...result,
      };
      await cache.write(cached);
      results[index] = cached;
      finished++;
      // Wall time per finished run: with several at a time, already a share of a run's time.
      const perRun = (now() - began) / 1000 / finished;
      const left = pending.length - finished;
      const took = formatDuration((now() - started) / 1000);
      const eta = left === 0 ? "done" : `ETA ${formatDuration(perRun * left)}`;
      line(job, `${outcome(result)} (${took}; ${eta})`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, work));
  return results as CachedResult[];
}
