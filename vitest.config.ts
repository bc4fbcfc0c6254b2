import { defineConfig } from "vitest/config";

// One root config, one project per package. The "source" export condition points every
// @focalgrad/* import at the TypeScript sources, so tests never need a build first.
export default defineConfig({
  resolve: { conditions: ["source"] },
  test: {
    projects: ["core", "losses", "examples"].map((name) => ({
      extends: true,
      test: { name, include: [`packages/${name}/test/**/*.test.ts`] },
    })),
  },
});
