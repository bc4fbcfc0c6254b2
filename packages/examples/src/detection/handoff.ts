/** Handing a trained run to other engines: its next training batches with their targets and reference outputs as one safetensors file (for PyTorch), and its model as ONNX. */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { concat, noGrad, type Tensor } from "@focalgrad/core";
import { encodeSafetensors } from "@focalgrad/core/checkpoint";
import { anchorTargets, focal, smoothL1 } from "@focalgrad/losses";
import { decodeModel, type OnnxExportSummary, toOnnx } from "@focalgrad/onnx";
import { digitsDataset, shapesDataset } from "./datasets.js";
import { loadDetector } from "./detector.js";
import { writeAtomic } from "./files.js";
import { BatchLoader } from "./loader.js";
import type { ResolvedTrainConfig } from "./train.js";

/** Options of `exportBatches`. */
export interface ExportBatchesOptions {
  /** How many training steps' batches to write. */
  steps: number;
  /** The first step (0-based). Default: the step after the run's last, so training continues. */
  from?: number;
}

/** What `exportBatches` wrote. */
export interface ExportedBatches {
  path: string;
  from: number;
  steps: number;
  batchSize: number;
  /** focalgrad's losses on the first batch, in training mode: the reference the other side must meet. */
  classificationLoss: number;
  boxLoss: number;
}

async function trainingConfigOf(runDir: string): Promise<ResolvedTrainConfig> {
  const path = join(runDir, "config.json");
  let parsed: { training?: ResolvedTrainConfig };
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read ${JSON.stringify(path)}: ${(e as Error).message}`);
  }
  if (parsed.training === undefined)
    throw new Error(`${JSON.stringify(path)} has no "training" section`);
  return parsed.training;
}

/**
 * Writes the batches that `train` would feed the run in `runDir` at steps `from … from + steps − 1`
 * (the same shuffle and mirroring, from the run's seed) to `path` as safetensors, with their
 * anchor targets exactly as training computes them, so that another framework trains on identical
 * images and targets:
 *
 * - `images` `[steps · B, 3, S, S]`, `labels` `[steps · B, N, C + 1]` and `regression`
 *   `[steps · B, N, 5]` (keras-retinanet's layout, the anchor state last), batch after batch;
 * - `check.logits` and `check.regression`: the model's outputs on the first batch in eval mode, for
 *   comparing two implementations of the same weights;
 * - metadata: the step range, the batch size, the loss settings, and focalgrad's classification
 *   and box losses on the first batch in training mode.
 *
 * @example
 * await exportBatches("runs/demo", "runs/demo/batches.safetensors", { steps: 20 });
 */
export async function exportBatches(
  runDir: string,
  path: string,
  options: ExportBatchesOptions,
): Promise<ExportedBatches> {
  const training = await trainingConfigOf(runDir);
  if (training.dataset === "custom") {
    throw new Error(
      "exportBatches: this run was trained on your own data, which the run directory does not hold; export its batches from your own code with BatchLoader and anchorTargets",
    );
  }
  if (training.loss !== "focal") {
    throw new Error(
      `exportBatches: the run was trained with the "${training.loss}" loss; the PyTorch side implements the seed's focal loss only`,
    );
  }
  const { steps } = options;
  const from = options.from ?? training.steps;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new Error(`exportBatches: steps must be an integer >= 1, got ${steps}`);
  }
  if (!Number.isInteger(from) || from < 0) {
    throw new Error(`exportBatches: from must be an integer >= 0, got ${from}`);
  }
  const detector = await loadDetector(runDir);
  const make = training.dataset === "digits" ? digitsDataset : shapesDataset;
  const trainSet = make({
    split: "train",
    count: training.trainImages,
    seed: training.seed,
    imageSize: training.imageSize,
  });
  const loader = new BatchLoader(trainSet, {
    batchSize: training.batchSize,
    seed: training.seed,
    horizontalFlip: training.horizontalFlip,
  });
  const size = training.imageSize;
  const targetsOf = (step: number) => {
    const batch = loader.batch(step);
    const targets = anchorTargets(detector.anchorSet.anchors, batch.annotations, {
      numClasses: trainSet.classNames.length,
      imageShape: [size, size],
      lowQualityMatches: training.lowQualityMatches,
      boxCoder: detector.coder,
    });
    return { images: batch.images, ...targets };
  };
  const batches = Array.from({ length: steps }, (_, k) => targetsOf(from + k));
  const first = batches[0];
  const model = detector.model;
  const check = noGrad(() => model.eval().forward(first.images));
  // The losses as train() computes them: training mode (BatchNorm on the batch's statistics).
  const losses = noGrad(() => {
    const out = model.train().forward(first.images);
    return {
      classification: focal({ alpha: training.alpha, gamma: training.gamma })(
        first.labels,
        out.classification,
      ).item(),
      box: smoothL1({ sigma: 3 })(first.regression, out.regression).item(),
    };
  });
  const join0 = (pick: (b: (typeof batches)[number]) => Tensor) => concat(batches.map(pick), 0);
  const tensors = new Map<string, Tensor>([
    ["images", join0((b) => b.images)],
    ["labels", join0((b) => b.labels)],
    ["regression", join0((b) => b.regression)],
    ["check.logits", check.logits],
    ["check.regression", check.regression],
  ]);
  const metadata = {
    from: String(from),
    steps: String(steps),
    batch_size: String(training.batchSize),
    alpha: String(training.alpha),
    gamma: String(training.gamma),
    sigma: "3",
    focalgrad_classification_loss: String(losses.classification),
    focalgrad_box_loss: String(losses.box),
  };
  await writeAtomic(path, encodeSafetensors(tensors, metadata));
  return {
    path,
    from,
    steps,
    batchSize: training.batchSize,
    classificationLoss: losses.classification,
    boxLoss: losses.box,
  };
}

