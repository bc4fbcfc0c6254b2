/** How big a model is: its parameter count and a per-module summary table. */

import { formatShape } from "../shape.js";
import type { AnyModule } from "./module.js";

/**
 * The number of parameter elements of `module` and everything below it (a tensor shared by two
 * modules counted once), like `sum(p.numel() for p in model.parameters())`.
 *
 * @example
 * parameterCount(new Linear(4, 2)); // 4 · 2 weights + 2 biases = 10
 */
export function parameterCount(module: AnyModule): number {
  let count = 0;
  for (const p of module.parameters()) count += p.size;
  return count;
}

/**
 * A plain-text table of `module`: one row per module (dotted name, class, the shapes of its own
 * parameters, their element count), then the total. Shared tensors count once, at their first
 * owner.
 *
 * @example
 * console.log(summary(new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 1))));
 * // name  module      parameters    count
 * // (root) Sequential                   0
 * // 0     Linear      [8, 4], [8]      40
 * // …
 * // total                              49
 */
export function summary(module: AnyModule): string {
  const seen = new Set<unknown>();
  const rows: string[][] = [["name", "module", "parameters", "count"]];
  for (const [name, m] of module.namedModules()) {
    const own = m
      .namedParameters()
      .filter(([key, t]) => !key.includes(".") && !seen.has(t))
      .map(([, t]) => t);
    for (const t of own) seen.add(t);
    const count = own.reduce((total, t) => total + t.size, 0);
    rows.push([
      name === "" ? "(root)" : name,
      m.constructor.name,
      own.map((t) => formatShape(t.shape)).join(", "),
      String(count),
    ]);
  }
  rows.push(["total", "", "", String(parameterCount(module))]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows
    .map((row) =>
      row
        .map((cell, c) =>
          c === row.length - 1 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]),
        )
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
