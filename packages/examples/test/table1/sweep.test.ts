import { existsSync, mkdtempSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { TrainConfig, TrainResult, train } from "../../src/detection/train.js";
import { ResultCache, type RunResult } from "../../src/table1/cache.js";
import { QUICK_BUDGET, sweepGrid } from "../../src/table1/grid.js";
import { formatDuration, type Job, jobsOf, runJob, runSweep } from "../../src/table1/sweep.js";

const root = mkdtempSync(join(tmpdir(), "focalgrad-table1-sweep-"));
afterAll(() => rm(root, { recursive: true, force: true }));

// CE α = .25 and α = .5, seeds 0 and 1: four jobs.
const jobs = jobsOf(sweepGrid(true).slice(0, 2), 2, QUICK_BUDGET, "c0de");

const resultOf = (map: number): RunResult => ({
  map,
  cocoMap: map / 2,
  perClass: [map],
  classificationLosses: [1, 0.5],
  seconds: 1,
  diverged: null,
});

describe("runSweep", () => {
  it("caches each run as it ends, and a second sweep after a failure runs only the rest", async () => {
    const cache = new ResultCache(join(root, "resume"));
    let clock = 0;
    const lines: string[] = [];
    let calls = 0;
    // Runs take 10 s, then 30 s; the third fails (as if the machine stopped the sweep there).
    const failing = async (job: Job) => {
      calls++;
      if (calls === 3) throw new Error("killed");
      clock += calls === 1 ? 10_000 : 30_000;
      return resultOf(0.1 * (jobs.indexOf(job) + 1));
    };
    await expect(
      runSweep({ jobs, cache, runner: failing, log: (l) => lines.push(l), now: () => clock }),
    ).rejects.toThrow("killed");
    // ETA: after the first run 10 s per run × 3 left; after the second (10 + 30) / 2 = 20 s × 2.
    expect(lines).toEqual([
      "[1/4] CE α=.25, seed 0: AP@0.5 0.100, COCO AP 0.050 (10 s; ETA 30 s)",
      "[2/4] CE α=.25, seed 1: AP@0.5 0.200, COCO AP 0.100 (30 s; ETA 40 s)",
    ]);
    expect(await cache.read(jobs[0].key)).toMatchObject({
      map: 0.1,
      configId: "ce-a0.25",
      seed: 0,
    });
    expect(await cache.read(jobs[2].key)).toBeNull();

    const ran: string[] = [];
    const again: string[] = [];
    const results = await runSweep({
      jobs,
      cache,
      runner: async (job) => {
        ran.push(job.key);
        clock += 5_000;
        return resultOf(0.1 * (jobs.indexOf(job) + 1));
      },
      log: (l) => again.push(l),
      now: () => clock,
    });
    expect(ran).toEqual([jobs[2].key, jobs[3].key]);
    expect(again).toEqual([
      "[1/4] CE α=.25, seed 0: AP@0.5 0.100, COCO AP 0.050 (cached)",
      "[2/4] CE α=.25, seed 1: AP@0.5 0.200, COCO AP 0.100 (cached)",
      "[3/4] CE α=.5, seed 0: AP@0.5 0.300, COCO AP 0.150 (5 s; ETA 5 s)",
      "[4/4] CE α=.5, seed 1: AP@0.5 0.400, COCO AP 0.200 (5 s; done)",
    ]);
    expect(results.map((r) => [r.configId, r.seed, r.map])).toEqual([
      ["ce-a0.25", 0, 0.1],
      ["ce-a0.25", 1, 0.2],
      ["ce-a0.5", 0, 0.30000000000000004],
      ["ce-a0.5", 1, 0.4],
    ]);
  });

  it("runs at most `concurrency` at a time and returns the results in job order", async () => {
    let active = 0;
    let most = 0;
    const results = await runSweep({
      jobs,
      cache: new ResultCache(join(root, "parallel")),
      concurrency: 2,
      runner: async (job) => {
        active++;
        most = Math.max(most, active);
        // The first job is the slowest, so the others finish before it.
        await new Promise((r) => setTimeout(r, job === jobs[0] ? 30 : 5));
        active--;
        return resultOf(jobs.indexOf(job));
      },
      log: () => {},
    });
    expect(most).toBe(2);
    expect(results.map((r) => r.map)).toEqual([0, 1, 2, 3]);
  });

  it("says a diverged run in its line", async () => {
    const lines: string[] = [];
    await runSweep({
      jobs: jobs.slice(0, 1),
      cache: new ResultCache(join(root, "diverged")),
      runner: async () => ({
        ...resultOf(0),
        classificationLosses: [3, 40, 900],
        diverged: "boom",
      }),
      log: (l) => lines.push(l),
      now: () => 0,
    });
    expect(lines).toEqual(["[1/1] CE α=.25, seed 0: diverged after 3 steps (0 s; done)"]);
  });
});

describe("formatDuration", () => {
  it("writes seconds, minutes and hours", () => {
    expect(formatDuration(12.4)).toBe("12 s");
    expect(formatDuration(250)).toBe("4 min 10 s");
    // 3900 s = 1 h 5 min.
    expect(formatDuration(3900)).toBe("1 h 05 min");
  });
});

/** A stand-in for train that records its settings and leaves a file in the run directory. */
function fakeTrainer(seen: TrainConfig[], behaviour: "ok" | "diverge" | "fail") {
  return (async (config: TrainConfig) => {
    seen.push(config);
    const runDir = join(config.runsDir!, config.name!);
    await mkdir(runDir, { recursive: true });
    await writeFile(join(runDir, "config.json"), "{}");
    if (behaviour === "fail") throw new Error("train: data.train.images must be float32");
    if (behaviour === "diverge") {
      config.onStep?.(1, 5, 1);
      config.onStep?.(2, 50, 1);
      throw new Error(
        "train: the loss is not finite at step 2 (classification NaN, box 1); lower --lr",
      );
    }
    const final = {
      step: 2,
      classificationLoss: 0.4,
      boxLoss: 0.3,
      images: 4,
      map: 0.6,
      cocoMap: 0.3,
      perClass: [0.6],
    };
    return {
      runDir,
      step: 2,
      interrupted: false,
      final,
      evaluations: [final],
      losses: [
        [0, 0.9, 0.5],
        [1, 0.4, 0.3],
      ],
      seconds: 3,
    } satisfies TrainResult;
  }) as typeof train;
}

describe("runJob", () => {
  const job = jobs[0];
  it("trains in runsDir/<key>, quietly and without plots, keeps the metrics and removes the directory", async () => {
    const seen: TrainConfig[] = [];
    const runsDir = join(root, "runs-ok");
    const result = await runJob(job, runsDir, fakeTrainer(seen, "ok"));
    expect(seen[0]).toMatchObject({
      ...job.training,
      name: job.key,
      runsDir,
      resume: false,
      quiet: true,
      plots: false,
    });
    expect(result).toEqual({
      map: 0.6,
      cocoMap: 0.3,
      perClass: [0.6],
      classificationLosses: [0.9, 0.4],
      seconds: 3,
      diverged: null,
    });
    expect(existsSync(join(runsDir, job.key))).toBe(false);
  });

  it("continues the checkpoint a stopped sweep left", async () => {
    const seen: TrainConfig[] = [];
    const runsDir = join(root, "runs-resume");
    await mkdir(join(runsDir, job.key), { recursive: true });
    await writeFile(join(runsDir, job.key, "checkpoint.safetensors"), "");
    await runJob(job, runsDir, fakeTrainer(seen, "ok"));
    expect(seen[0].resume).toBe(true);
  });

  it("records a divergence as a result with the losses up to it, and lets other errors through", async () => {
    const runsDir = join(root, "runs-diverge");
    const result = await runJob(job, runsDir, fakeTrainer([], "diverge"));
    expect(result).toMatchObject({
      map: 0,
      cocoMap: 0,
      perClass: [],
      classificationLosses: [5, 50],
    });
    expect(result.diverged).toMatch(/loss is not finite at step 2/);
    await expect(runJob(job, runsDir, fakeTrainer([], "fail"))).rejects.toThrow(/must be float32/);
  });

  it("runs the real train on a tiny budget", { timeout: 60_000 }, async () => {
    const tiny: Job = {
      ...job,
      training: {
        ...job.training,
        trainImages: 4,
        testImages: 2,
        imageSize: 32,
        steps: 2,
        batchSize: 2,
        model: {
          ...job.training.model,
          backboneChannels: [4, 4, 8, 8, 8],
          stageDepth: 0,
          fpnChannels: 8,
          headDepth: 1,
          headWidth: 8,
        },
      },
    };
    const runsDir = join(root, "runs-real");
    const result = await runJob(tiny, runsDir);
    expect(result.classificationLosses).toHaveLength(2);
    expect(result.diverged).toBeNull();
    expect(result.map).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(runsDir, job.key))).toBe(false);
  });
});
