import { mkdtempSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CACHE_FORMAT,
  type CachedResult,
  codeVersion,
  ResultCache,
} from "../../src/table1/cache.js";

const root = mkdtempSync(join(tmpdir(), "focalgrad-table1-cache-"));
afterAll(() => rm(root, { recursive: true, force: true }));

const result = (key: string): CachedResult => ({
  format: CACHE_FORMAT,
  key,
  configId: "ce-a0.25",
  seed: 1,
  map: 0.42,
  cocoMap: 0.21,
  perClass: [0.4, null, 0.44],
  classificationLosses: [1.5, 1.2],
  seconds: 12.5,
  diverged: null,
});

describe("ResultCache", () => {
  it("reads back what it wrote, and nothing for a key it never saw", async () => {
    const cache = new ResultCache(join(root, "a"));
    expect(await cache.read("0123456789abcdef")).toBeNull();
    await cache.write(result("0123456789abcdef"));
    expect(await cache.read("0123456789abcdef")).toEqual(result("0123456789abcdef"));
    expect(cache.pathOf("0123456789abcdef")).toBe(join(root, "a", "0123456789abcdef.json"));
  });

  it("takes a damaged, foreign or older file for missing, and says so", async () => {
    const heard: string[] = [];
    const cache = new ResultCache(join(root, "b"), (m) => heard.push(m));
    await mkdir(join(root, "b"), { recursive: true });
    await writeFile(cache.pathOf("aaaa"), '{"format": 1, "key": "aa');
    await writeFile(cache.pathOf("bbbb"), JSON.stringify(result("cccc")));
    await writeFile(cache.pathOf("dddd"), JSON.stringify({ ...result("dddd"), format: 0 }));
    expect(await cache.read("aaaa")).toBeNull();
    expect(await cache.read("bbbb")).toBeNull();
    expect(await cache.read("dddd")).toBeNull();
    expect(heard).toHaveLength(3);
    expect(heard[0]).toMatch(/aaaa\.json is not valid JSON .*; running it again/);
    expect(heard[1]).toMatch(
      /bbbb\.json is not a result of format 1 for key bbbb; running it again/,
    );
  });
});

describe("codeVersion", () => {
  it("follows the content and names of the code files, not declarations or maps", async () => {
    const dir = join(root, "code", "dist");
    await mkdir(join(dir, "ops"), { recursive: true });
    await writeFile(join(dir, "index.js"), "export const a = 1;");
    await writeFile(join(dir, "ops", "math.js"), "export const b = 2;");
    const first = await codeVersion([dir]);
    expect(first).toMatch(/^[0-9a-f]{16}$/);
    await writeFile(join(dir, "index.d.ts"), "export declare const a: number;");
    await writeFile(join(dir, "index.js.map"), "{}");
    expect(await codeVersion([dir])).toBe(first);
    await writeFile(join(dir, "ops", "math.js"), "export const b = 3;");
    const changed = await codeVersion([dir]);
    expect(changed).not.toBe(first);
    await rm(join(dir, "ops", "math.js"));
    await writeFile(join(dir, "ops", "other.js"), "export const b = 3;");
    expect(await codeVersion([dir])).not.toBe(changed);
    await expect(codeVersion([join(root, "missing")])).rejects.toThrow(
      /table1: cannot hash the code in .*missing: it does not exist \(build first\)/,
    );
  });
});
