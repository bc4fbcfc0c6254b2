/** The `detect` command: `train` a toy RetinaNet into a run directory, `predict` with a trained one, `export` it as ONNX or its next `batches` for PyTorch; `pnpm demo` is `detect train --name demo`. */

import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { type Tensor, tensor } from "@focalgrad/core";
import { PNG } from "pngjs";
import {
  choiceOption,
  cliArguments,
  numberOption,
  parseCommandLine,
  runCommand,
  UsageError,
} from "../cli.js";
import { digitsDataset, shapesDataset } from "./datasets.js";
import { loadDetector } from "./detector.js";
import { meanAveragePrecision } from "./evaluate.js";
import { writeJson } from "./files.js";
import { checkOnnx, exportBatches, exportDetectorOnnx } from "./handoff.js";
import { detectionsGrid } from "./plots.js";
import { DATASETS, LOSSES, type TrainConfig, train } from "./train.js";

const trainUsage = `Usage: pnpm detect -- train [options]     (pnpm demo is train --name demo)

Trains a small RetinaNet from scratch on a toy dataset with the seed's focal loss and writes
runs/<name>/: config.json, model.safetensors, metrics.json, loss.png, detections.png and
checkpoint.safetensors. The same options give bit-identical weights and metrics.

Options:
  --dataset NAME         shapes (default) or digits (MNIST digits from the mnist package)
  --name NAME            run directory name (default: the dataset's name)
  --runs-dir DIR         where run directories go (default runs)
  --seed N               seed of data, weights, shuffle and augmentation (default 0)
  --steps N              optimisation steps (default 560 shapes, 1200 digits)
  --batch N              images per step (default 8)
  --train-images N       training images (default 2000 shapes, 4000 digits)
  --test-images N        held-out images of the final evaluation (default 500)
  --eval-images N        held-out images of each evaluation during training (default 100)
  --eval-every N         evaluate every N steps, 0 only at the end (default 250)
  --checkpoint-every N   checkpoint every N steps, 0 only at the end (default 100)
  --image-size N         image side in pixels (default 64 shapes, 96 digits)
  --optimizer NAME       adamw (default), adam or sgd
  --lr X                 peak learning rate (default 0.01), warm-up then cosine
  --weight-decay X       (default 0.0001)
  --warmup N             linear warm-up steps (default 50)
  --clip X               gradient norm clip (default 10)
  --loss NAME            ${LOSSES.join(", ")} (default focal)
  --alpha X, --gamma X   focal loss parameters (default 0.25; γ 2, 0.5 on digits)
  --ohem-examples N      ohem: anchors kept per image after NMS, the hardest (default 128)
  --ohem-ratio R         ohem: R negatives per positive (3 is the 1:3 variant; default: none)
  --levels A-B           pyramid levels, from 2 up to 7 (default 2-4 on shapes and digits)
  --fpn-channels N       channels of the pyramid (default 32)
  --head-depth N         conv layers of each subnet before its output (default 2)
  --head-width N         channels of those layers (default 32)
  --norm NAME            backbone normalisation: group (default) or batch
  --resume               continue the checkpoint in the run directory, bit-identically
  --quiet                log lines instead of a progress bar
  -h, --help             this text

Ctrl-C saves a checkpoint and stops; --resume continues it.`;

const predictUsage = `Usage: pnpm detect -- predict --run DIR [options]

Detects objects with the model of a run directory and writes them as JSON: by default on the
run's own held-out images (scored against their ground truth), or on PNG files of the model's
image size given with --image.

Options:
  --run DIR        a run directory written by train (required)
  --out FILE       where the detections go (default detections.json)
  --count N        held-out images to detect on (default: the run's test images)
  --image FILE     a PNG to detect on instead (repeatable)
  --png FILE       also draw the first 8 images with their detections
  -h, --help       this text`;

const exportUsage = `Usage: pnpm detect -- export --run DIR --out FILE.onnx [options]

Writes the model of a run directory as ONNX (traced through focalgrad's recording, weights as
initialisers): input "images" [batch, 3, S, S] in [0, 1], outputs "logits", "classification"
(sigmoid) and "regression" [batch, anchors, ...], in RetinaNet's layout.

Options:
  --run DIR        a run directory written by train (required)
  --out FILE       where the model goes (default model.onnx)
  --batch N        images per call of the graph (default 1)
  --opset N        ONNX opset, 13 to 21 (default 13)
  --check          run the file in ONNX Runtime (onnxruntime-node) on held-out images and
                   print how far its outputs are from focalgrad's
  -h, --help       this text`;

