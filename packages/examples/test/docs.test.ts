/** The repository is self-contained: every document and source file cites only files it holds. */

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../../", import.meta.url));
/** `pnpm run docs` writes the API reference here; it is not part of the repository. */
const apiReference = join(root, "docs/api");

/** Tracked-looking files under `dir`: no dependencies, build output or dot directories. */
function filesUnder(dir: string, extensions: readonly string[]): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const generated = ["node_modules", "dist"].includes(entry.name) || path === apiReference;
    if (entry.name.startsWith(".") || generated) continue;
    if (entry.isDirectory()) found.push(...filesUnder(path, extensions));
    else if (extensions.some((ext) => entry.name.endsWith(ext))) found.push(path);
  }
  return found;
}

const markdown = filesUnder(root, [".md"]);
const sources = filesUnder(join(root, "packages"), [".ts"]);

describe("documentation", () => {
  it("has the loss reference and the design notes", () => {
    expect(existsSync(join(root, "docs/focal-loss.md"))).toBe(true);
    expect(existsSync(join(root, "docs/design.md"))).toBe(true);
  });

  it("every relative markdown link points at a file of the repository", () => {
    const broken: string[] = [];
    for (const file of markdown) {
      const text = readFileSync(file, "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target) || target.startsWith("#")) continue;
        const path = join(dirname(file), target.split("#")[0]);
        if (!existsSync(path)) broken.push(`${relative(root, file)} -> ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("every docs/ page cited by a source file exists", () => {
    const missing: string[] = [];
    for (const file of [...sources, ...markdown]) {
      const text = readFileSync(file, "utf8");
      for (const [page] of text.matchAll(/\bdocs\/[\w-]+\.md\b/g)) {
        if (!existsSync(join(root, page))) missing.push(`${relative(root, file)} cites ${page}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("nothing cites the seed's files that the repository does not hold", () => {
    const self = fileURLToPath(import.meta.url);
    const citing = [...sources, ...markdown]
      .filter((file) => file !== self)
      .filter((file) => /\bspec\/[\w-]+\.(md|txt)\b|DESIGN notes/.test(readFileSync(file, "utf8")))
      .map((file) => relative(root, file));
    expect(citing).toEqual([]);
  });
});
