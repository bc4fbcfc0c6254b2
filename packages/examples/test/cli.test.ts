/** Tests of cli.ts, the conventions every command shares: parsing, --help, errors, exit codes. */

import { afterEach, describe, expect, it, vi } from "vitest";
import {
  choiceOption,
  cliArguments,
  numberOption,
  parseCommandLine,
  runCommand,
  UsageError,
} from "../src/cli.js";

describe("cliArguments", () => {
  it("drops every -- that pnpm passes through, and nothing else", () => {
    expect(cliArguments(["--", "--quick"])).toEqual(["--quick"]);
    expect(cliArguments(["--quick"])).toEqual(["--quick"]);
    // pnpm demo -- --help runs `cli.js train --name demo -- --help`.
    expect(cliArguments(["train", "--name", "demo", "--", "--help"])).toEqual([
      "train",
      "--name",
      "demo",
      "--help",
    ]);
  });
});

describe("parseCommandLine", () => {
  const options = { steps: { type: "string" }, quiet: { type: "boolean" } } as const;

  it("gives the values, or null for -h and --help wherever they stand", () => {
    expect(parseCommandLine(["--steps", "3", "--quiet"], options)?.values).toEqual({
      steps: "3",
      quiet: true,
    });
    expect(parseCommandLine(["-h"], options)).toBeNull();
    expect(parseCommandLine(["--steps", "3", "--", "--help"], options)).toBeNull();
  });

  it("turns node's parse errors into one-line usage errors", () => {
    expect(() => parseCommandLine(["--frob"], options)).toThrow(
      new UsageError("unknown option --frob (--help lists the options)"),
    );
    expect(() => parseCommandLine(["--steps"], options)).toThrow(UsageError);
    expect(() => parseCommandLine(["extra"], options)).toThrow(UsageError);
    expect(parseCommandLine(["extra"], options, { positionals: true })?.positionals).toEqual([
      "extra",
    ]);
  });
});

describe("numberOption and choiceOption", () => {
  it("accept what the rule allows and leave an absent flag undefined", () => {
    expect(numberOption("alpha", "0.25", { min: 0, max: 1 })).toBe(0.25);
    expect(numberOption("alpha", "1", { min: 0, max: 1 })).toBe(1);
    expect(numberOption("steps", "1e3", { integer: true, min: 1 })).toBe(1000);
    expect(numberOption("lr", "1e-9", { above: 0 })).toBe(1e-9);
    expect(numberOption("steps", undefined, { integer: true })).toBeUndefined();
    expect(choiceOption("norm", "batch", ["group", "batch"])).toBe("batch");
    expect(choiceOption("norm", undefined, ["group", "batch"])).toBeUndefined();
  });

  it("name the flag, what it accepts and what was given", () => {
    const cases: [string, string, Parameters<typeof numberOption>[2], string][] = [
      ["batch", "0", { integer: true, min: 1 }, 'expected an integer >= 1, got "0"'],
      ["batch", "1.5", { integer: true, min: 1 }, 'expected an integer >= 1, got "1.5"'],
      ["alpha", "2", { min: 0, max: 1 }, 'expected a number in [0, 1], got "2"'],
      ["alpha", "-0.1", { min: 0, max: 1 }, 'expected a number in [0, 1], got "-0.1"'],
      ["lr", "0", { above: 0 }, 'expected a number > 0, got "0"'],
      ["gamma", "NaN", { min: 0 }, 'expected a number >= 0, got "NaN"'],
      ["gamma", "Infinity", {}, 'expected a number, got "Infinity"'],
      ["gamma", " ", {}, 'expected a number, got " "'],
      ["keep", "2", { max: 1 }, 'expected a number <= 1, got "2"'],
    ];
    for (const [name, text, rule, message] of cases) {
      expect(() => numberOption(name, text, rule)).toThrow(new UsageError(`--${name}: ${message}`));
    }
    expect(() => choiceOption("norm", "layer", ["group", "batch"])).toThrow(
      new UsageError('--norm: expected one of group, batch, got "layer"'),
    );
  });
});

describe("runCommand", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  it("prints a usage error as one line naming the command, with exit code 2", async () => {
    const printed = vi.spyOn(console, "error").mockImplementation(() => {});
    await runCommand("demo:loss", () => {
      throw new UsageError('--batch: expected an integer >= 1, got "0"');
    });
    expect(printed.mock.calls).toEqual([['demo:loss: --batch: expected an integer >= 1, got "0"']]);
    expect(process.exitCode).toBe(2);
  });

  it("keeps the stack of any other error, with exit code 1, and leaves success alone", async () => {
    const printed = vi.spyOn(console, "error").mockImplementation(() => {});
    const bug = new TypeError("a bug");
    await runCommand("bench", async () => {
      throw bug;
    });
    expect(printed.mock.calls).toEqual([[bug]]);
    expect(process.exitCode).toBe(1);
    process.exitCode = undefined;
    await runCommand("bench", () => {});
    expect(process.exitCode).toBeUndefined();
  });
});
