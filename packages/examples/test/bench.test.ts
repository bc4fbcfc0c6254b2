/** Tests of the benchmark's harness: every implementation agrees on small inputs, and a wrong one is caught. */

import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { focal } from "@focalgrad/losses";
import { describe, expect, it } from "vitest";
import { type Check, checksums, crossCheck } from "../src/bench/checks.js";
import { conv2dCase, matmulCase } from "../src/bench/dense.js";
import { detectorCase } from "../src/bench/detector.js";
import { type FocalWorkload, focalCase, fusedImplementation } from "../src/bench/focal.js";
import { formatTable } from "../src/bench/report.js";
import { type Case, type Implementation, type RunOptions, runCase } from "../src/bench/run.js";
import { syntheticAnchorBatch } from "../src/data/anchors.js";
import { fusedFocal } from "../src/fused/focal.js";

/**
 * The tests that run TensorFlow.js: it comes with the bench peers (`pnpm peers:install bench`, which
 * `pnpm bench`, `pnpm typecheck` and CI run), not with the repository's own install.
 */
const withTfjs = it.skipIf(
  (() => {
    try {
      createRequire(import.meta.url).resolve("@tensorflow/tfjs");
      return false;
    } catch {
      return true;
    }
  })(),
);

const tiny: FocalWorkload = {
  name: "tiny",
  batch: 2,
  anchors: 300,
  classes: 4,
  description: "test",
};
const fast: RunOptions = { warmup: 0, iterations: 2, maxSeconds: 1 };

/** A fused loop that gets one thing wrong, posing as focalgrad. */
function corrupted(corrupt: (loss: number, grad: Float32Array) => number): Implementation {
  const batch = syntheticAnchorBatch({ ...tiny, seed: 2017 });
  return {
    name: "focalgrad",
    prepare: async () => ({
      run: () => {},
      check: (probe) => {
        const { loss, grad } = fusedFocal(batch.yTrue, batch.yPred);
        probe();
        const data = grad.data as Float32Array;
        const value = corrupt(loss, data);
        return [{ label: "loss", value, rtol: 1e-4 }, ...checksums("grad", data, 1e-3)];
      },
      dispose: () => {},
    }),
  };
}

function corruptedCase(impl: Implementation): Case {
  const batch = syntheticAnchorBatch({ ...tiny, seed: 2017 });
  return {
    workload: "tiny",
    pass: "fwd+bwd",
    reference: "fused",
    ratioToReference: true,
    implementations: [fusedImplementation(batch), impl],
  };
}

describe("runCase on a focal workload", () => {
  withTfjs(
    "cross-checks focalgrad, the fused loop on two threads, tfjs-cpu and tfjs-wasm against the fused loop, then times them",
    async () => {
      const rows = await runCase(
        focalCase(tiny, ["focalgrad", "fused-2t", "tfjs-cpu", "tfjs-wasm"], focal, { seed: 1 }),
        fast,
      );
      expect(rows.map((r) => r.impl)).toEqual([
        "fused",
        "focalgrad",
        "fused-2t",
        "tfjs-cpu",
        "tfjs-wasm",
      ]);
      for (const r of rows) {
        expect(r.skipped).toBeUndefined();
        expect(r.timesMs.length).toBeGreaterThanOrEqual(1);
        expect(r.medianMs).toBeGreaterThan(0);
        expect(r.peakBytes).toBeGreaterThanOrEqual(0);
      }
      expect(rows[0].ratio).toBe(1);
      expect(formatTable(rows)).toContain("| tiny | fwd+bwd | tfjs-wasm |");
    },
    60_000,
  );

  it("cross-checks focalgrad on one thread and on the JavaScript kernels, and PyTorch where python3 imports torch (else says why)", async () => {
    const rows = await runCase(
      focalCase(tiny, ["focalgrad-1t", "focalgrad-js", "pytorch-1t", "pytorch-2t"], focal, {
        seed: 1,
        timing: { warmup: 0, iterations: 2, maxSeconds: 1 },
      }),
      fast,
    );
    expect(rows.map((r) => r.impl)).toEqual([
      "fused",
      "focalgrad-1t",
      "focalgrad-js",
      "pytorch-1t",
      "pytorch-2t",
    ]);
    for (const r of rows.slice(0, 3)) expect(r.skipped).toBeUndefined();
    for (const r of rows.slice(3)) {
      // Either PyTorch's loss and gradient passed the cross-check and it timed its runs, or the
      // row says what is missing.
      if (r.skipped !== undefined)
        expect(r.skipped).toMatch(/python3 (cannot import torch|cannot be run)/);
      else expect(r.timesMs.length).toBeGreaterThanOrEqual(1);
    }
  }, 60_000);

  it("skips focalgrad with the reason when focal() is unavailable, and still runs the fused loop", async () => {
    const rows = await runCase(focalCase(tiny, ["focalgrad"], "no focal() here"), fast);
    expect(rows[1]).toMatchObject({ impl: "focalgrad", skipped: "no focal() here" });
    expect(formatTable(rows)).toContain("skipped: no focal() here");
  });

  it("fails loudly, naming the implementation and both values, when a loss is off by 1e-3", async () => {
    const run = runCase(corruptedCase(corrupted((loss) => loss * (1 + 1e-3))), fast);
    await expect(run).rejects.toThrow(
      /cross-check failed on tiny fwd\+bwd: focalgrad gives loss = [\d.]+, the reference fused gives [\d.]+/,
    );
  });

  it("fails loudly when the largest gradient lands on the wrong element (sums unchanged)", async () => {
    const run = runCase(
      corruptedCase(
        corrupted((loss, grad) => {
          // The largest gradient written to the wrong element: a misplaced index, as a real bug would.
          let i = 0;
          for (let k = 1; k < grad.length; k++) if (Math.abs(grad[k]) > Math.abs(grad[i])) i = k;
          const j = grad.findIndex((g) => g !== 0 && Math.abs(g) < 0.1 * Math.abs(grad[i]));
          [grad[i], grad[j]] = [grad[j], grad[i]];
          return loss;
        }),
      ),
      fast,
    );
    await expect(run).rejects.toThrow(/focalgrad gives grad weighted sum = /);
  });

  it("fails loudly when a gradient element is NaN", async () => {
    const run = runCase(
      corruptedCase(
        corrupted((loss, grad) => {
          grad[7] = Number.NaN;
          return loss;
        }),
      ),
      fast,
    );
    await expect(run).rejects.toThrow(/focalgrad gives grad sum = NaN/);
  });
});

