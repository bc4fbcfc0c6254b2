import { defineConfig } from "vitest/config";

// One root config, one project per package. The "source" export condition points every
// @focalgrad/* import at the TypeScript sources, so tests never need a build first. Vitest runs
// tests in Vite's server (SSR) environment, whose conditions are set apart from the client's.
// The JSON report is what .ci/run reads its pass/fail counts from (FOCALGRAD_TEST_REPORT names
// another file, for a second run of some files).
const conditions = ["source", "module", "node", "development|production"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    // Property tests take a few seconds on a quiet machine; shared CI hosts can be several times slower.
    testTimeout: 30_000,
    reporters: [
      "default",
      ["json", { outputFile: process.env.FOCALGRAD_TEST_REPORT ?? ".vitest-results.json" }],
    ],
    projects: ["core", "losses", "onnx", "examples"].map((name) => ({
      extends: true,
      test: { name, include: [`packages/${name}/test/**/*.test.ts`] },
    })),
  },
});
