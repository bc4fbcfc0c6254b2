/** `pnpm bench`: the focal loss and the dense kernels, focalgrad side by side with a fused loop and tfjs. */

import { mkdirSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { focal as focalLoss } from "@focalgrad/losses";
import { cliArguments, numberOption, parseCommandLine, runCommand, UsageError } from "../cli.js";
import { conv2dCase, matmulCase } from "./dense.js";
import { detectorCase } from "./detector.js";
import { FOCAL_WORKLOADS, type FocalFactory, focalCase } from "./focal.js";
import { formatFacts, formatTable, machineFacts } from "./report.js";
import {
  type Case,
  canCollectGarbage,
  IMPL_NAMES,
  type ImplName,
  type Row,
  type RunOptions,
  runCase,
} from "./run.js";
import { isFocalgrad } from "./settings.js";
import { loadTfjs, useBackend, wasmFeatures } from "./tfjs.js";
import { trainingCase } from "./training.js";

const WORKLOADS = [
  "voc512",
  "coco800",
  "matmul256",
  "matmul1024",
  "conv2d",
  "trainstep",
  "mlp",
  "detector",
] as const;
/** A workload of the benchmark, by name. */
export type WorkloadName = (typeof WORKLOADS)[number];

const usage = `Usage: pnpm bench [-- options]

Times the focal loss and the dense kernels (matmul, conv2d, training steps) of focalgrad beside a
hand-fused loop, TensorFlow.js (cpu and wasm) and PyTorch where it is installed, after checking that
every implementation computes the same values. The first run installs TensorFlow.js (peers/bench).

Options:
  --workloads <list>   comma-separated, from ${WORKLOADS.join(",")} (default: all)
  --impls <list>       comma-separated, from ${IMPL_NAMES.join(",")} (default: all);
                       the fused loop always runs on focal workloads, as the unit of the ratios
  --iterations <n>     timed iterations per row, at most, an integer >= 1 (default 20)
  --warmup <n>         untimed iterations before timing, besides the cross-check's run, an
                       integer >= 0 (default 3)
  --warmup-seconds <s> and at least s seconds of them, >= 0 (default 1): worker threads start
                       and kernels get optimised before a fast row is timed
  --max-seconds <s>    stop timing a row after s seconds once it has one iteration, >= 0 (default 20);
                       a row whose cross-check run alone takes over 2 × s is timed by that run
  --batch <n>          images per focal batch instead of the workload's own (8 for voc512, 2 for
                       coco800), an integer >= 1
  --quick              voc512 with one image (--batch 1) and matmul256, 5 iterations, 1 warm-up
                       (no time floor), 2 s per row: under 30 s with tfjs-cpu, whose one full voc512 iteration is ~20 s
  --out <path>         markdown copy of the results (default bench-results/latest.md)
  -h, --help           this text`;

function parseList<T extends string>(flag: string, value: string, known: readonly T[]): T[] {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const name of names) {
    if (!known.includes(name as T)) {
      throw new UsageError(`--${flag}: unknown "${name}" (expected some of ${known.join(", ")})`);
    }
  }
  return names as T[];
}

/** The cases of one workload, built only when it is its turn (the anchor tensors are large). */
function casesOf(
  name: WorkloadName,
  impls: readonly ImplName[],
  focal: FocalFactory | string,
  batch: number | undefined,
  options: RunOptions,
): Case[] {
  const focalWorkload = FOCAL_WORKLOADS.find((w) => w.name === name);
  if (focalWorkload !== undefined)
    return [focalCase(focalWorkload, impls, focal, { batch, timing: options })];
  if (name === "trainstep" || name === "mlp") return [trainingCase(name, impls, options)];
  if (name === "detector") {
    return impls.some(isFocalgrad) ? [detectorCase(impls, options)] : [];
  }
  const dense = impls.filter((i) => !i.startsWith("fused") && !i.startsWith("pytorch"));
  if (dense.length === 0) return [];
  if (name === "conv2d") return [conv2dCase("fwd", dense), conv2dCase("fwd+bwd", dense)];
  const size = name === "matmul256" ? 256 : 1024;
  return [matmulCase(size, "fwd", dense), matmulCase(size, "fwd+bwd", dense)];
}

/** What one `pnpm bench` run measures, from its command line. */
export interface BenchSettings {
  /** The workloads to run, in order. */
  workloads: WorkloadName[];
  /** The implementations to time. */
  impls: ImplName[];
  /** Images per focal batch instead of each workload's own, if given. */
  batch: number | undefined;
  /** Iterations, warm-up and time budget per row. */
  options: RunOptions;
  /** Where the markdown copy of the results goes. */
  out: string;
}