describe("runCase when an implementation throws", () => {
  const throwing: Implementation = {
    name: "tfjs-wasm",
    prepare: async () => ({
      run: () => {},
      check: () => {
        throw new RangeError("out of memory");
      },
      dispose: () => {},
    }),
  };

  it("records the failure in the row and goes on with the others", async () => {
    const rows = await runCase(corruptedCase(throwing), fast);
    expect(rows[1]).toMatchObject({ impl: "tfjs-wasm", failed: "RangeError: out of memory" });
    expect(rows[0].ratio).toBe(1);
    expect(formatTable(rows)).toContain("FAILED: RangeError: out of memory");
  });

  it("stops everything when the unit of the ratios throws", async () => {
    const c: Case = { ...corruptedCase(throwing), reference: "tfjs-wasm" };
    await expect(runCase(c, fast)).rejects.toThrow("out of memory");
  });
});

describe("runCase's timing", () => {
  /** A fake implementation that logs its calls and whose check takes `checkMs`. */
  const busy = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until) {}
  };
  function logged(
    name: "fused" | "focalgrad",
    calls: string[],
    checkMs = 0,
    runMs = 0,
  ): Implementation {
    return {
      name,
      prepare: async () => ({
        run: () => {
          calls.push(name);
          busy(runMs);
        },
        check: () => {
          busy(checkMs);
          return [{ label: "loss", value: 1, rtol: 1e-4 }];
        },
        dispose: () => {},
      }),
    };
  }
  const twoOf = (a: Implementation, b: Implementation): Case => ({
    workload: "fake",
    pass: "fwd",
    reference: "fused",
    ratioToReference: true,
    implementations: [a, b],
  });

  it("warms each up and times it in turn, back to back", async () => {
    const calls: string[] = [];
    const rows = await runCase(twoOf(logged("fused", calls), logged("focalgrad", calls)), {
      warmup: 1,
      iterations: 3,
      maxSeconds: 60,
    });
    // One warm-up, then three timed iterations, of each.
    expect(calls).toEqual([...new Array(4).fill("fused"), ...new Array(4).fill("focalgrad")]);
    expect(rows.map((r) => r.timesMs.length)).toEqual([3, 3]);
  });

  it("keeps warming up for warmupSeconds, past the warm-up count, but never without a count", async () => {
    const calls: string[] = [];
    // Runs of 5 ms for at least 0.05 s: 10 warm-ups or more instead of 1.
    await runCase(twoOf(logged("fused", calls, 0, 5), logged("focalgrad", calls, 0, 5)), {
      warmup: 1,
      warmupSeconds: 0.05,
      iterations: 1,
      maxSeconds: 60,
    });
    const runs = calls.filter((c) => c === "focalgrad").length;
    expect(runs).toBeGreaterThanOrEqual(10 + 1);
    calls.length = 0;
    await runCase(twoOf(logged("fused", calls), logged("focalgrad", calls)), {
      warmup: 0,
      warmupSeconds: 10,
      iterations: 1,
      maxSeconds: 60,
    });
    // One timed run each (the cross-check calls check, not run): no warm-up at all.
    expect(calls).toEqual(["fused", "focalgrad"]);
  });

  it("times a row whose one run is far beyond its budget by its cross-check run alone", async () => {
    const calls: string[] = [];
    const rows = await runCase(twoOf(logged("fused", calls), logged("focalgrad", calls, 60)), {
      warmup: 1,
      iterations: 3,
      maxSeconds: 0.02,
    });
    expect(calls.filter((c) => c === "focalgrad")).toEqual([]);
    expect(rows[1].timedByCheck).toBe(true);
    expect(rows[1].timesMs).toHaveLength(1);
    expect(rows[1].timesMs[0]).toBeGreaterThanOrEqual(60);
    expect(formatTable(rows)).toContain("| 1 (check) |");
  });
});

