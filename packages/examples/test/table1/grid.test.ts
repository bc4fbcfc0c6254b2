import { describe, expect, it } from "vitest";
import { resolveTrainConfig } from "../../src/detection/train.js";
import { runKey } from "../../src/table1/cache.js";
import {
  ceConfig,
  FULL_BUDGET,
  flConfig,
  ohemConfig,
  QUICK_BUDGET,
  sweepGrid,
  trainConfigOf,
} from "../../src/table1/grid.js";
import { jobsOf } from "../../src/table1/sweep.js";

describe("the Table 1 grid", () => {
  it("holds the issue's configurations, each once", () => {
    const grid = sweepGrid(false);
    const ids = grid.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    // 5 CE + 4 γ × 3 α FL + CE and FL with a zero bias + OHEM and OHEM 1:3 = 21.
    expect(ids).toEqual([
      "ce-a0.25",
      "ce-a0.5",
      "ce-a0.75",
      "ce-a0.9",
      "ce-a0.99",
      "fl-g0.5-a0.25",
      "fl-g0.5-a0.5",
      "fl-g0.5-a0.75",
      "fl-g1-a0.25",
      "fl-g1-a0.5",
      "fl-g1-a0.75",
      "fl-g2-a0.25",
      "fl-g2-a0.5",
      "fl-g2-a0.75",
      "fl-g5-a0.25",
      "fl-g5-a0.5",
      "fl-g5-a0.75",
      "ce-a0.5-zero-bias",
      "fl-g2-a0.25-zero-bias",
      "ohem",
      "ohem-1:3",
    ]);
    expect(grid.filter((c) => c.priorProbability === 0.5).map((c) => c.label)).toEqual([
      "CE α=.5 zero bias",
      "FL γ=2 α=.25 zero bias",
    ]);
    expect(sweepGrid(true).map((c) => c.id)).toEqual([
      "ce-a0.25",
      "ce-a0.5",
      "ce-a0.75",
      "fl-g1-a0.25",
      "fl-g2-a0.25",
      "ce-a0.5-zero-bias",
      "fl-g2-a0.25-zero-bias",
      "ohem",
      "ohem-1:3",
    ]);
  });

  it("maps each configuration onto train's settings", () => {
    const ce = trainConfigOf(ceConfig(0.75), 2, FULL_BUDGET);
    expect(ce).toMatchObject({
      seed: 2,
      steps: FULL_BUDGET.steps,
      loss: "focalFromLogits",
      alpha: 0.75,
      gamma: 0,
      model: { priorProbability: 0.01 },
    });
    expect(trainConfigOf(flConfig(2, 0.25, 0.5), 0, QUICK_BUDGET)).toMatchObject({
      loss: "focalFromLogits",
      alpha: 0.25,
      gamma: 2,
      steps: QUICK_BUDGET.steps,
      trainImages: QUICK_BUDGET.trainImages,
      model: { priorProbability: 0.5 },
    });
    const ohem = trainConfigOf(ohemConfig(3), 0, FULL_BUDGET);
    expect(ohem).toMatchObject({ loss: "ohem", ohemExamples: 128, ohemRatio: 3 });
    // Every setting is one that train accepts.
    for (const c of sweepGrid(false))
      expect(() => resolveTrainConfig(trainConfigOf(c, 0, FULL_BUDGET))).not.toThrow();
  });

  it("gives every (configuration, seed) its own cache key, which follows seed, budget, settings and code", () => {
    const jobs = jobsOf(sweepGrid(false), 3, FULL_BUDGET, "c0de");
    expect(jobs).toHaveLength(63);
    expect(new Set(jobs.map((j) => j.key)).size).toBe(63);
    expect(jobs.slice(0, 3).map((j) => [j.config.id, j.seed])).toEqual([
      ["ce-a0.25", 0],
      ["ce-a0.25", 1],
      ["ce-a0.25", 2],
    ]);
    const training = trainConfigOf(flConfig(2, 0.25), 0, FULL_BUDGET);
    const key = runKey(training, "c0de");
    expect(key).toMatch(/^[0-9a-f]{16}$/);
    expect(runKey({ ...training }, "c0de")).toBe(key);
    // Name and directory are where a run goes, not what it computes.
    expect(runKey({ ...training, name: "x", runsDir: "elsewhere" }, "c0de")).toBe(key);
    expect(runKey({ ...training, steps: training.steps! + 1 }, "c0de")).not.toBe(key);
    expect(runKey({ ...training, seed: 1 }, "c0de")).not.toBe(key);
    expect(runKey(training, "c0df")).not.toBe(key);
    // The key is of the resolved settings: a default written out is the same run, and another
    // value of a setting left to train's default (as when that default changes) is another.
    expect(runKey({ ...training, lr: resolveTrainConfig(training).lr }, "c0de")).toBe(key);
    expect(runKey({ ...training, lr: 1e-3 }, "c0de")).not.toBe(key);
  });
});
