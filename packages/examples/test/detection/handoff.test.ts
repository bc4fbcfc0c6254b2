import { spawnSync } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeSafetensors } from "@focalgrad/core/checkpoint";
import { anchorTargets, focal, smoothL1 } from "@focalgrad/losses";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shapesDataset } from "../../src/detection/datasets.js";
import { loadDetector } from "../../src/detection/detector.js";
import { meanAveragePrecision } from "../../src/detection/evaluate.js";
import { exportBatches } from "../../src/detection/handoff.js";
import { BatchLoader } from "../../src/detection/loader.js";
import { tinyRun } from "./tinyRun.js";

const pythonDir = join(dirname(fileURLToPath(import.meta.url)), "../../python");

/** The first Python that can import torch, or why there is none. */
function findPython(): { python: string | null; reason: string } {
  const tried: string[] = [];
  for (const candidate of ["/usr/bin/python3", "python3"]) {
    const probe = spawnSync(candidate, ["-c", "import torch, torch.distributed.run"], {
      encoding: "utf8",
    });
    if (probe.status === 0) return { python: candidate, reason: "" };
    tried.push(`${candidate}: ${probe.error?.message ?? probe.stderr.trim().split("\n").at(-1)}`);
  }
  return { python: null, reason: `no python3 here can import torch (${tried.join("; ")})` };
}

const { python, reason } = findPython();

let runDir = "";
let groupRunDir = "";
beforeAll(async () => {
  runDir = await tinyRun("batch");
  if (python !== null) groupRunDir = await tinyRun("group");
}, 120_000);
afterAll(async () => {
  for (const dir of [runDir, groupRunDir]) {
    if (dir !== "") await rm(dirname(dir), { recursive: true, force: true });
  }
});

