/** The Table 1 figure: AP against γ and against α, and the training loss of CE and FL with and without the prior initialisation. */

import type { Canvas, Colour } from "../detection/canvas.js";
import { arrange, type Curve, lineChart } from "../detection/plots.js";
import type { CachedResult } from "./cache.js";
import { CE_PRIOR_ALPHA, FL_PRIOR, PRIOR, type SweepConfig, ZERO_BIAS } from "./grid.js";
import { summarize } from "./report.js";

const PALETTE: readonly Colour[] = [
  [200, 40, 40],
  [40, 90, 200],
  [20, 150, 60],
  [150, 60, 160],
  [220, 140, 20],
];

type Metric = "map" | "cocoMap";

const meanOf = (results: readonly CachedResult[] | undefined, metric: Metric) =>
  summarize((results ?? []).map((r) => r[metric])).mean;

/** (x, mean metric) for each configuration that has results, in increasing x. */
function pointsOf(
  configs: readonly SweepConfig[],
  x: (c: SweepConfig) => number,
  results: ReadonlyMap<string, readonly CachedResult[]>,
  metric: Metric,
): [number, number][] {
  return configs
    .filter((c) => (results.get(c.id)?.length ?? 0) > 0)
    .map((c) => [x(c), meanOf(results.get(c.id), metric)] as [number, number])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The mean over runs of the classification loss at each step (runs that stopped early count
 * until they stop), as log10, averaged over a moving window of `window` steps.
 *
 * @example
 * meanLogCurve([[10, 1], [100, 0.1]], 1); // two runs: [[1, log10(55)], [2, log10(0.55)]]
 */
export function meanLogCurve(
  runs: readonly (readonly number[])[],
  window: number,
): [number, number][] {
  const steps = Math.max(0, ...runs.map((r) => r.length));
  const means: [number, number][] = [];
  for (let s = 0; s < steps; s++) {
    const values = runs
      .map((r) => r[s])
      .filter((v) => v !== undefined && Number.isFinite(v) && v > 0);
    if (values.length > 0) means.push([s + 1, Math.log10(summarize(values).mean)]);
  }
  return means.map(([x], i) => {
    const part = means.slice(Math.max(0, i - window + 1), i + 1);
    return [x, part.reduce((a, [, y]) => a + y, 0) / part.length];
  });
}

/**
 * The figure of the sweep: AP@0.5 and COCO AP against γ (one curve per α, γ = 0 being CE at that
 * α) and against α (CE, and FL with γ = 2), and the log10 training loss of CE (α = 0.5) and FL
 * (γ = 2, α = 0.25) with π = 0.01 and with a zero bias, averaged over seeds.
 *
 * @example
 * await table1Figure(grid, resultsByConfig).writePng("runs/table1/table1.png");
 */
export function table1Figure(
  grid: readonly SweepConfig[],
  results: ReadonlyMap<string, readonly CachedResult[]>,
): Canvas {
  const withPrior = grid.filter((c) => c.priorProbability === PRIOR);
  const focal = withPrior.filter((c) => c.kind === "fl");
  const ce = withPrior.filter((c) => c.kind === "ce");
  const alphas = [...new Set(focal.map((c) => c.alpha))].sort((a, b) => a - b);
  const againstGamma = (metric: Metric): Curve[] =>
    alphas.map((alpha, i) => ({
      name: `a=${alpha}`,
      colour: PALETTE[i % PALETTE.length],
      points: pointsOf(
        withPrior.filter((c) => c.kind !== "ohem" && c.alpha === alpha),
        (c) => c.gamma,
        results,
        metric,
      ),
    }));
  const againstAlpha = (metric: Metric): Curve[] => [
    { name: "ce", colour: PALETTE[0], points: pointsOf(ce, (c) => c.alpha, results, metric) },
    {
      name: `fl g=${FL_PRIOR.gamma}`,
      colour: PALETTE[1],
      points: pointsOf(
        focal.filter((c) => c.gamma === FL_PRIOR.gamma),
        (c) => c.alpha,
        results,
        metric,
      ),
    },
  ];
  // AP axes in tenths, at least to 0.1, so that near-zero results do not fill the chart.
  const apChart = (title: string, curves: Curve[], xLabel: string) => {
    const top = Math.max(0, ...curves.flatMap((c) => c.points.map(([, y]) => y)));
    return lineChart(title, curves, { xLabel, yMax: Math.max(0.1, Math.ceil(top * 10) / 10) });
  };
  const charts = [
    apChart("ap@0.5 vs gamma", againstGamma("map"), "gamma"),
    apChart("coco ap vs gamma", againstGamma("cocoMap"), "gamma"),
    apChart("ap@0.5 vs alpha", againstAlpha("map"), "alpha"),
    apChart("coco ap vs alpha", againstAlpha("cocoMap"), "alpha"),
  ];
  const lossOf = (test: (c: SweepConfig) => boolean) => {
    const config = grid.find(test);
    const runs = config === undefined ? [] : (results.get(config.id) ?? []);
    const longest = Math.max(1, ...runs.map((r) => r.classificationLosses.length));
    return meanLogCurve(
      runs.map((r) => r.classificationLosses),
      Math.max(1, Math.round(longest / 50)),
    );
  };
  const isCe = (prior: number) => (c: SweepConfig) =>
    c.kind === "ce" && c.alpha === CE_PRIOR_ALPHA && c.priorProbability === prior;
  const isFl = (prior: number) => (c: SweepConfig) =>
    c.kind === "fl" &&
    c.gamma === FL_PRIOR.gamma &&
    c.alpha === FL_PRIOR.alpha &&
    c.priorProbability === prior;
  const lossCurves: Curve[] = [
    { name: "ce pi=.01", colour: PALETTE[0], points: lossOf(isCe(PRIOR)) },
    { name: "ce zero bias", colour: PALETTE[4], points: lossOf(isCe(ZERO_BIAS)) },
    { name: "fl pi=.01", colour: PALETTE[1], points: lossOf(isFl(PRIOR)) },
    { name: "fl zero bias", colour: PALETTE[3], points: lossOf(isFl(ZERO_BIAS)) },
  ];
  const ys = lossCurves.flatMap((c) => c.points.map(([, y]) => y));
  const losses = lineChart("log10 training loss", lossCurves, {
    width: 960,
    yMin: Math.floor(Math.min(0, ...ys)),
    yMax: Math.ceil(Math.max(1, ...ys)),
  });
  return arrange([arrange(charts, 2), losses]);
}
