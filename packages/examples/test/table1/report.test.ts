import { describe, expect, it } from "vitest";
import { CACHE_FORMAT, type CachedResult } from "../../src/table1/cache.js";
import { meanLogCurve, table1Figure } from "../../src/table1/figures.js";
import { ceConfig, FULL_BUDGET, flConfig, ohemConfig, sweepGrid } from "../../src/table1/grid.js";
import {
  formatPercent,
  markdownTable,
  reportMarkdown,
  summarize,
  tableRows,
} from "../../src/table1/report.js";

const run = (
  configId: string,
  seed: number,
  map: number,
  cocoMap: number,
  diverged: string | null = null,
): CachedResult => ({
  format: CACHE_FORMAT,
  key: `${configId}-${seed}`,
  configId,
  seed,
  map,
  cocoMap,
  perClass: [],
  classificationLosses: [2, 1],
  seconds: 1,
  diverged,
});

describe("summarize and formatPercent", () => {
  it("mean and sample standard deviation, worked by hand", () => {
    // Mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n − 1 = 3: sqrt(5/3).
    const s = summarize([1, 2, 3, 4]);
    expect(s.mean).toBe(2.5);
    expect(s.std).toBeCloseTo(Math.sqrt(5 / 3), 15);
    expect(s.n).toBe(4);
    expect(summarize([0.3]).std).toBeNaN();
    expect(summarize([]).mean).toBeNaN();
  });

  it("per cent with one decimal, ± only from two values", () => {
    // [0.40, 0.44, 0.42]: mean 0.42; deviations -0.02, 0.02, 0: sqrt(0.0008 / 2) = 0.02.
    expect(formatPercent(summarize([0.4, 0.44, 0.42]))).toBe("42.0 ± 2.0");
    expect(formatPercent(summarize([0.1234]))).toBe("12.3");
    expect(formatPercent(summarize([]))).toBe("–");
  });
});

describe("tableRows", () => {
  it("puts each configuration under its part of Table 1, with the paper's numbers where it has them", () => {
    const rows = tableRows(sweepGrid(false));
    // 5 CE + 12 FL + 4 prior rows + OHEM, OHEM 1:3 and FL beside them.
    expect(rows).toHaveLength(24);
    const bySetting = new Map(rows.map((r) => [`${r.section} ${r.setting}`, r]));
    expect(bySetting.get("1a CE α=.75")?.paper).toEqual({ ap: 31.1, ap50: 49.4 });
    // Table 1b lists only the best α for each γ: .5 for γ = .5, .25 for γ = 1, 2 and 5.
    expect(bySetting.get("1b FL γ=.5 α=.5")?.paper).toEqual({ alpha: 0.5, ap: 32.9, ap50: 51.7 });
    expect(bySetting.get("1b FL γ=.5 α=.25")?.paper).toBeNull();
    expect(bySetting.get("1b FL γ=5 α=.25")?.paper).toEqual({ alpha: 0.25, ap: 32.2, ap50: 49.6 });
    expect(bySetting.get("§5.1 CE α=.5, zero bias")).toMatchObject({
      configId: "ce-a0.5-zero-bias",
      paper: "diverges",
    });
    expect(bySetting.get("§5.1 CE α=.5, π = .01")).toMatchObject({ configId: "ce-a0.5" });
    expect(bySetting.get("1d OHEM 1:3 (128 per image, NMS .5)")?.paper).toEqual({
      ap: 31.1,
      ap50: 47.2,
    });
    expect(bySetting.get("1d FL γ=2 α=.25")).toMatchObject({
      configId: "fl-g2-a0.25",
      paper: { ap: 36.0, ap50: 54.9 },
    });
  });
});

