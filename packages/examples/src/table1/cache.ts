/** The on-disk cache of the Table 1 sweep: one JSON file per (configuration, seed) run, named by a key of everything that decides its result, so that an interrupted sweep resumes where it stopped. */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeJson } from "../detection/files.js";
import { resolveTrainConfig, type TrainConfig } from "../detection/train.js";

/** Bumped when the layout of a cached result changes, so that old files are not misread. */
export const CACHE_FORMAT = 1;

/** What one finished run leaves: its metrics on the held-out images and its training curve. */
export interface RunResult {
  /** VOC mAP@0.5 on the held-out images (0 if the run diverged). */
  map: number;
  /** COCO AP@[.5:.95] (0 if the run diverged). */
  cocoMap: number;
  /** AP@0.5 per class (empty if the run diverged). */
  perClass: (number | null)[];
  /** The classification loss of every step done. */
  classificationLosses: number[];
  /** Seconds of training. */
  seconds: number;
  /** Why training stopped early (a non-finite loss), or null. */
  diverged: string | null;
}

/** A cached result: the run's result with the key, configuration and seed it belongs to. */
export interface CachedResult extends RunResult {
  format: number;
  key: string;
  configId: string;
  seed: number;
}

/**
 * A hash of the code a run's result depends on: every `.js` and `.ts` file (declarations and maps
 * left out) under `directories`, by path relative to its directory and content. Any change to the
 * training code therefore gives new keys; a change elsewhere (the report, this file) does not.
 *
 * @example
 * await codeVersion(["packages/core/dist", "packages/losses/dist"]); // "3f2a…" (16 hex digits)
 */
export async function codeVersion(directories: readonly string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const directory of directories) {
    if (!existsSync(directory)) {
      throw new Error(
        `table1: cannot hash the code in ${directory}: it does not exist (build first)`,
      );
    }
    const files = (await readdir(directory, { recursive: true }))
      .filter((f) => /\.(js|ts)$/.test(f) && !f.endsWith(".d.ts"))
      .sort();
    hash.update(`${directory.split(/[\\/]/).slice(-2).join("/")}\0`);
    for (const file of files) {
      hash.update(`${file.split(/[\\/]/).join("/")}\0`);
      hash.update(await readFile(join(directory, file)));
      hash.update("\0");
    }
  }
  return hash.digest("hex").slice(0, 16);
}

/**
 * The cache key of one run: a hash of the cache format, the code version and `train`'s settings
 * with every default filled in (`resolveTrainConfig`), without the run's name and directory.
 * Another configuration, seed, budget, default or code gives another key.
 *
 * @example
 * runKey({ seed: 1, steps: 400, loss: "focalFromLogits", gamma: 0 }, "3f2a09c1d4e5b6a7"); // 16 hex digits
 */
export function runKey(training: TrainConfig, code: string): string {
  const {
    name: _name,
    runsDir: _runsDir,
    ...settings
  } = resolveTrainConfig({
    ...training,
    name: "key",
    runsDir: ".",
  });
  const text = JSON.stringify({ format: CACHE_FORMAT, code, settings });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/**
 * The results of finished runs, one `<key>.json` per run in `directory`, written atomically. A
 * file that cannot be read as a result of its key (truncated by hand, an older format) counts as
 * missing, and `onInvalid` hears why: the run is done again.
 *
 * @example
 * const cache = new ResultCache("runs/table1/cache");
 * (await cache.read(key)) ?? (await cache.write({ ...result, format: CACHE_FORMAT, key, configId, seed }));
 */
export class ResultCache {
  constructor(
    readonly directory: string,
    private readonly onInvalid: (message: string) => void = () => {},
  ) {}

  /** Where the result of `key` lives. */
  pathOf(key: string): string {
    return join(this.directory, `${key}.json`);
  }

  /** The cached result of `key`, or null when there is none (or none that is valid). */
  async read(key: string): Promise<CachedResult | null> {
    const path = this.pathOf(key);
    if (!existsSync(path)) return null;
    let value: Partial<CachedResult>;
    try {
      value = JSON.parse(await readFile(path, "utf8"));
    } catch (e) {
      this.onInvalid(`${path} is not valid JSON (${(e as Error).message}); running it again`);
      return null;
    }
    const valid =
      value !== null &&
      typeof value === "object" &&
      value.format === CACHE_FORMAT &&
      value.key === key &&
      typeof value.map === "number" &&
      typeof value.cocoMap === "number" &&
      Array.isArray(value.classificationLosses);
    if (!valid) {
      this.onInvalid(
        `${path} is not a result of format ${CACHE_FORMAT} for key ${key}; running it again`,
      );
      return null;
    }
    return value as CachedResult;
  }

  /** Stores `result` under its key. */
  async write(result: CachedResult): Promise<void> {
    await writeJson(this.pathOf(result.key), result);
  }
}
