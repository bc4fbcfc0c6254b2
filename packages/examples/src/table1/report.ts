/** The Table 1 report: statistics over seeds and the markdown table of our results beside the paper's. */

import type { CachedResult } from "./cache.js";
import {
  type Budget,
  CE_PRIOR_ALPHA,
  FL_PRIOR,
  PRIOR,
  type SweepConfig,
  ZERO_BIAS,
} from "./grid.js";
import {
  PAPER_CE,
  PAPER_FL_BEST_ALPHA,
  PAPER_FL_RESNET101,
  PAPER_OHEM,
  PAPER_OHEM_1_3,
  PAPER_PRIOR,
  PAPER_SOURCE,
  type PaperResult,
} from "./paper.js";

/** Mean and sample standard deviation (n − 1 in the denominator, NaN for fewer than 2 values). */
export interface Summary {
  mean: number;
  std: number;
  n: number;
}

/**
 * The mean and the sample standard deviation of `values` (Bessel's n − 1, as NumPy's `ddof=1`
 * and PyTorch's `std`); the mean of nothing and the deviation of fewer than two values are NaN.
 *
 * @example
 * summarize([1, 2, 3, 4]); // { mean: 2.5, std: 1.2909944487358056, n: 4 }
 */
export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  const mean = n === 0 ? Number.NaN : values.reduce((a, v) => a + v, 0) / n;
  const std =
    n < 2 ? Number.NaN : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { mean, std, n };
}

/**
 * A fraction as per cent with one decimal, "± std" when there are two values or more, "–" for none.
 *
 * @example
 * formatPercent(summarize([0.412, 0.398, 0.431])); // "41.4 ± 1.7"
 */
export function formatPercent(summary: Summary): string {
  if (summary.n === 0) return "–";
  const mean = (100 * summary.mean).toFixed(1);
  return summary.n < 2 ? mean : `${mean} ± ${(100 * summary.std).toFixed(1)}`;
}

/** One row of the table: a configuration of ours, and what the paper reports for it. */
export interface TableRow {
  /** "1a", "1b", "§5.1" or "1d". */
  section: string;
  setting: string;
  configId: string;
  /** The paper's numbers, a word ("diverges"), or null where the paper has no such row. */
  paper: PaperResult | string | null;
  /** A note on the paper's setting, e.g. "ResNet-101". */
  note?: string;
}

const findConfig = (grid: readonly SweepConfig[], test: (c: SweepConfig) => boolean) =>
  grid.find(test);

/**
 * The rows of the table for the configurations of `grid`: 1a (CE by α), 1b (FL by γ and α, with
 * the paper's numbers where α is the paper's best for that γ), §5.1 (each loss with π = 0.01 and
 * with a zero bias), 1d (OHEM, OHEM 1:3 and FL γ = 2, α = 0.25 beside them).
 *
 * @example
 * tableRows(sweepGrid(false)).length; // 5 + 12 + 4 + 3
 */
export function tableRows(grid: readonly SweepConfig[]): TableRow[] {
  const rows: TableRow[] = [];
  const withPrior = (c: SweepConfig) => c.priorProbability === PRIOR;
  for (const c of grid.filter((c) => c.kind === "ce" && withPrior(c))) {
    rows.push({
      section: "1a",
      setting: c.label,
      configId: c.id,
      paper: PAPER_CE.get(c.alpha) ?? null,
    });
  }
  for (const c of grid.filter((c) => c.kind === "fl" && withPrior(c))) {
    const best = PAPER_FL_BEST_ALPHA.get(c.gamma);
    const paper = best !== undefined && best.alpha === c.alpha ? best : null;
    rows.push({ section: "1b", setting: c.label, configId: c.id, paper });
  }
  const ce = (prior: number) =>
    findConfig(
      grid,
      (c) => c.kind === "ce" && c.alpha === CE_PRIOR_ALPHA && c.priorProbability === prior,
    );
  const fl = (prior: number) =>
    findConfig(
      grid,
      (c) =>
        c.kind === "fl" &&
        c.gamma === FL_PRIOR.gamma &&
        c.alpha === FL_PRIOR.alpha &&
        c.priorProbability === prior,
    );
  const pairs: [SweepConfig | undefined, SweepConfig | undefined, string, string | null][] = [
    [ce(PRIOR), ce(ZERO_BIAS), PAPER_PRIOR.ceWithPrior, PAPER_PRIOR.ceWithoutPrior],
    [fl(PRIOR), fl(ZERO_BIAS), "", null],
  ];
  for (const [prior, zero, paperPrior, paperZero] of pairs) {
    if (prior === undefined || zero === undefined) continue;
    rows.push({
      section: "§5.1",
      setting: `${prior.label}, π = .01`,
      configId: prior.id,
      paper: paperPrior || null,
    });
    rows.push({
      section: "§5.1",
      setting: `${zero.label.replace(" zero bias", "")}, zero bias`,
      configId: zero.id,
      paper: paperZero,
    });
  }
  for (const c of grid.filter((c) => c.kind === "ohem")) {
    const paper = c.ohemRatio === null ? PAPER_OHEM : c.ohemRatio === 3 ? PAPER_OHEM_1_3 : null;
    rows.push({
      section: "1d",
      setting: `${c.label} (128 per image, NMS .5)`,
      configId: c.id,
      paper,
      note: "ResNet-101",
    });
  }
  const flDefault = fl(PRIOR);
  if (flDefault !== undefined && grid.some((c) => c.kind === "ohem")) {
    rows.push({
      section: "1d",
      setting: flDefault.label,
      configId: flDefault.id,
      paper: PAPER_FL_RESNET101,
      note: "ResNet-101",
    });
  }
  return rows;
}

