/** A run directory of a few training steps of a small RetinaNet, for the tests of the hand-off to PyTorch and ONNX. */

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TrainConfig, train } from "../../src/detection/train.js";

const small = { fpnChannels: 8, headDepth: 1, headWidth: 8 };

/**
 * Trains 3 steps on 16 shapes images into a fresh temporary runs directory and returns the run
 * directory. BatchNorm (buffers and their int32 step counter) with P3–P6 (a stride-2 "same"
 * convolution on an even size), or GroupNorm with P2–P4: the parts a port most easily gets wrong.
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
    // BatchNorm on P3–P6 (an extra stride-2 level on C5); GroupNorm on P2–P4 of a 4-stage
    // backbone (the toy shapes' own layout).
    model:
      norm === "batch"
        ? { backboneChannels: [4, 8, 8, 16, 16], norm, levels: [3, 4, 5, 6], ...small }
        : { backboneChannels: [4, 8, 8, 16], norm, levels: [2, 3, 4], ...small },
    anchors: { sizes: norm === "batch" ? [10, 20, 40, 80] : [8, 16, 32] },
    ...overrides,
  });
  return result.runDir;
}