describe("runCase on a dense workload", () => {
  withTfjs(
    "agrees with tfjs on matmul forward and backward and reports GFLOP/s",
    async () => {
      const rows = await runCase(matmulCase(16, "fwd+bwd", ["focalgrad", "tfjs-cpu"]), fast);
      expect(rows.map((r) => r.impl)).toEqual(["focalgrad", "tfjs-cpu"]);
      for (const r of rows) expect(r.gflops).toBeGreaterThan(0);
    },
    30_000,
  );
});

describe("runCase on conv2d", () => {
  withTfjs(
    "agrees with tfjs's NHWC conv2d forward and backward; tfjs-wasm has no conv2d gradient",
    async () => {
      const sizes = { batch: 2, channels: 3, height: 7, width: 6, filters: 4, kernel: 3 };
      const rows = await runCase(
        conv2dCase("fwd+bwd", ["focalgrad", "tfjs-cpu", "tfjs-wasm"], sizes),
        fast,
      );
      expect(rows.map((r) => r.skipped)).toEqual([
        undefined,
        undefined,
        "tfjs has no Conv2DBackpropFilter kernel on its wasm backend, so no gradient",
      ]);
    },
    30_000,
  );
});

describe("runCase on the detector's training step", () => {
  it("times steps of train() on one and every thread, the same first losses on both, and leaves no run behind", async () => {
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith("focalgrad-bench-detector-"));
    // One untimed and one timed step each, whatever the machine's load (no budget cuts them short).
    const steps: RunOptions = { warmup: 0, iterations: 1, maxSeconds: 600 };
    const rows = await runCase(detectorCase(["focalgrad", "focalgrad-1t", "fused"], steps), steps);
    // fused has no detector: only the focalgrad settings make rows.
    expect(rows.map((r) => [r.workload, r.pass, r.impl])).toEqual([
      ["detector", "step", "focalgrad"],
      ["detector", "step", "focalgrad-1t"],
    ]);
    for (const row of rows) {
      expect(row.failed).toBeUndefined();
      expect(row.timesMs).toHaveLength(1);
      expect(row.cpuMs).toHaveLength(1);
      expect(row.medianMs).toBeGreaterThan(0);
    }
    const after = readdirSync(tmpdir()).filter((f) => f.startsWith("focalgrad-bench-detector-"));
    expect(after).toEqual(before);
  }, 60_000);
});

describe("crossCheck", () => {
  const ours: Check[] = [{ label: "loss", value: 2, rtol: 1e-4 }];
  it("accepts values within the tolerance", () => {
    const theirs = [{ label: "loss", value: 2 * (1 + 5e-5), rtol: 1e-4 }];
    expect(() =>
      crossCheck("w", { name: "fused", checks: ours }, { name: "x", checks: theirs }),
    ).not.toThrow();
  });
  it("rejects a missing or an extra check", () => {
    expect(() =>
      crossCheck("w", { name: "fused", checks: ours }, { name: "x", checks: [] }),
    ).toThrow("cross-check failed on w: x reports no 'loss' (the reference fused does)");
    const extra = [...ours, { label: "grad sum", value: 1, rtol: 1e-3 }];
    expect(() =>
      crossCheck("w", { name: "fused", checks: ours }, { name: "x", checks: extra }),
    ).toThrow("cross-check failed on w: x reports grad sum, which the reference fused does not");
  });
  it("compares signed sums relative to 1 % of the sum of magnitudes", () => {
    const [sum] = checksums("g", [1000, -1000, 1e-3], 1e-3);
    expect(sum.scale).toBeCloseTo(20.00001, 9);
  });
});