/** The AP@0.5 and COCO AP summaries of one configuration's results, and how many diverged. */
export function configSummary(results: readonly CachedResult[]): {
  map: Summary;
  cocoMap: Summary;
  diverged: number;
} {
  return {
    map: summarize(results.map((r) => r.map)),
    cocoMap: summarize(results.map((r) => r.cocoMap)),
    diverged: results.filter((r) => r.diverged !== null).length,
  };
}

function paperCells(paper: TableRow["paper"], note?: string): [string, string] {
  if (paper === null) return ["–", "–"];
  if (typeof paper === "string") return [paper, paper];
  const suffix = note === undefined ? "" : ` (${note})`;
  return [`${paper.ap50.toFixed(1)}${suffix}`, `${paper.ap.toFixed(1)}${suffix}`];
}

/**
 * The markdown table: per row our AP@0.5 and COCO AP over the seeds (per cent, mean ± sample
 * std; a diverged run counts as 0 and is counted in the last column) beside the paper's AP50 and
 * AP on COCO.
 *
 * @example
 * markdownTable(tableRows(grid), resultsByConfig); // "| Table 1 | setting | … |\n| --- | …"
 */
export function markdownTable(
  rows: readonly TableRow[],
  results: ReadonlyMap<string, readonly CachedResult[]>,
): string {
  const lines = [
    "| Table 1 | setting | ours AP@0.5 (%) | ours COCO AP (%) | paper AP50 | paper AP | seeds |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const row of rows) {
    const { map, cocoMap, diverged } = configSummary(results.get(row.configId) ?? []);
    const [paperAp50, paperAp] = paperCells(row.paper, row.note);
    const seeds = diverged > 0 ? `${map.n} (${diverged} diverged)` : String(map.n);
    lines.push(
      `| ${row.section} | ${row.setting} | ${formatPercent(map)} | ${formatPercent(cocoMap)} | ${paperAp50} | ${paperAp} | ${seeds} |`,
    );
  }
  return lines.join("\n");
}

/**
 * The whole report as markdown: what was run (dataset, budget, seeds, code version, command), the
 * table, and where the paper's numbers come from.
 *
 * @example
 * await writeAtomic("runs/table1/table1.md", reportMarkdown({ rows, results, budget, seeds: 3, code, command }));
 */
export function reportMarkdown(options: {
  rows: readonly TableRow[];
  results: ReadonlyMap<string, readonly CachedResult[]>;
  budget: Budget;
  seeds: number;
  code: string;
  command: string;
}): string {
  const { rows, results, budget, seeds, code, command } = options;
  return [
    "# Table 1 on the toy detector",
    "",
    `\`${command}\` (code version ${code}): ${budget.dataset}, ${budget.steps} steps of ${budget.batchSize} images ` +
      `(${budget.trainImages} training images), AP on ${budget.testImages} held-out images, seeds 0–${seeds - 1}.`,
    "",
    markdownTable(rows, results),
    "",
    `Ours: mean ± sample standard deviation over the seeds, in per cent; AP@0.5 is VOC's all-point AP, ` +
      `COCO AP is AP@[.5:.95]. Paper: ${PAPER_SOURCE}; RetinaNet ResNet-50-FPN at 600 px unless noted, ` +
      `"–" where the paper has no such number (Table 1b gives only the best α for each γ).`,
    "",
  ].join("\n");
}
