/** Running `pytorch.py`, the optional PyTorch reference of the benchmark: whether it can run here, and one run of it. */

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Check } from "./checks.js";
import type { Implementation, Prepared, RunOptions } from "./run.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../../src/bench/pytorch.py", import.meta.url));

/** Why PyTorch cannot run here, or null when `python3` imports torch. */
function pytorchMissing(): string | null {
  const probe = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.error !== undefined) return `${PYTHON} cannot be run (${probe.error.message})`;
  if (probe.status !== 0) return `${PYTHON} cannot import torch`;
  return null;
}

/** What `pytorch.py` prints: the checked run's results and the times of each thread count. */
export interface PytorchResult {
  loss: number;
  gradAbs?: number;
  threads: Record<string, { wallMs: number[]; cpuMs: number[] }>;
}

/**
 * Runs `pytorch.py` on `spec` (with `threads` and the timing options added) in a temporary
 * directory, which `files(dir)` may fill first (binary inputs the spec names) and `read(dir)` may
 * read from afterwards (binary outputs), before it is removed.
 *
 * @example
 * const { result } = runPytorch({ workload: "mlp", ... }, 1, options);
 */
function runPytorch<T>(
  spec: Record<string, unknown>,
  threads: 1 | 2,
  options: RunOptions,
  files: (dir: string) => Record<string, unknown> = () => ({}),
  read: (dir: string) => T = () => undefined as T,
): { result: PytorchResult; read: T } {
  const dir = mkdtempSync(path.join(tmpdir(), "focalgrad-bench-"));
  try {
    const specPath = path.join(dir, "spec.json");
    writeFileSync(
      specPath,
      JSON.stringify({
        ...spec,
        ...files(dir),
        threads: [threads],
        warmup: options.warmup,
        warmupSeconds: options.warmupSeconds ?? 0,
        iterations: options.iterations,
        maxSeconds: options.maxSeconds,
      }),
    );
    const run = spawnSync(PYTHON, [SCRIPT, specPath], {
      encoding: "utf8",
      maxBuffer: 1 << 24,
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    });
    if (run.status !== 0) {
      throw new Error(`pytorch.py failed (${run.status}): ${run.stderr.trim().split("\n").pop()}`);
    }
    return { result: JSON.parse(run.stdout) as PytorchResult, read: read(dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A `pytorch-1t` or `pytorch-2t` row: skipped (saying why) where PyTorch is missing, otherwise
 * `spec()` run by `pytorch.py` at `prepare` (with `files` and `read` as in `runPytorch`), its
 * checked run's results turned into the row's checks by `checks`, its timings recorded.
 *
 * @example
 * pytorchImplementation(1, options, () => ({ workload: "mlp", ... }), (r) => stepChecks(r.loss, r.gradAbs));
 */
export function pytorchImplementation<T>(
  threads: 1 | 2,
  options: RunOptions,
  spec: () => Record<string, unknown>,
  checks: (result: PytorchResult, read: T) => Check[],
  files?: (dir: string) => Record<string, unknown>,
  read?: (dir: string) => T,
): Implementation {
  return {
    name: `pytorch-${threads}t`,
    prepare: async () => {
      const missing = pytorchMissing();
      if (missing !== null) return missing;
      const run = runPytorch(spec(), threads, options, files, read);
      return {
        run: () => {
          throw new Error("pytorch rows are timed by pytorch.py");
        },
        check: () => checks(run.result, run.read),
        recorded: run.result.threads[String(threads)],
        dispose: () => {},
      } satisfies Prepared;
    },
  };
}
