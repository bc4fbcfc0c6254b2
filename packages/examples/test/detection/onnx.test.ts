import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { noGrad, type Tensor, uniform } from "@focalgrad/core";
import { toOnnx } from "@focalgrad/onnx";
import { onnxRuntimeAvailable, runOnnx } from "@focalgrad/onnx/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/detection/cli.js";
import { loadDetector } from "../../src/detection/detector.js";
import { RetinaNet, type RetinaNetConfig } from "../../src/detection/model.js";
import { tinyRun } from "./tinyRun.js";

/** ONNX Runtime is the peer `onnx` (`npx -y pnpm@12.4.2 peers:install onnx`; CI installs it). */
const withOrt = it.skipIf(!(await onnxRuntimeAvailable()));

function maxDifference(a: Tensor, b: Tensor): number {
  expect(b.shape).toEqual(a.shape);
  const x = a.read();
  const y = b.read();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

/** The worst difference between focalgrad's outputs and ONNX Runtime's on `images`. */
async function agreement(model: RetinaNet, images: Tensor): Promise<Record<string, number>> {
  const { bytes } = toOnnx(model, [images], { inputNames: ["images"] });
  const ours = noGrad(() => model.eval().forward(images));
  const theirs = await runOnnx(bytes, { images });
  return {
    logits: maxDifference(ours.logits, theirs.logits),
    classification: maxDifference(ours.classification, theirs.classification),
    regression: maxDifference(ours.regression, theirs.regression),
  };
}

describe("RetinaNet in ONNX Runtime", () => {
  const configs: [string, RetinaNetConfig][] = [
    ["the default detector (GroupNorm, P3–P5)", { numClasses: 3 }],
    [
      "BatchNorm, P3–P7 and no head norm",
      { numClasses: 2, norm: "batch", levels: [3, 4, 5, 6, 7], headNorm: "none", seed: 3 },
    ],
  ];
  for (const [name, config] of configs) {
    withOrt(`${name} agrees with focalgrad within 1e-5`, async () => {
      const model = new RetinaNet(config);
      // A few training-mode passes give BatchNorm running statistics of their own.
      if (config.norm === "batch") {
        for (let i = 0; i < 2; i++) model.forward(uniform([2, 3, 64, 64], { seed: 40 + i }));
      }
      const worst = await agreement(model, uniform([2, 3, 64, 64], { seed: 7 }));
      expect(worst.logits).toBeLessThan(1e-5);
      expect(worst.classification).toBeLessThan(1e-5);
      expect(worst.regression).toBeLessThan(1e-5);
    });
  }
});

describe("detect export", () => {
  let runDir = "";
  beforeAll(async () => {
    runDir = await tinyRun("group");
  }, 120_000);
  afterAll(async () => {
    await rm(dirname(runDir), { recursive: true, force: true });
  });

  withOrt("writes the run's model, which ONNX Runtime runs to focalgrad's outputs", async () => {
    const out = join(runDir, "model.onnx");
    await main(["export", "--", "--run", runDir, "--out", out, "--batch", "3", "--check"]);
    const detector = await loadDetector(runDir);
    const images = uniform([3, 3, 64, 64], { seed: 11 });
    const theirs = await runOnnx(out, [images]);
    const ours = noGrad(() => detector.model.eval().forward(images));
    expect(maxDifference(ours.classification, theirs.classification)).toBeLessThan(1e-5);
    expect(maxDifference(ours.regression, theirs.regression)).toBeLessThan(1e-5);
  });

  it("names what is missing or wrong", async () => {
    await expect(main(["export", "--out", "x.onnx"])).rejects.toThrow(
      /export: --run DIR is required/,
    );
    await expect(main(["export", "--run", runDir, "--opset", "22"])).rejects.toThrow(
      /--opset: expected an integer in \[13, 21\], got "22"/,
    );
    await expect(main(["export", "--run", join(runDir, "nowhere")])).rejects.toThrow(
      /loadDetector: cannot read/,
    );
    await expect(main(["batches", "--run", runDir])).rejects.toThrow(
      /batches: --steps N is required/,
    );
    expect(existsSync("x.onnx")).toBe(false);
  });
});