/** Runs handoff.py (under torchrun with `processes`) and returns its output and its step-1 losses. */
function handoff(run: string, data: string, out: string, processes: number) {
  const script = [join(pythonDir, "handoff.py"), "--run", run, "--data", data, "--out", out];
  // --redirects/--tee 1: torch 1.13's own defaults of these fail to parse on Python 3.11.
  const torchrun = [
    "-m",
    "torch.distributed.run",
    `--nproc_per_node=${processes}`,
    "--standalone",
    "--redirects",
    "1",
    "--tee",
    "1",
  ];
  const result = spawnSync(python!, processes > 1 ? [...torchrun, ...script] : script, {
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  const first = /step 1\/\d+: classification loss ([\d.]+), box loss ([\d.]+)/.exec(result.stdout);
  return { ...result, firstStep: [Number(first?.[1]), Number(first?.[2])] };
}

describe("exportBatches", () => {
  it("writes the batches train() takes next, their targets, and focalgrad's outputs and losses on the first", async () => {
    const path = join(runDir, "batches.safetensors");
    const written = await exportBatches(runDir, path, { steps: 2 });
    // The run trained steps 0–2, so the export continues at step 3.
    expect(written).toMatchObject({ from: 3, steps: 2, batchSize: 8 });
    const { tensors, metadata } = decodeSafetensors(await readFile(path));
    const config = JSON.parse(await readFile(join(runDir, "config.json"), "utf8"));
    const trainSet = shapesDataset({ split: "train", count: 16, seed: 0, imageSize: 64 });
    const loader = new BatchLoader(trainSet, {
      batchSize: 8,
      seed: 0,
      horizontalFlip: config.training.horizontalFlip,
    });
    const detector = await loadDetector(runDir);
    const images = tensors.get("images")!;
    const labels = tensors.get("labels")!;
    expect(images.shape).toEqual([16, 3, 64, 64]);
    // Anchors of 64 × 64 on P3–P6: (8² + 4² + 2² + 1) = 85 positions × A per position.
    const anchors = 85 * config.detector.model.numAnchors;
    expect(labels.shape).toEqual([16, anchors, 4]);
    expect(tensors.get("regression")!.shape).toEqual([16, anchors, 5]);
    for (const k of [0, 1]) {
      const batch = loader.batch(3 + k);
      const targets = anchorTargets(detector.anchorSet.anchors, batch.annotations, {
        numClasses: 3,
        imageShape: [64, 64],
        lowQualityMatches: config.training.lowQualityMatches,
        boxCoder: detector.coder,
      });
      const rows = (n: number) => [k * n, (k + 1) * n] as const;
      const size = 3 * 64 * 64;
      expect(equalValues(images.read().slice(...rows(8 * size)), batch.images.read())).toBe(true);
      expect(
        equalValues(labels.read().slice(...rows(8 * anchors * 4)), targets.labels.read()),
      ).toBe(true);
    }
    expect(metadata).toMatchObject({ from: "3", steps: "2", batch_size: "8", alpha: "0.25" });
    // The reference losses are the ones train()'s losses give on the first batch in training mode.
    const first = loader.batch(3);
    const targets = anchorTargets(detector.anchorSet.anchors, first.annotations, {
      numClasses: 3,
      imageShape: [64, 64],
      lowQualityMatches: config.training.lowQualityMatches,
      boxCoder: detector.coder,
    });
    // The reference outputs are eval mode's (BatchNorm on its running statistics); computed
    // first, since a training-mode pass updates those statistics.
    const evaluated = detector.model.eval().forward(first.images);
    expect(equalValues(tensors.get("check.logits")!.read(), evaluated.logits.read())).toBe(true);
    const out = detector.model.train().forward(first.images);
    expect(Number(metadata.focalgrad_classification_loss)).toBe(
      focal({ alpha: config.training.alpha, gamma: config.training.gamma })(
        targets.labels,
        out.classification,
      ).item(),
    );
    expect(Number(metadata.focalgrad_box_loss)).toBe(
      smoothL1({ sigma: 3 })(targets.regression, out.regression).item(),
    );
  });

  it("rejects what it cannot export", async () => {
    await expect(exportBatches(runDir, join(runDir, "x"), { steps: 0 })).rejects.toThrow(
      /exportBatches: steps must be an integer >= 1, got 0/,
    );
    await expect(exportBatches(runDir, join(runDir, "x"), { steps: 1, from: -1 })).rejects.toThrow(
      /from must be an integer >= 0, got -1/,
    );
    await expect(exportBatches(join(runDir, "nowhere"), "x", { steps: 1 })).rejects.toThrow(
      /cannot read .*nowhere\/config.json/,
    );
  });
});

describe("the PyTorch round trip", () => {
  it("the Python unittests (safetensors fallback, losses, layers) pass", (ctx) => {
    if (python === null) return ctx.skip(reason);
    const run = spawnSync(python, ["-m", "unittest", "discover", "-s", pythonDir], {
      encoding: "utf8",
    });
    expect(run.stderr).toMatch(/\nOK/);
    expect(run.status).toBe(0);
  });

  it("PyTorch agrees with focalgrad, trains on the exported batches with DDP on 2 processes, and focalgrad loads and scores the result", async (ctx) => {
    if (python === null) return ctx.skip(reason);
    const data = join(groupRunDir, "batches.safetensors");
    await exportBatches(groupRunDir, data, { steps: 2 });
    const out = join(dirname(groupRunDir), "tiny-torch");
    const run = handoff(groupRunDir, data, out, 2);
    expect(run.stdout).toMatch(/check on 8 images/);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/trained 2 steps of 8 images on 2 processes \(4 each\)/);
    // The first step's loss over both processes (each with half the batch) is focalgrad's loss on
    // the whole batch: the normaliser counts the object anchors of both halves.
    const { metadata } = decodeSafetensors(await readFile(data));
    expect(run.firstStep[0]).toBeCloseTo(Number(metadata.focalgrad_classification_loss), 4);
    expect(run.firstStep[1]).toBeCloseTo(Number(metadata.focalgrad_box_loss), 4);

    // focalgrad loads the PyTorch weights strictly (same names, shapes and dtypes) and scores them.
    const before = await loadDetector(groupRunDir);
    const after = await loadDetector(out);
    const changed = [...after.model.stateDict()].filter(
      ([name, t]) => !equalValues(t.read(), before.model.stateDict().get(name)!.read()),
    );
    expect(changed.length).toBe(after.model.stateDict().size);
    const test = shapesDataset({ split: "test", count: 6, seed: 0, imageSize: 64 });
    const metrics = meanAveragePrecision(after.detect(test.images), test.annotations, {
      numClasses: 3,
    });
    expect(metrics.map).toBeGreaterThanOrEqual(0);
    expect(metrics.map).toBeLessThanOrEqual(1);
    const config = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(config.pytorch).toMatchObject({ steps: 2, processes: 2 });
    expect(config.detector).toEqual(before.config);
  }, 300_000);

  it("a BatchNorm run continues in one process: the same first loss, and int32 step counters focalgrad reads", async (ctx) => {
    if (python === null) return ctx.skip(reason);
    const data = join(runDir, "batches.safetensors");
    await exportBatches(runDir, data, { steps: 2 });
    const out = join(dirname(runDir), "tiny-batch-torch");
    const run = handoff(runDir, data, out, 1);
    expect(run.status, run.stderr).toBe(0);
    // One process sees the whole batch, so BatchNorm's batch statistics are focalgrad's too.
    const { metadata } = decodeSafetensors(await readFile(data));
    expect(run.firstStep[0]).toBeCloseTo(Number(metadata.focalgrad_classification_loss), 4);
    expect(run.firstStep[1]).toBeCloseTo(Number(metadata.focalgrad_box_loss), 4);
    const after = await loadDetector(out);
    const counter = after.model.stateDict().get("backbone.stages.0.0.1.num_batches_tracked")!;
    // 3 training steps in focalgrad, 2 in PyTorch.
    expect([counter.dtype, counter.item()]).toEqual(["int32", 5]);
  }, 300_000);
});

function equalValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  return a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));
}
