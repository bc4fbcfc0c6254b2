/** A run directory of a few training steps of a small RetinaNet, for the tests of the hand-off to PyTorch and ONNX. */

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TrainConfig, train } from "../../src/detection/train.js";

/**
 * Trains 3 steps on 16 shapes images into a fresh temporary runs directory and returns the run
 * directory. BatchNorm in the backbone (buffers and their int32 step counter; GroupNorm with
 * `norm: "group"`) and P3–P6 (a stride-2 "same" convolution on an even size) are the parts a port
 * most easily gets wrong.
 */
export async function tinyRun(
  norm: "batch" | "group" = "batch",
  overrides: Partial<TrainConfig> = {},
): Promise<string> {
  const runsDir = await mkdtemp(join(tmpdir(), "focalgrad-handoff-"));
  const result = await train({
    name: `tiny-${norm}`,
    runsDir,
    steps: 3,
    trainImages: 16,
    testImages: 6,
    evalEvery: 0,
    checkpointEvery: 0,
    plots: false,
    quiet: true,
    model: {
      backboneChannels: [4, 8, 8, 16, 16],
      norm,
      levels: [3, 4, 5, 6],
      fpnChannels: 8,
      headDepth: 1,
      headWidth: 8,
    },
    anchors: { sizes: [10, 20, 40, 80] },
    ...overrides,
  });
  return result.runDir;
}