const batchesUsage = `Usage: pnpm detect -- batches --run DIR --steps N --out FILE [options]

Writes the training batches the run would take next (the same shuffle and mirroring, from its
seed) with their anchor targets, the model's outputs on the first batch and focalgrad's losses on
it, as one safetensors file: what packages/examples/python/handoff.py trains PyTorch on.

Options:
  --run DIR        a run directory written by train (required)
  --steps N        how many steps' batches (required)
  --from N         the first step (default: the step after the run's last)
  --out FILE       where they go (default batches.safetensors)
  -h, --help       this text`;

const usage = `Usage: pnpm detect -- <command> [options]

Commands:
  train      train a RetinaNet on a toy dataset (pnpm detect -- train --help)
  predict    detect with a trained run, and score it on its held-out images
  export     write a run's model as ONNX (pnpm detect -- export --help)
  batches    write a run's next training batches for PyTorch (pnpm detect -- batches --help)`;

/** The --run directory, which every command but train needs. */
function runOption(command: string, run: string | undefined): string {
  if (run === undefined) {
    throw new UsageError(`${command}: --run DIR is required (a run directory written by train)`);
  }
  return run;
}

/** What a bad run directory or file makes `promise` reject with, as a one-line user error. */
function asUsageError<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((e: Error) => {
    throw new UsageError(e.message);
  });
}

function levelsOption(text: unknown): number[] | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d)-(\d)$/.exec(String(text));
  const from = match === null ? Number.NaN : Number(match[1]);
  const to = match === null ? Number.NaN : Number(match[2]);
  if (!(from >= 2 && from <= to && to <= 7)) {
    throw new UsageError(
      `--levels: expected A-B with 2 <= A <= B <= 7 (e.g. 3-5), got "${String(text)}"`,
    );
  }
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The `train` options as a `TrainConfig`, or null for --help. */
export function parseTrainArguments(args: readonly string[]): TrainConfig | null {
  const parsed = parseCommandLine(args, {
    dataset: { type: "string" },
    name: { type: "string" },
    "runs-dir": { type: "string" },
    seed: { type: "string" },
    steps: { type: "string" },
    batch: { type: "string" },
    "train-images": { type: "string" },
    "test-images": { type: "string" },
    "eval-images": { type: "string" },
    "eval-every": { type: "string" },
    "checkpoint-every": { type: "string" },
    "image-size": { type: "string" },
    optimizer: { type: "string" },
    lr: { type: "string" },
    "weight-decay": { type: "string" },
    warmup: { type: "string" },
    clip: { type: "string" },
    loss: { type: "string" },
    alpha: { type: "string" },
    gamma: { type: "string" },
    "ohem-examples": { type: "string" },
    "ohem-ratio": { type: "string" },
    levels: { type: "string" },
    "fpn-channels": { type: "string" },
    "head-depth": { type: "string" },
    "head-width": { type: "string" },
    norm: { type: "string" },
    resume: { type: "boolean" },
    quiet: { type: "boolean" },
  });
  if (parsed === null) return null;
  const { values } = parsed;
  const integer = (name: keyof typeof values & string, min: number) =>
    numberOption(name, values[name] as string | undefined, { integer: true, min });
  const model = {
    levels: levelsOption(values.levels),
    fpnChannels: integer("fpn-channels", 1),
    headDepth: integer("head-depth", 0),
    headWidth: integer("head-width", 1),
    norm: choiceOption("norm", values.norm, ["group", "batch"] as const),
  };
  const config: TrainConfig = {
    dataset: choiceOption("dataset", values.dataset, DATASETS),
    name: values.name,
    runsDir: values["runs-dir"],
    seed: integer("seed", 0),
    steps: integer("steps", 1),
    batchSize: integer("batch", 1),
    trainImages: integer("train-images", 1),
    testImages: integer("test-images", 1),
    evalImages: integer("eval-images", 1),
    evalEvery: integer("eval-every", 0),
    checkpointEvery: integer("checkpoint-every", 0),
    imageSize: integer("image-size", 32),
    optimizer: choiceOption("optimizer", values.optimizer, ["adamw", "adam", "sgd"] as const),
    lr: numberOption("lr", values.lr, { above: 0 }),
    weightDecay: numberOption("weight-decay", values["weight-decay"], { min: 0 }),
    warmupSteps: integer("warmup", 1),
    clipNorm: numberOption("clip", values.clip, { above: 0 }),
    loss: choiceOption("loss", values.loss, LOSSES),
    alpha: numberOption("alpha", values.alpha, { min: 0, max: 1 }),
    gamma: numberOption("gamma", values.gamma, { min: 0 }),
    ohemExamples: integer("ohem-examples", 1),
    ohemRatio: numberOption("ohem-ratio", values["ohem-ratio"], { above: 0 }),
    model: Object.fromEntries(Object.entries(model).filter(([, v]) => v !== undefined)),
    resume: values.resume,
    quiet: values.quiet,
  };
  return Object.fromEntries(
    Object.entries(config).filter(([, v]) => v !== undefined),
  ) as TrainConfig;
}

