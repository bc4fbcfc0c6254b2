/** Every command's own arguments: -h / --help, its defaults, and out-of-range values as usage errors. */

import { afterEach, describe, expect, it, vi } from "vitest";
import { parseBenchArguments } from "../src/bench/index.js";
import { UsageError } from "../src/cli.js";
import { parseDemoArguments } from "../src/demo.js";
import { main as detect } from "../src/detection/cli.js";

afterEach(() => vi.restoreAllMocks());

/** What `run` prints with console.log. */
async function printed(run: () => Promise<void>): Promise<string> {
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  await run();
  const text = log.mock.calls.map((call) => call.join(" ")).join("\n");
  log.mockRestore();
  return text;
}

describe("demo:loss", () => {
  it("has its defaults, and null for -h / --help", () => {
    expect(parseDemoArguments([])).toEqual({
      batch: 8,
      anchors: 49104,
      classes: 20,
      alpha: 0.25,
      gamma: 2,
      seed: 1,
    });
    expect(parseDemoArguments(["-h"])).toBeNull();
    expect(parseDemoArguments(["--", "--help"])).toBeNull();
  });

  it("rejects out-of-range values in one line naming the flag", () => {
    const rejects = (args: string[], message: string) =>
      expect(() => parseDemoArguments(args)).toThrow(new UsageError(message));
    rejects(["--batch", "0"], '--batch: expected an integer >= 1, got "0"');
    rejects(["--alpha", "2"], '--alpha: expected a number in [0, 1], got "2"');
    rejects(["--gamma=-1"], '--gamma: expected a number >= 0, got "-1"');
    // Node's parser takes "-1" after a flag for a mistyped option, and says how to write it.
    expect(() => parseDemoArguments(["--gamma", "-1"])).toThrow(
      /^Option '--gamma' argument is ambiguous.*'--gamma=-XYZ'/,
    );
    rejects(["--classes", "2.5"], '--classes: expected an integer >= 1, got "2.5"');
    rejects(["--seed=-3"], '--seed: expected an integer >= 0, got "-3"');
    rejects(["--frob"], "unknown option --frob (--help lists the options)");
    // 8 × 1e9 anchors × 21 values: far past the 2^31 − 1 elements of a tensor.
    rejects(
      ["--anchors", "1e9"],
      "--batch × --anchors × (--classes + 1) = 168000000000 values, more than a tensor holds (2^31 − 1)",
    );
  });
});

describe("bench", () => {
  it("has its defaults and --quick's, and null for -h / --help", () => {
    const all = parseBenchArguments([])!;
    expect(all.options).toMatchObject({
      iterations: 20,
      warmup: 3,
      warmupSeconds: 1,
      maxSeconds: 20,
    });
    expect(all.batch).toBeUndefined();
    expect(parseBenchArguments(["--quick"])).toMatchObject({
      workloads: ["voc512", "matmul256"],
      batch: 1,
      options: { iterations: 5, warmup: 1, warmupSeconds: 0, maxSeconds: 2 },
    });
    expect(parseBenchArguments(["--workloads", "mlp", "--impls", "focalgrad,fused"])).toMatchObject(
      { workloads: ["mlp"], impls: ["focalgrad", "fused"] },
    );
    expect(parseBenchArguments(["-h"])).toBeNull();
    expect(parseBenchArguments(["--help"])).toBeNull();
  });

  it("rejects out-of-range values and unknown names in one line naming the flag", () => {
    const rejects = (args: string[], message: string | RegExp) =>
      expect(() => parseBenchArguments(args)).toThrow(message);
    rejects(["--iterations", "0"], '--iterations: expected an integer >= 1, got "0"');
    rejects(["--warmup", "1.5"], '--warmup: expected an integer >= 0, got "1.5"');
    rejects(["--max-seconds=-1"], '--max-seconds: expected a number >= 0, got "-1"');
    rejects(["--warmup-seconds", "x"], '--warmup-seconds: expected a number >= 0, got "x"');
    rejects(["--batch", "0"], '--batch: expected an integer >= 1, got "0"');
    rejects(["--workloads", "voc"], /^--workloads: unknown "voc" \(expected some of voc512, /);
    rejects(["--impls", "jax"], /^--impls: unknown "jax" \(expected some of /);
    expect(() => parseBenchArguments(["--iterations", "0"])).toThrow(UsageError);
  });
});

describe("detect", () => {
  it("prints the usage of each command for -h and --help", async () => {
    expect(await printed(() => detect([]))).toMatch(/^Usage: pnpm detect -- <command>/);
    expect(await printed(() => detect(["-h"]))).toMatch(/^Usage: pnpm detect -- <command>/);
    expect(await printed(() => detect(["train", "--help"]))).toMatch(
      /^Usage: pnpm detect -- train \[options\]/,
    );
    // pnpm demo -- --help: the demo is `train --name demo`, and pnpm passes the -- through.
    expect(await printed(() => detect(["train", "--name", "demo", "--", "--help"]))).toMatch(
      /^Usage: pnpm detect -- train/,
    );
    expect(await printed(() => detect(["predict", "-h"]))).toMatch(
      /^Usage: pnpm detect -- predict --run DIR/,
    );
    expect(await printed(() => detect(["export", "--help"]))).toMatch(
      /^Usage: pnpm detect -- export/,
    );
    expect(await printed(() => detect(["batches", "-h"]))).toMatch(
      /^Usage: pnpm detect -- batches/,
    );
  });

  it("rejects an unknown command, a missing --run and bad values as usage errors", async () => {
    await expect(detect(["evaluate"])).rejects.toThrow(
      new UsageError(
        'unknown command "evaluate" (expected train, predict, export or batches; --help lists them)',
      ),
    );
    await expect(detect(["predict"])).rejects.toThrow(
      new UsageError("predict: --run DIR is required (a run directory written by train)"),
    );
    await expect(detect(["predict", "--run", "r", "--count", "0"])).rejects.toThrow(UsageError);
    await expect(detect(["train", "--batch", "0"])).rejects.toThrow(
      new UsageError('--batch: expected an integer >= 1, got "0"'),
    );
  });
});