/** Options of `exportDetectorOnnx`. */
export interface ExportDetectorOptions {
  /** Images per call of the exported graph. Default 1. */
  batch?: number;
  /** The ONNX opset. Default 13. */
  opset?: number;
}

/**
 * Writes the model of the run in `runDir` as ONNX to `path`: input `images` `[batch, 3, S, S]`,
 * outputs `logits`, `classification` (sigmoid) and `regression`, in the layout `RetinaNet` returns
 * (the post-processing stays outside the graph). Returns what was written.
 *
 * @example
 * const summary = await exportDetectorOnnx("runs/demo", "model.onnx");
 * summary.nodes.Conv; // 33 with the default settings
 */
export async function exportDetectorOnnx(
  runDir: string,
  path: string,
  options: ExportDetectorOptions = {},
): Promise<OnnxExportSummary> {
  const detector = await loadDetector(runDir);
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`exportDetectorOnnx: batch must be an integer >= 1, got ${batch}`);
  }
  const size = detector.config.imageSize;
  // Real images to trace on (the check for values that depend on the input needs varied pixels);
  // a run on your own data gets shapes of its size, which serve as well.
  const make =
    (await trainingConfigOf(runDir)).dataset === "digits" ? digitsDataset : shapesDataset;
  const example = make({ split: "test", count: batch, seed: 1, imageSize: size }).images;
  const summary = toOnnx(detector.model, [example], {
    opset: options.opset ?? 13,
    inputNames: ["images"],
    docString: `focalgrad RetinaNet from ${runDir}: images [${batch}, 3, ${size}, ${size}] in [0, 1]`,
  });
  await writeAtomic(path, summary.bytes);
  return summary;
}

/**
 * Runs the ONNX file at `path`, exported from the run in `runDir`, in ONNX Runtime on held-out
 * images of the run's dataset (as many as the graph takes) and returns the largest difference
 * from focalgrad's outputs, per output. Needs `onnxruntime-node`.
 *
 * @example
 * const { worst } = await checkOnnx("runs/demo", "model.onnx");
 * worst.classification; // e.g. 3e-7
 */
export async function checkOnnx(
  runDir: string,
  path: string,
): Promise<{ images: number; worst: Record<string, number> }> {
  const { runOnnx } = await import("@focalgrad/onnx/runtime");
  const detector = await loadDetector(runDir);
  const training = await trainingConfigOf(runDir);
  const bytes = new Uint8Array(await readFile(path));
  const input = decodeModel(bytes).graph.input[0];
  const batch = input.type.tensor_type.shape.dim[0].dim_value;
  const make = training.dataset === "digits" ? digitsDataset : shapesDataset;
  const size = detector.config.imageSize;
  const images = make({ split: "test", count: batch, seed: training.seed, imageSize: size }).images;
  const theirs = await runOnnx(bytes, { [input.name]: images });
  const ours = noGrad(() => detector.model.eval().forward(images));
  const worst: Record<string, number> = {};
  for (const name of ["logits", "classification", "regression"] as const) {
    const a = ours[name].read();
    const b = theirs[name].read();
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    worst[name] = d;
  }
  return { images: batch, worst };
}
