import { describe, expect, it } from "vitest";
import { parseTable1Arguments } from "../../src/table1/cli.js";
import { FULL_BUDGET, QUICK_BUDGET } from "../../src/table1/grid.js";

describe("pnpm table1 options", () => {
  it("defaults: 3 seeds, the full budget, 2 runs at a time sharing the cores", () => {
    expect(parseTable1Arguments([], 2)).toEqual({
      quick: false,
      seeds: 3,
      budget: FULL_BUDGET,
      jobs: 2,
      threads: 1,
      out: "runs/table1",
      list: false,
    });
    // 8 cores over 2 jobs: 4 threads each; 1 job on 2 cores: 2 threads.
    expect(parseTable1Arguments([], 8)?.threads).toBe(4);
    expect(parseTable1Arguments(["--jobs", "1"], 2)?.threads).toBe(2);
  });

  it("--quick, overrides, --list and --help", () => {
    expect(parseTable1Arguments(["--", "--quick"], 2)).toMatchObject({
      quick: true,
      seeds: 2,
      budget: QUICK_BUDGET,
      out: "runs/table1-quick",
    });
    expect(
      parseTable1Arguments(
        ["--steps", "100", "--seeds", "5", "--threads", "2", "--out", "x", "--list"],
        2,
      ),
    ).toMatchObject({
      seeds: 5,
      budget: { ...FULL_BUDGET, steps: 100 },
      threads: 2,
      out: "x",
      list: true,
    });
    expect(parseTable1Arguments(["--help"])).toBeNull();
    expect(parseTable1Arguments(["-h"])).toBeNull();
  });

  it("rejects bad values in one line that names the flag", () => {
    expect(() => parseTable1Arguments(["--seeds", "0"])).toThrow(
      /^--seeds: expected an integer >= 1, got "0"$/,
    );
    expect(() => parseTable1Arguments(["--jobs", "1.5"])).toThrow(
      /^--jobs: expected an integer >= 1/,
    );
    expect(() => parseTable1Arguments(["--steps", ""])).toThrow(
      /^--steps: expected an integer >= 1/,
    );
    expect(() => parseTable1Arguments(["--gamma", "2"])).toThrow(/Unknown option '--gamma'/);
  });
});
