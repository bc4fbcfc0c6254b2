/** The demo: the seed's focal loss, forward and backward through the autodiff engine, on a synthetic anchor batch. */

import { pathToFileURL } from "node:url";
import { cast, noGrad, type Tensor, tensor } from "@focalgrad/core";
import { gradcheck } from "@focalgrad/core/testing";
import { focal } from "@focalgrad/losses";
import { numberOption, parseCommandLine, runCommand, UsageError } from "./cli.js";
import { syntheticAnchorBatch } from "./data/anchors.js";
import { fusedFocal } from "./fused/focal.js";

const usage = `Usage: pnpm demo:loss [-- options]

Computes the focal loss of the Keras RetinaNet seed (docs/focal-loss.md) on a seeded synthetic
anchor batch, backpropagates it through focalgrad's autodiff engine, and checks the result against a
hand-fused loop and the gradient against central finite differences in float64.

Options:
  --batch N        images per batch, >= 1 (default 8)
  --anchors N      anchors per image, >= 1 (default 49104: RetinaNet at 512 px)
  --classes N      object classes, >= 1 (default 20)
  --alpha X        positive weight, in [0, 1] (default 0.25)
  --gamma X        focusing exponent, >= 0 (default 2)
  --seed N         seed of the synthetic batch, an integer >= 0 (default 1)
  -h, --help       this text`;

/** The settings of one demo run. */
export interface DemoOptions {
  batch: number;
  anchors: number;
  classes: number;
  alpha: number;
  gamma: number;
  seed: number;
}

/** The demo's options from the command line, or null for --help. */
export function parseDemoArguments(argv: readonly string[]): DemoOptions | null {
  const parsed = parseCommandLine(argv, {
    batch: { type: "string", default: "8" },
    anchors: { type: "string", default: "49104" },
    classes: { type: "string", default: "20" },
    alpha: { type: "string", default: "0.25" },
    gamma: { type: "string", default: "2" },
    seed: { type: "string", default: "1" },
  });
  if (parsed === null) return null;
  const { values } = parsed;
  const count = (name: "batch" | "anchors" | "classes") =>
    numberOption(name, values[name], { integer: true, min: 1 })!;
  const options: DemoOptions = {
    batch: count("batch"),
    anchors: count("anchors"),
    classes: count("classes"),
    alpha: numberOption("alpha", values.alpha, { min: 0, max: 1 })!,
    gamma: numberOption("gamma", values.gamma, { min: 0 })!,
    seed: numberOption("seed", values.seed, { integer: true, min: 0 })!,
  };
  // yTrue holds classes + 1 values per anchor; a tensor holds at most 2^31 − 1 elements.
  const total = options.batch * options.anchors * (options.classes + 1);
  if (total > 2 ** 31 - 1) {
    throw new UsageError(
      `--batch × --anchors × (--classes + 1) = ${total} values, more than a tensor holds (2^31 − 1)`,
    );
  }
  return options;
}

function format(value: number, digits = 4): string {
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4
    ? value.toFixed(digits)
    : value.toExponential(3);
}

function gradientStatistics(grad: Tensor, yTrue: Tensor) {
  const g = grad.read();
  const t = yTrue.read();
  const classes = grad.shape[2];
  let sumAbs = 0;
  let maxAbs = 0;
  let nonzero = 0;
  let finite = true;
  let ignoredClean = true;
  for (let anchor = 0; anchor < g.length / classes; anchor++) {
    const state = t[anchor * (classes + 1) + classes];
    for (let c = 0; c < classes; c++) {
      const v = g[anchor * classes + c];
      if (!Number.isFinite(v)) finite = false;
      if (state === -1 && v !== 0) ignoredClean = false;
      sumAbs += Math.abs(v);
      maxAbs = Math.max(maxAbs, Math.abs(v));
      if (v !== 0) nonzero++;
    }
  }
  return { meanAbs: sumAbs / g.length, maxAbs, nonzero, finite, ignoredClean };
}