/** A PNG file as a [1, 3, H, W] float32 image in [0, 1] (alpha dropped). */
async function readPng(path: string): Promise<Tensor> {
  let png: PNG;
  try {
    png = PNG.sync.read(await readFile(path));
  } catch (e) {
    throw new UsageError(
      `--image: cannot read ${JSON.stringify(path)} as PNG: ${(e as Error).message}`,
    );
  }
  const { width, height, data } = png;
  const out = new Float32Array(3 * width * height);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) out[c * width * height + i] = data[4 * i + c] / 255;
  }
  return tensor(out, { shape: [1, 3, height, width], dtype: "float32" });
}

async function runPredict(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, {
    run: { type: "string" },
    out: { type: "string", default: "detections.json" },
    count: { type: "string" },
    image: { type: "string", multiple: true },
    png: { type: "string" },
  });
  if (parsed === null) {
    console.log(predictUsage);
    return;
  }
  const { values } = parsed;
  const run = runOption("predict", values.run);
  const detector = await asUsageError(loadDetector(run));
  const size = detector.config.imageSize;
  const names = detector.config.classNames;
  let images: Tensor;
  let sources: string[];
  let truths = null;
  if (values.image !== undefined) {
    const loaded = await Promise.all(values.image.map(readPng));
    loaded.forEach((t, i) => {
      if (t.shape[2] !== size || t.shape[3] !== size) {
        throw new UsageError(
          `--image: ${values.image![i]} is ${t.shape[3]} × ${t.shape[2]}, the model takes ${size} × ${size}`,
        );
      }
    });
    const pixels = new Float32Array(loaded.length * 3 * size * size);
    for (const [i, t] of loaded.entries()) pixels.set(t.data, i * 3 * size * size);
    images = tensor(pixels, { shape: [loaded.length, 3, size, size], dtype: "float32" });
    sources = values.image;
  } else {
    const { training } = JSON.parse(await readFile(`${run}/config.json`, "utf8"));
    if (training.dataset === "custom") {
      throw new UsageError(
        "predict: this run was trained on your own data; give the images with --image FILE.png",
      );
    }
    const count =
      numberOption("count", values.count, { integer: true, min: 1 }) ?? training.testImages;
    const make = training.dataset === "digits" ? digitsDataset : shapesDataset;
    const test = make({ split: "test", count, seed: training.seed, imageSize: size });
    images = test.images;
    truths = test.annotations;
    sources = test.annotations.map(
      (_, i) => `${training.dataset} test image ${i} (seed ${training.seed})`,
    );
  }
  const detections = detector.detect(images);
  const metrics =
    truths === null ? null : meanAveragePrecision(detections, truths, { numClasses: names.length });
  await writeJson(values.out, {
    run,
    metrics,
    images: detections.map((d, i) => ({
      source: sources[i],
      detections: Array.from({ length: d.scores.shape[0] }, (_, k) => ({
        box: Array.from(d.boxes.data.subarray(4 * k, 4 * k + 4)),
        score: d.scores.data[k],
        label: d.labels.data[k],
        className: names[d.labels.data[k]],
      })),
    })),
  });
  const found = detections.reduce((a, d) => a + d.scores.shape[0], 0);
  console.log(`${found} detections on ${detections.length} images written to ${values.out}`);
  if (metrics !== null) {
    console.log(
      `mAP@0.5 ${metrics.map.toFixed(4)}, COCO AP@[.5:.95] ${metrics.cocoMap.toFixed(4)}`,
    );
  }
  if (values.png !== undefined) {
    const empty = detections.map(() => ({
      boxes: tensor(new Float32Array(0), { shape: [0, 4], dtype: "float32" }),
      labels: tensor(new Int32Array(0), { shape: [0], dtype: "int32" }),
    }));
    await detectionsGrid(images, truths ?? empty, detections, names).writePng(values.png);
  }
}

