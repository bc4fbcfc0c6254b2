/** `pnpm table1`: the sweep of Lin et al.'s Table 1 on the toy detector (CE by α, FL by γ and α, the prior initialisation, OHEM), cached per run, reported as a markdown table beside the paper's numbers and a PNG figure. */

import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { numberOption, UsageError } from "../detection/cli.js";
import { writeAtomic } from "../detection/files.js";
import { codeVersion, ResultCache } from "./cache.js";
import { table1Figure } from "./figures.js";
import { type Budget, FULL_BUDGET, QUICK_BUDGET, sweepGrid } from "./grid.js";
import { reportMarkdown, tableRows } from "./report.js";
import { formatDuration, jobsOf, runSweep } from "./sweep.js";
import { forkedRunner } from "./worker.js";

const usage = `Usage: pnpm table1 [-- options]

Trains the toy RetinaNet (shapes, 64 × 64) once per configuration and seed of Lin et al. 2017's
Table 1 — cross-entropy with α in {.25, .5, .75, .9, .99}; the focal loss with γ in {.5, 1, 2, 5}
× α in {.25, .5, .75}; CE (α = .5) and FL (γ = 2, α = .25) with a zero classification bias beside
the prior π = .01; OHEM (128 anchors per image after NMS .5) and OHEM 1:3 — and writes to the
output directory table1.md (our AP@0.5 and COCO AP, mean ± std over the seeds, beside the paper's)
and table1.png (AP against γ and α; training loss with and without the prior).

Each (configuration, seed) result is cached in <out>/cache/ under a key of its settings, budget
and the training code: run the command again after an interruption (Ctrl-C) and it continues
where it stopped, the interrupted run from its last checkpoint.

Options:
  --quick          a reduced grid (9 configurations, 2 seeds, ${QUICK_BUDGET.steps} steps on ${QUICK_BUDGET.trainImages} images): minutes
  --seeds N        seeds per configuration, 0 … N-1 (default 3; --quick 2)
  --steps N        training steps per run (default ${FULL_BUDGET.steps}; --quick ${QUICK_BUDGET.steps})
  --jobs N         runs at a time, each in its own process (default 2)
  --threads N      threads of each run's dense kernels (default: the cores / jobs, at least 1)
  --out DIR        output directory (default runs/table1; --quick runs/table1-quick)
  --list           list the runs and whether each is cached, and stop
  -h, --help       this text`;

/** The command line's settings. */
export interface Table1Options {
  quick: boolean;
  seeds: number;
  budget: Budget;
  jobs: number;
  threads: number;
  out: string;
  list: boolean;
}

/**
 * The options of `pnpm table1` from its arguments, or null for --help.
 *
 * @example
 * parseTable1Arguments(["--quick"])?.seeds; // 2
 */
export function parseTable1Arguments(
  args: string[],
  cores = availableParallelism(),
): Table1Options | null {
  const { values } = parseArgs({
    args: args.filter((a) => a !== "--"),
    options: {
      quick: { type: "boolean" },
      seeds: { type: "string" },
      steps: { type: "string" },
      jobs: { type: "string" },
      threads: { type: "string" },
      out: { type: "string" },
      list: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return null;
  const quick = values.quick === true;
  const base = quick ? QUICK_BUDGET : FULL_BUDGET;
  const jobs = numberOption(values, "jobs", true, 1) ?? 2;
  return {
    quick,
    seeds: numberOption(values, "seeds", true, 1) ?? (quick ? 2 : 3),
    budget: { ...base, steps: numberOption(values, "steps", true, 1) ?? base.steps },
    jobs,
    threads: numberOption(values, "threads", true, 1) ?? Math.max(1, Math.floor(cores / jobs)),
    out: values.out ?? (quick ? "runs/table1-quick" : "runs/table1"),
    list: values.list === true,
  };
}

/** The built code a run's result depends on: core, losses and the detector. */
function trainingCodeDirectories(): string[] {
  const packageDir = (name: string) => dirname(fileURLToPath(import.meta.resolve(name)));
  return [
    packageDir("@focalgrad/core"),
    packageDir("@focalgrad/losses"),
    fileURLToPath(new URL("../detection/", import.meta.url)),
  ];
}

/** Runs the command line `argv` (without node and the script). */
export async function main(argv: string[]): Promise<void> {
  const options = parseTable1Arguments(argv);
  if (options === null) {
    console.log(usage);
    return;
  }
  const { budget, seeds, out } = options;
  const grid = sweepGrid(options.quick);
  const code = await codeVersion(trainingCodeDirectories());
  const jobs = jobsOf(grid, seeds, budget, code);
  const cache = new ResultCache(join(out, "cache"), (message) =>
    console.error(`table1: ${message}`),
  );
  if (options.list) {
    for (const job of jobs) {
      const cached = (await cache.read(job.key)) !== null;
      console.log(`${job.key}  ${job.config.label}, seed ${job.seed}${cached ? "  (cached)" : ""}`);
    }
    return;
  }
  console.log(
    `table1: ${grid.length} configurations × ${seeds} seeds = ${jobs.length} runs of ${budget.steps} steps ` +
      `(${budget.dataset}), ${options.jobs} at a time on ${options.threads} thread(s) each; code ${code}`,
  );
  process.once("SIGINT", () => {
    console.error("\ntable1: stopped; finished runs are cached, run the same command to continue");
    process.exit(130);
  });
  const started = performance.now();
  const results = await runSweep({
    jobs,
    cache,
    runner: forkedRunner(join(out, "runs"), options.threads),
    concurrency: options.jobs,
    log: (line) => console.log(line),
  });
  const byConfig = new Map(grid.map((c) => [c.id, results.filter((r) => r.configId === c.id)]));
  const command = `pnpm table1${argv.length > 0 ? ` -- ${argv.filter((a) => a !== "--").join(" ")}` : ""}`;
  const markdown = reportMarkdown({
    rows: tableRows(grid),
    results: byConfig,
    budget,
    seeds,
    code,
    command,
  });
  await writeAtomic(join(out, "table1.md"), markdown);
  await table1Figure(grid, byConfig).writePng(join(out, "table1.png"));
  console.log(`\n${markdown}`);
  console.log(
    `table1: ${formatDuration((performance.now() - started) / 1000)}; wrote ${join(out, "table1.md")} and ${join(out, "table1.png")}`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    const known =
      e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(known ? `table1: ${e.message}` : e);
    process.exitCode = 1;
  });
}