describe("markdownTable", () => {
  it("our mean ± std beside the paper's, a diverged run counted as 0 and named", () => {
    const grid = [ceConfig(0.25), ceConfig(0.5), ceConfig(0.5, 0.5)];
    const results = new Map([
      [
        "ce-a0.25",
        [
          run("ce-a0.25", 0, 0.4, 0.2),
          run("ce-a0.25", 1, 0.44, 0.22),
          run("ce-a0.25", 2, 0.42, 0.24),
        ],
      ],
      ["ce-a0.5", [run("ce-a0.5", 0, 0.5, 0.25)]],
      // [0, 0.3]: mean 0.15; deviations ±0.15: sqrt(2 · 0.0225 / 1) = 0.2121…
      [
        "ce-a0.5-zero-bias",
        [
          run("ce-a0.5-zero-bias", 0, 0, 0, "the loss is not finite"),
          run("ce-a0.5-zero-bias", 1, 0.3, 0.1),
        ],
      ],
    ]);
    expect(markdownTable(tableRows(grid), results)).toBe(
      [
        "| Table 1 | setting | ours AP@0.5 (%) | ours COCO AP (%) | paper AP50 | paper AP | seeds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        "| 1a | CE α=.25 | 42.0 ± 2.0 | 22.0 ± 2.0 | 16.0 | 10.8 | 3 |",
        "| 1a | CE α=.5 | 50.0 | 25.0 | 46.7 | 30.2 | 1 |",
        "| §5.1 | CE α=.5, π = .01 | 50.0 | 25.0 | trains (30.2 AP) | trains (30.2 AP) | 1 |",
        "| §5.1 | CE α=.5, zero bias | 15.0 ± 21.2 | 5.0 ± 7.1 | diverges | diverges | 2 (1 diverged) |",
      ].join("\n"),
    );
  });

  it("a configuration without results yet shows dashes, and the report says what was run", () => {
    const grid = [ohemConfig(null)];
    const text = reportMarkdown({
      rows: tableRows(grid),
      results: new Map(),
      budget: FULL_BUDGET,
      seeds: 3,
      code: "c0de",
      command: "pnpm table1",
    });
    expect(text).toContain(
      "| 1d | OHEM (128 per image, NMS .5) | – | – | 50.3 (ResNet-101) | 32.8 (ResNet-101) | 0 |",
    );
    expect(text).toContain(
      `\`pnpm table1\` (code version c0de): shapes, ${FULL_BUDGET.steps} steps of 8 images (2000 training images), AP on 500 held-out images, seeds 0–2.`,
    );
    expect(text).toContain("Lin et al., Focal Loss for Dense Object Detection, ICCV 2017");
  });
});

describe("the figure", () => {
  it("meanLogCurve: log10 of the mean over runs at each step, then a moving average", () => {
    // Two runs: step 1 mean (10 + 100) / 2 = 55, step 2 mean (1 + 0.1) / 2 = 0.55; the second run
    // has a third step, 0.01, alone.
    const curve = meanLogCurve(
      [
        [10, 1],
        [100, 0.1, 0.01],
      ],
      1,
    );
    expect(curve.map(([x]) => x)).toEqual([1, 2, 3]);
    expect(curve[0][1]).toBeCloseTo(Math.log10(55), 12);
    expect(curve[1][1]).toBeCloseTo(Math.log10(0.55), 12);
    expect(curve[2][1]).toBeCloseTo(-2, 12);
    // Window 2 averages each point with the one before: (log10 55 + log10 0.55) / 2 = log10(30.25) / 2.
    const smooth = meanLogCurve(
      [
        [10, 1],
        [100, 0.1, 0.01],
      ],
      2,
    );
    expect(smooth[1][1]).toBeCloseTo((Math.log10(55) + Math.log10(0.55)) / 2, 12);
    // A non-finite loss (a diverged run's last) is left out.
    expect(meanLogCurve([[Number.POSITIVE_INFINITY, 10]], 1)).toEqual([[2, 1]]);
  });

  it("draws four AP panels over the loss curves", () => {
    const grid = [ceConfig(0.25), flConfig(2, 0.25), ceConfig(0.5, 0.5)];
    const results = new Map([
      ["ce-a0.25", [run("ce-a0.25", 0, 0.3, 0.1)]],
      ["fl-g2-a0.25", [run("fl-g2-a0.25", 0, 0.5, 0.2)]],
    ]);
    const figure = table1Figure(grid, results);
    // Two 480 × 240 charts per row, two rows, over a 960 × 240 loss chart.
    expect([figure.width, figure.height]).toEqual([960, 720]);
    // The α = .25 curve (red) runs from CE's (γ = 0) to FL's (γ = 2) point in the first panel.
    let red = 0;
    for (let y = 0; y < 240; y++) {
      for (let x = 0; x < 480; x++) {
        const at = (y * 960 + x) * 4;
        if (
          figure.pixels[at] === 200 &&
          figure.pixels[at + 1] === 40 &&
          figure.pixels[at + 2] === 40
        )
          red++;
      }
    }
    expect(red).toBeGreaterThan(100);
  });
});