/** Runs the demo and returns its report lines (printed by `main`). */
export function runDemo(options: DemoOptions): string[] {
  const lines: string[] = [];
  const say = (line = "") => lines.push(line);
  const { batch, anchors, classes, alpha, gamma, seed } = options;
  const loss = focal({ alpha, gamma });
  const data = syntheticAnchorBatch({ batch, anchors, classes, seed });
  say(`focalgrad demo: focal({ alpha: ${alpha}, gamma: ${gamma} }) on a synthetic anchor batch`);
  say(
    `  yTrue [${data.yTrue.shape.join(", ")}], yPred [${data.yPred.shape.join(", ")}] float32; ` +
      `anchors: ${data.objectAnchors} object, ${data.backgroundAnchors} background, ${data.ignoredAnchors} ignored`,
  );

  const yPred = tensor(data.yPred.read(), { shape: data.yPred.shape, requiresGrad: true });
  const started = performance.now();
  const value = loss(data.yTrue, yPred);
  value.backward();
  const elapsed = performance.now() - started;
  const grad = yPred.grad!;
  const stats = gradientStatistics(grad, data.yTrue);
  say();
  say(
    `loss                      ${format(value.item(), 6)}   (normaliser: ${Math.max(1, data.objectAnchors)} object anchors)`,
  );
  say(
    `forward + backward        ${elapsed.toFixed(0)} ms (first call, includes kernel compilation)`,
  );
  say(
    `gradient w.r.t. yPred     mean |g| ${format(stats.meanAbs)}, max |g| ${format(stats.maxAbs)}`,
  );
  say(
    `                          ${stats.nonzero} of ${grad.size} elements non-zero, all finite: ${stats.finite ? "yes" : "NO"}`,
  );
  say(
    `                          ignored anchors' gradient exactly 0: ${stats.ignoredClean ? "yes" : "NO"}`,
  );

  const reference = fusedFocal(data.yTrue, data.yPred, { alpha, gamma });
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < grad.size; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(grad.read()[i] - reference.grad.data[i]));
    maxRef = Math.max(maxRef, Math.abs(reference.grad.read()[i]));
  }
  const lossDiff =
    Math.abs(value.item() - reference.loss) / Math.max(Math.abs(reference.loss), 1e-30);
  say(
    `hand-fused loop           loss relative difference ${lossDiff.toExponential(2)}, ` +
      `gradient max difference ${maxDiff.toExponential(2)} (max |g| ${format(maxRef)})`,
  );

  // The gradient check runs in float64 on a small batch: central differences cost two forward
  // passes per element.
  const small = syntheticAnchorBatch({
    batch: 2,
    anchors: 12,
    classes: Math.min(classes, 4),
    seed,
    objectFraction: 0.25,
    ignoredFraction: 0.25,
  });
  const yTrue64 = noGrad(() => cast(small.yTrue, "float64"));
  const report = gradcheck((p) => loss(yTrue64, p), [small.yPred]);
  say(
    `gradient check            float64, [${small.yPred.shape.join(", ")}], central differences (eps 1e-6): ` +
      `max abs error ${report.maxAbsError.toExponential(2)}, max rel error ${report.maxRelError.toExponential(2)} ` +
      `over ${report.checked} elements → ${report.ok ? "ok" : "FAILED"}`,
  );
  const healthy = stats.finite && stats.ignoredClean && report.ok && lossDiff < 1e-4;
  say();
  say(healthy ? "all checks passed" : "SOME CHECKS FAILED");
  if (!healthy) process.exitCode = 1;
  return lines;
}

function main(argv: readonly string[]): void {
  const options = parseDemoArguments(argv);
  if (options === null) {
    console.log(usage);
    return;
  }
  for (const line of runDemo(options)) console.log(line);
}

// Run only as a program, not when a test imports runDemo.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  await runCommand("demo:loss", () => main(process.argv.slice(2)));
