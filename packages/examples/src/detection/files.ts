/** Files of a run directory written atomically: a crash leaves the old file or the new one, never half of one. */

import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "@focalgrad/core/checkpoint";

/**
 * Writes `bytes` to `path` through a temporary file in the same directory, flushed and renamed
 * into place: a crash leaves the old file or the new one, never half of one.
 *
 * @example
 * await writeAtomic("runs/demo/notes.txt", "hello");
 */
export async function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, bytes);
}

/**
 * Writes `value` as indented JSON to `path`, atomically.
 *
 * @example
 * await writeJson("runs/demo/metrics.json", { map: 0.97 });
 */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
