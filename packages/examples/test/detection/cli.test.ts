import { describe, expect, it } from "vitest";
import { parseTrainArguments } from "../../src/detection/cli.js";

describe("detect train options", () => {
  it("maps flags onto the TrainConfig, leaving unset ones to train's defaults", () => {
    expect(
      parseTrainArguments([
        "--dataset",
        "digits",
        "--steps",
        "10",
        "--levels",
        "3-6",
        "--head-depth",
        "1",
        "--quiet",
      ]),
    ).toEqual({
      dataset: "digits",
      steps: 10,
      model: { levels: [3, 4, 5, 6], headDepth: 1 },
      quiet: true,
    });
    expect(
      parseTrainArguments(["--loss", "ohem", "--ohem-examples", "64", "--ohem-ratio", "3"]),
    ).toEqual({ loss: "ohem", ohemExamples: 64, ohemRatio: 3, model: {} });
    expect(parseTrainArguments(["--help"])).toBeNull();
    expect(parseTrainArguments(["-h"])).toBeNull();
  });

  it("rejects out-of-range values in one line that names the flag", () => {
    expect(() => parseTrainArguments(["--batch", "0"])).toThrow(
      /^--batch: expected an integer >= 1, got "0"$/,
    );
    expect(() => parseTrainArguments(["--alpha", "2"])).toThrow(
      /^--alpha: expected a number in \[0, 1\], got "2"$/,
    );
    expect(() => parseTrainArguments(["--lr", "0"])).toThrow(/^--lr: expected a number > 0/);
    expect(() => parseTrainArguments(["--levels", "1-5"])).toThrow(
      /^--levels: expected A-B with 2 <= A <= B <= 7/,
    );
    expect(() => parseTrainArguments(["--levels", "5-4"])).toThrow(/^--levels: expected A-B/);
    expect(() => parseTrainArguments(["--dataset", "coco"])).toThrow(
      /^--dataset: expected one of shapes, digits/,
    );
    expect(() => parseTrainArguments(["--steps", "1.5"])).toThrow(/^--steps: expected an integer/);
    expect(() => parseTrainArguments(["--ohem-ratio", "0"])).toThrow(
      /^--ohem-ratio: expected a number >= /,
    );
    expect(() => parseTrainArguments(["--ohem-examples", "0"])).toThrow(
      /^--ohem-examples: expected an integer >= 1, got "0"$/,
    );
    expect(() => parseTrainArguments(["--frob"])).toThrow(/Unknown option '--frob'/);
  });
});