/** The benchmark's settings from the command line, or null for --help. */
export function parseBenchArguments(argv: readonly string[]): BenchSettings | null {
  const parsed = parseCommandLine(argv, {
    workloads: { type: "string" },
    impls: { type: "string" },
    iterations: { type: "string" },
    warmup: { type: "string" },
    "warmup-seconds": { type: "string" },
    "max-seconds": { type: "string" },
    batch: { type: "string" },
    quick: { type: "boolean", default: false },
    out: { type: "string", default: path.join("bench-results", "latest.md") },
  });
  if (parsed === null) return null;
  const { values } = parsed;
  const quick = values.quick ?? false;
  const workloads = parseList(
    "workloads",
    values.workloads ?? (quick ? "voc512,matmul256" : WORKLOADS.join(",")),
    WORKLOADS,
  );
  const impls = parseList("impls", values.impls ?? IMPL_NAMES.join(","), IMPL_NAMES);
  const batch = numberOption("batch", values.batch ?? (quick ? "1" : undefined), {
    integer: true,
    min: 1,
  });
  const count = (name: string, text: string, min: number) =>
    numberOption(name, text, { integer: true, min })!;
  const options = {
    iterations: count("iterations", values.iterations ?? (quick ? "5" : "20"), 1),
    warmup: count("warmup", values.warmup ?? (quick ? "1" : "3"), 0),
    warmupSeconds: numberOption("warmup-seconds", values["warmup-seconds"] ?? (quick ? "0" : "1"), {
      min: 0,
    })!,
    maxSeconds: numberOption("max-seconds", values["max-seconds"] ?? (quick ? "2" : "20"), {
      min: 0,
    })!,
    log: (line: string) => console.error(line),
  };
  return { workloads, impls, batch, options, out: values.out! };
}

async function main(): Promise<void> {
  const settings = parseBenchArguments(cliArguments());
  if (settings === null) {
    console.log(usage);
    return;
  }
  const { workloads, impls, batch, options } = settings;

  const started = process.hrtime.bigint();
  const loadAtStart = os.loadavg()[0];
  const extraFacts: Record<string, string> = {};
  if (impls.some((i) => i.startsWith("tfjs"))) {
    const tf = await loadTfjs();
    extraFacts.TensorFlow_js = `${tf.version.tfjs} (cpu backend; wasm backend: ${
      impls.includes("tfjs-wasm")
        ? await useBackend(tf, "wasm").then(() => wasmFeatures(tf))
        : "not run"
    })`;
  }
  extraFacts["Peak memory"] = canCollectGarbage
    ? "live heap + external after a full GC at each probe, above the baseline (see BENCH.md)"
    : "heap + external without GC (node lacks --expose-gc): an upper bound that counts garbage";
  const focal: FocalFactory | string = focalLoss;

  const rows: Row[] = [];
  for (const workload of workloads) {
    console.error(`${workload}:`);
    for (const c of casesOf(workload, impls, focal, batch, options))
      rows.push(...(await runCase(c, options)));
  }

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const facts = machineFacts({
    ...Object.fromEntries(Object.entries(extraFacts).map(([k, v]) => [k.replace("_", "."), v])),
    Command: `bench ${cliArguments().join(" ")}`.trim(),
    Settings: `${options.iterations} iterations at most, ${options.warmup} warm-up (at least ${options.warmupSeconds} s), ${options.maxSeconds} s per row`,
    "Total time": `${seconds.toFixed(1)} s`,
    // Wall times mean little on a loaded machine; the CPU-time columns are steadier then.
    "Load average (1 min)": `${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end, on ${os.cpus().length} logical cores`,
    Date: new Date().toISOString(),
  });
  const report = `${formatFacts(facts)}\n\n${formatTable(rows)}\n`;
  console.log(report);
  const out = path.resolve(settings.out);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `# focalgrad benchmark\n\n${report}`);
  console.error(`written to ${out}`);
  const failed = rows.filter((r) => r.failed !== undefined);
  if (failed.length > 0) {
    // A failed row is a finding of the run, reported as such: no stack.
    console.error(
      `bench: ${failed.length} implementation(s) failed: ${failed.map((r) => `${r.impl} on ${r.workload} ${r.pass} (${r.failed})`).join("; ")}`,
    );
    process.exitCode = 1;
  }
}

// Run only as a program, not when a test imports parseBenchArguments.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runCommand("bench", main);
}
