/** The benchmark's output: the machine it ran on and the result table, as markdown for stdout and a file. */

import * as os from "node:os";
import type { Row } from "./run.js";

/** Facts about the machine and runtime that a reader needs to weigh the numbers. */
export function machineFacts(extra: Record<string, string> = {}): Record<string, string> {
  const cpus = os.cpus();
  return {
    CPU: `${cpus[0]?.model.trim() ?? "unknown"} (${cpus.length} logical cores${
      typeof os.availableParallelism === "function"
        ? `, ${os.availableParallelism()} available`
        : ""
    })`,
    Memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    OS: `${os.type()} ${os.release()} ${os.arch()}`,
    Node: process.version,
    ...extra,
  };
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function cell(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? "" : value.toFixed(digits);
}

function ms(value: number): string {
  if (Number.isNaN(value)) return "";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/**
 * The results as a markdown table: one row per workload, pass and implementation, with median,
 * min and max wall time, median CPU time, the ratios of both to the fused loop (focal rows),
 * GFLOP/s from the median wall time (dense rows) and peak additional memory.
 *
 * @example
 * console.log(formatTable(rows));
 */
export function formatTable(rows: readonly Row[]): string {
  const header = [
    "workload",
    "pass",
    "implementation",
    "iters",
    "median ms",
    "min ms",
    "max ms",
    "CPU ms",
    "× fused",
    "× fused (CPU)",
    "GFLOP/s",
    "peak MB",
    "peak / yPred",
  ];
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i < 3 ? " --- " : " ---: ")).join("|")}|`,
  ];
  for (const r of rows) {
    const reason = r.failed !== undefined ? `FAILED: ${r.failed}` : `skipped: ${r.skipped}`;
    const cells =
      r.skipped !== undefined || r.failed !== undefined
        ? [r.workload, r.pass, r.impl, "", reason, ...new Array<string>(header.length - 5).fill("")]
        : [
            r.workload,
            r.pass,
            r.impl,
            r.timedByCheck === true ? "1 (check)" : String(r.timesMs.length),
            ms(r.medianMs),
            ms(r.minMs),
            ms(r.maxMs),
            ms(r.medianCpuMs),
            cell(r.ratio, 2),
            cell(r.cpuRatio, 2),
            r.gflops === undefined ? "" : r.gflops.toPrecision(3),
            mb(r.peakBytes),
            r.peakOverPrediction === undefined ? "" : `${r.peakOverPrediction.toFixed(1)}×`,
          ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** Machine facts as a markdown list. */
export function formatFacts(facts: Record<string, string>): string {
  return Object.entries(facts)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join("\n");
}
