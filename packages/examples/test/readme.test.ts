import { readFileSync } from "node:fs";
import { tensor } from "@focalgrad/core";
import { focal } from "@focalgrad/losses";
import { describe, expect, it } from "vitest";

const root = new URL("../../../", import.meta.url);
const readme = readFileSync(new URL("README.md", root), "utf8");

describe("README", () => {
  it("its test command is the one .ci/run runs, verbatim", () => {
    const ci = readFileSync(new URL(".ci/run", root), "utf8");
    const command = readme.match(
      /^(npx -y pnpm@[\d.]+ install --frozen-lockfile && npx -y pnpm@[\d.]+ test)$/m,
    );
    expect(command).not.toBeNull();
    expect(ci).toContain(command![1]);
    expect(readme).toMatch(
      /^npx -y pnpm@[\d.]+ install --frozen-lockfile && npx -y pnpm@[\d.]+ demo$/m,
    );
  });

  it("its first example computes what it says", () => {
    const yTrue = tensor([
      [
        [1, 0, 1],
        [0, 0, 0],
        [0, 1, -1],
      ],
    ]);
    const yPred = tensor(
      [
        [
          [0.7, 0.2],
          [0.1, 0.4],
          [0.5, 0.5],
        ],
      ],
      { requiresGrad: true },
    );
    const loss = focal({ alpha: 0.25, gamma: 2 })(yTrue, yPred);
    loss.backward();
    // Object anchor: 0.25·0.3²·−ln 0.7 + 0.75·0.2²·−ln 0.8 = 0.0080252 + 0.0066943
    // Background:    0.75·0.1²·−ln 0.9 + 0.75·0.4²·−ln 0.6 = 0.0007902 + 0.0612991
    // Sum 0.0768088, normaliser max(1, 1 object anchor) = 1.
    expect(loss.item()).toBeCloseTo(0.0768088, 6);
    const grad = yPred.grad!.toArray() as number[][][];
    expect(grad[0][2]).toEqual([0, 0]);
  });
});