async function runExport(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, {
    run: { type: "string" },
    out: { type: "string", default: "model.onnx" },
    batch: { type: "string" },
    opset: { type: "string" },
    check: { type: "boolean" },
  });
  if (parsed === null) {
    console.log(exportUsage);
    return;
  }
  const { values } = parsed;
  const run = runOption("export", values.run);
  const opset = numberOption("opset", values.opset, { integer: true, min: 13, max: 21 });
  const batch = numberOption("batch", values.batch, { integer: true, min: 1 });
  const summary = await asUsageError(exportDetectorOnnx(run, values.out, { batch, opset }));
  const shape = (v: (typeof summary.inputs)[number]) =>
    `${v.name} [${v.type.tensor_type.shape.dim.map((d) => d.dim_value).join(", ")}]`;
  const counts = Object.entries(summary.nodes)
    .map(([op, n]) => `${op} ${n}`)
    .join(", ");
  console.log(
    `wrote ${values.out} (${(summary.bytes.length / 1024).toFixed(0)} KiB): ${summary.inputs.map(shape).join(", ")} → ${summary.outputs.map(shape).join(", ")}`,
  );
  console.log(`nodes: ${counts}; ${summary.initializers} initialisers, ${summary.weights} values`);
  if (values.check) {
    const { images, worst } = await checkOnnx(run, values.out);
    console.log(
      `ONNX Runtime against focalgrad on ${images} held-out images: max |difference| ${Object.entries(
        worst,
      )
        .map(([name, d]) => `${name} ${d.toExponential(2)}`)
        .join(", ")}`,
    );
  }
}

async function runBatches(args: string[]): Promise<void> {
  const parsed = parseCommandLine(args, {
    run: { type: "string" },
    steps: { type: "string" },
    from: { type: "string" },
    out: { type: "string", default: "batches.safetensors" },
  });
  if (parsed === null) {
    console.log(batchesUsage);
    return;
  }
  const { values } = parsed;
  const run = runOption("batches", values.run);
  const steps = numberOption("steps", values.steps, { integer: true, min: 1 });
  if (steps === undefined) throw new UsageError("batches: --steps N is required");
  const from = numberOption("from", values.from, { integer: true, min: 0 });
  const written = await asUsageError(exportBatches(run, values.out, { steps, from }));
  console.log(
    `wrote ${written.steps} batches of ${written.batchSize} (steps ${written.from} to ${written.from + written.steps - 1}) to ${written.path}`,
  );
  console.log(
    `focalgrad on the first batch: classification loss ${written.classificationLoss.toFixed(6)}, box loss ${written.boxLoss.toFixed(6)}`,
  );
}

async function runTrain(args: string[]): Promise<void> {
  const config = parseTrainArguments(args);
  if (config === null) {
    console.log(trainUsage);
    return;
  }
  const wall = performance.now();
  // The first Ctrl-C stops after the current step with a checkpoint; a second one kills at once.
  const controller = new AbortController();
  process.once("SIGINT", () => {
    console.error("\nstopping after this step (Ctrl-C again to kill)…");
    controller.abort();
  });
  const result = await train({ ...config, signal: controller.signal }).catch((e: Error) => {
    // train() checks its settings (and --resume's checkpoint) first, in "train: " errors.
    throw /^train: /.test(e.message) ? new UsageError(e.message) : e;
  });
  if (result.interrupted) {
    console.log(
      `interrupted at step ${result.step}: checkpoint saved in ${result.runDir}; add --resume to continue`,
    );
    process.exitCode = 130;
    return;
  }
  const final = result.final!;
  console.log(
    `trained ${result.step} steps in ${result.seconds.toFixed(1)} s; on ${final.images} held-out images: ` +
      `mAP@0.5 ${final.map.toFixed(4)}, COCO AP@[.5:.95] ${final.cocoMap.toFixed(4)}`,
  );
  console.log(
    `per class AP@0.5: ${final.perClass.map((v) => (v === null ? "-" : v.toFixed(3))).join(" ")}`,
  );
  console.log(
    `run directory ${result.runDir} (${((performance.now() - wall) / 1000).toFixed(1)} s in all)`,
  );
}

/** Runs the command line `argv` (without node and the script). */
export async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = cliArguments(argv);
  if (command === "train") await runTrain(rest);
  else if (command === "predict") await runPredict(rest);
  else if (command === "export") await runExport(rest);
  else if (command === "batches") await runBatches(rest);
  else if (command === undefined || command === "-h" || command === "--help") console.log(usage);
  else
    throw new UsageError(
      `unknown command "${command}" (expected train, predict, export or batches; --help lists them)`,
    );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runCommand("detect", () => main(process.argv.slice(2)));
}
