import { describe, expect, it } from "vitest";
import { cliArguments } from "../src/cli.js";

describe("cliArguments", () => {
  it("drops the -- that pnpm passes through, and nothing else", () => {
    expect(cliArguments(["--", "--quick"])).toEqual(["--quick"]);
    expect(cliArguments(["--quick"])).toEqual(["--quick"]);
    expect(cliArguments(["--batch", "2", "--"])).toEqual(["--batch", "2", "--"]);
  });
});
