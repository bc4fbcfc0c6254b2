/** The `detector` workload of the benchmark: the toy detector's own training step (the demo's RetinaNet and settings, one AdamW step on a batch of the shapes dataset), timed inside `train`. */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { train } from "../detection/train.js";
import type { Check } from "./checks.js";
import type { Case, Implementation, ImplName, Prepared, RunOptions } from "./run.js";
import { isFocalgrad, withSetting } from "./settings.js";

/**
 * Images rendered for the run: enough for a few shuffled batches of the demo's 8. The step's
 * shapes do not depend on the count; rendering the demo's 2000 would only lengthen the set-up.
 */
const TRAIN_IMAGES = 64;
/** The final evaluation does not run (the run is stopped first), so the held-out set stays tiny. */
const TEST_IMAGES = 8;
/**
 * Steps left untimed besides the warm-ups: V8 keeps tiering up the step's generated loops and
 * kernels over its first dozen steps. With only 3 warm-ups, whichever row ran first was 70–130 ms
 * a step slower (2-thread then 1-thread rows: 383 and 250 ms; the other way round: 317 and 240
 * ms); with 12, the order no longer showed (238 and 234; 251 and 258).
 */
const SETTLING_STEPS = 10;

/**
 * Runs `train` with the demo's settings (`pnpm demo` is `train --name demo` with every default)
 * and times each step from one `onStep` to the next, wall and CPU: the batch, the forward pass,
 * the anchor targets, the focal and smooth-L1 losses, backward, gradient clipping and AdamW, as
 * the demo runs them. The first `1 + warmup + SETTLING_STEPS` steps are untimed; the run is
 * stopped (before its final evaluation) once it has its iterations or has spent its time budget.
 */
function detectorTraining(options: RunOptions): Implementation {
  return {
    name: "focalgrad",
    prepare: async () => {
      const runsDir = mkdtempSync(path.join(tmpdir(), "focalgrad-bench-detector-"));
      const untimed = 1 + options.warmup + SETTLING_STEPS;
      const wallMs: number[] = [];
      const cpuMs: number[] = [];
      const firstLosses: number[] = [];
      const controller = new AbortController();
      let spentMs = 0;
      let last = { wall: performance.now(), cpu: process.cpuUsage() };
      try {
        await train({
          name: "bench",
          runsDir,
          trainImages: TRAIN_IMAGES,
          testImages: TEST_IMAGES,
          evalImages: TEST_IMAGES,
          evalEvery: 0,
          checkpointEvery: 0,
          plots: false,
          quiet: true,
          signal: controller.signal,
          onStep: (step, classificationLoss, boxLoss) => {
            const wall = performance.now() - last.wall;
            const used = process.cpuUsage(last.cpu);
            if (step === 1) firstLosses.push(classificationLoss, boxLoss);
            if (step > untimed) {
              wallMs.push(wall);
              cpuMs.push((used.user + used.system) / 1000);
              spentMs += wall;
            }
            const enough =
              wallMs.length >= options.iterations ||
              (wallMs.length > 0 && spentMs >= options.maxSeconds * 1000);
            if (enough) controller.abort();
            last = { wall: performance.now(), cpu: process.cpuUsage() };
          },
        });
      } finally {
        rmSync(runsDir, { recursive: true, force: true });
      }
      const checks: Check[] = [
        { label: "focal loss", value: firstLosses[0], rtol: 1e-4 },
        { label: "box loss", value: firstLosses[1], rtol: 1e-4 },
      ];
      return {
        run: () => {
          throw new Error("detector rows are timed inside train()");
        },
        check: () => checks,
        recorded: { wallMs, cpuMs },
        dispose: () => {},
      } satisfies Prepared;
    },
  };
}

/**
 * The toy detector's training step on each focalgrad setting (the first is the reference of the
 * cross-check, on the losses of the first step, which every setting computes from the same
 * weights and batch).
 *
 * @example
 * const c = detectorCase(["focalgrad", "focalgrad-1t"], options);
 */
export function detectorCase(impls: readonly ImplName[], options: RunOptions): Case {
  const implementations = impls
    .filter(isFocalgrad)
    .map((name) => withSetting(name, detectorTraining(options)));
  return {
    workload: "detector",
    pass: "step",
    reference: implementations[0]?.name ?? "focalgrad",
    ratioToReference: false,
    implementations,
  };
}
