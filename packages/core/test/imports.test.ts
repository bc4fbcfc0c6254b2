// The one-way layers of the core package (kernels ← ops ← engine ← nn / optim), read from the
// sources' run-time imports: type-only imports are erased by the compiler and close no circle.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const sourceRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

/** Every source file (relative to src/) and the source files it imports at run time. */
function runtimeImports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = readdirSync(sourceRoot, { recursive: true, encoding: "utf8" }).filter((f) =>
    f.endsWith(".ts"),
  );
  const statement = /^(?:import|export)\s+(type\s+)?([^;]*?)\s+from\s+"(\.[^"]+)"/gms;
  for (const file of files) {
    const text = readFileSync(join(sourceRoot, file), "utf8");
    const imports: string[] = [];
    for (const [, typeOnly, clause, target] of text.matchAll(statement)) {
      const names = /^\{([^}]*)\}$/.exec(clause.trim());
      const allTypes =
        names?.[1]
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
          .every((s) => s.startsWith("type ")) === true;
      if (typeOnly !== undefined || allTypes) continue;
      const path = resolve(dirname(join(sourceRoot, file)), target.replace(/\.js$/, ".ts"));
      imports.push(relative(sourceRoot, path));
    }
    graph.set(file, imports);
  }
  return graph;
}

/** The import circles: strongly connected components of more than one file (Tarjan). */
function circles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("import layers", () => {
  const graph = runtimeImports();

  it("finds the files and their imports", () => {
    // A parser that found nothing would pass every check below.
    expect(graph.get("ops/math.ts")).toContain("tape.ts");
    expect(graph.get("engine.ts")).toContain("ops/reduce.ts");
  });

  it("has no import circle except between op families", () => {
    for (const circle of circles(graph)) {
      expect(
        circle.every((f) => f.startsWith("ops/")),
        circle.join(", "),
      ).toBe(true);
    }
  });

  it("keeps the tensor, the tape and the kernels below the ops and the engine", () => {
    const low = [...graph.keys()].filter(
      (f) =>
        f === "tensor.ts" || f === "tape.ts" || f.startsWith("kernels/") || f.startsWith("lazy/"),
    );
    for (const file of low) {
      const upward = graph
        .get(file)!
        .filter((f) => f.startsWith("ops/") || f === "engine.ts" || f === "index.ts");
      expect(upward, file).toEqual([]);
    }
  });
});
