/**
 * The published packages as a consumer gets them: the packed tarballs pass publint and
 * arethetypeswrong, install with npm into an empty project, type-check there under
 * `moduleResolution` node16 and bundler, and run the README's first example.
 * `pnpm check:packages` runs this file alone.
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// Packing, linting and compiling run other programs, slower than unit tests on a loaded machine.
vi.setConfig({ testTimeout: 60_000 });

const root = fileURLToPath(new URL("../../../", import.meta.url));
const bin = (name: string) => join(root, "node_modules/.bin", name);
const published = ["core", "losses", "onnx"] as const;
const work = mkdtempSync(join(tmpdir(), "focalgrad-packages-"));
const tarballs: Record<string, string> = {};

function run(command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, { cwd, encoding: "utf8", stdio: "pipe" });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${stdout}\n${stderr}`);
  }
}

/** The first TypeScript block under the README's "A first example" heading. */
function readmeFirstExample(): string {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## A first example"));
  const block = section.match(/```ts\n([\s\S]*?)```/);
  if (block === null) throw new Error("README.md: no ts block under 'A first example'");
  return block[1];
}

beforeAll(() => {
  // A fresh build, so that the tarballs hold no stale file of an earlier one.
  for (const name of published) {
    const dir = join(root, "packages", name);
    rmSync(join(dir, "dist"), { recursive: true, force: true });
    run(bin("tsc"), ["-p", "tsconfig.build.json"], dir);
  }
  const packed = join(work, "tarballs");
  mkdirSync(packed);
  for (const name of published) {
    run(
      "npx",
      ["-y", "pnpm@12.4.2", "pack", "--pack-destination", packed],
      join(root, "packages", name),
    );
    tarballs[name] = join(packed, `focalgrad-${name}-0.1.0.tgz`);
  }
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

function tarballFiles(name: string): string[] {
  return run("tar", ["tzf", tarballs[name]], work)
    .split("\n")
    .filter((line) => line !== "");
}

function packedManifest(name: string): Record<string, unknown> {
  return JSON.parse(run("tar", ["xzf", tarballs[name], "-O", "package/package.json"], work));
}

describe.each(published)("the @focalgrad/%s tarball", (name) => {
  it("holds its README, its LICENSE (MIT, as the manifest says) and the sources its maps cite", () => {
    const files = tarballFiles(name);
    expect(files).toContain("package/README.md");
    expect(files).toContain("package/LICENSE");
    expect(files).toContain("package/src/index.ts");
    expect(files.some((f) => f.includes("/test/") || f.endsWith(".tsbuildinfo"))).toBe(false);
    const license = run("tar", ["xzf", tarballs[name], "-O", "package/LICENSE"], work);
    expect(license.startsWith("MIT License")).toBe(true);
    expect(license).toBe(readFileSync(join(root, "LICENSE"), "utf8"));
    const manifest = packedManifest(name);
    expect(manifest.license).toBe("MIT");
    const map = JSON.parse(
      run("tar", ["xzf", tarballs[name], "-O", "package/dist/index.js.map"], work),
    );
    for (const source of map.sources as string[]) {
      expect(files).toContain(`package/${join("dist", source)}`);
    }
  });

  it("has complete metadata and no workspace-only export condition", () => {
    const manifest = packedManifest(name);
    for (const field of [
      "description",
      "keywords",
      "homepage",
      "repository",
      "author",
      "engines",
    ]) {
      expect(manifest[field], field).toBeDefined();
    }
    // Only core's methods.ts has an effect on import (it installs the op methods on Tensor).
    const sideEffects = name === "core" ? ["./dist/methods.js", "./src/methods.ts"] : false;
    expect(manifest.sideEffects).toEqual(sideEffects);
    expect(JSON.stringify(manifest.exports)).not.toContain("source");
    expect(JSON.stringify(manifest)).not.toContain("workspace:");
  });

  it("ships no declaration tagged @internal", () => {
    const declarations = run(
      "tar",
      ["xzf", tarballs[name], "-O", "--wildcards", "package/dist/*.d.ts"],
      work,
    );
    expect(declarations).not.toContain("@internal");
  });

  it("passes publint (strict) and arethetypeswrong (ESM: node16 and bundler)", () => {
    expect(run(bin("publint"), ["run", tarballs[name], "--strict"], work)).toContain("All good");
    // esm-only: the packages ship no CommonJS, so node10 and require() resolutions are not goals.
    run(bin("attw"), [tarballs[name], "--profile", "esm-only", "--format", "json"], work);
  });
});

describe("an empty npm project that installs the tarballs", () => {
  const project = join(work, "consumer");

  beforeAll(() => {
    mkdirSync(project);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    // Offline: both packages come from their tarballs, and fast-check (an optional peer) is absent.
    run(
      "npm",
      ["install", "--offline", "--no-audit", "--no-fund", tarballs.core, tarballs.losses],
      project,
    );
    // @focalgrad/onnx needs protobufjs from the registry (npm's cache when it has it); its
    // optional peer onnxruntime-node stays out.
    run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarballs.onnx], project);
  }, 120_000);

  it("type-checks and runs the README's first example", () => {
    const example = readmeFirstExample();
    writeFileSync(
      join(project, "example.ts"),
      `${example}\nconsole.log(JSON.stringify({ loss: loss.item(), grad: yPred.grad!.toArray(), chained: yPred.mul(2).sum().item() }));\n`,
    );
    const compilerOptions = { strict: true, target: "ES2022", types: [], skipLibCheck: false };
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { ...compilerOptions, module: "node16", moduleResolution: "node16" },
        files: ["example.ts"],
      }),
    );
    writeFileSync(
      join(project, "tsconfig.bundler.json"),
      JSON.stringify({
        compilerOptions: {
          ...compilerOptions,
          module: "preserve",
          moduleResolution: "bundler",
          noEmit: true,
        },
        files: ["example.ts"],
      }),
    );
    run(bin("tsc"), ["-p", "tsconfig.bundler.json"], project);
    run(bin("tsc"), ["-p", "tsconfig.json"], project);
    const printed = JSON.parse(run("node", ["example.js"], project));
    // As in readme.test.ts: 0.0080252 + 0.0066943 (object anchor) + 0.0007902 + 0.0612991
    // (background anchor) over max(1, 1 object anchor); the ignored anchor's row is exactly 0.
    expect(printed.loss).toBeCloseTo(0.0768088, 6);
    expect(printed.grad[0][2]).toEqual([0, 0]);
    // The op methods are installed and typed for consumers too: 2 · (0.7 + 0.2 + … + 0.5) = 4.8.
    expect(printed.chained).toBeCloseTo(4.8, 5);
  });

  it("imports @focalgrad/core/testing and checks a gradient without fast-check", () => {
    writeFileSync(
      join(project, "gradcheck.mjs"),
      [
        'import { tensor, sum, mul } from "@focalgrad/core";',
        'import { gradcheck, floatTensor } from "@focalgrad/core/testing";',
        'const x = tensor([0.5, -1.5], { dtype: "float64" });',
        "const report = gradcheck((t) => sum(mul(t, t)), [x]);",
        "let arbitrary = 'no error';",
        "try { floatTensor([2]); } catch (error) { arbitrary = error.message; }",
        "console.log(JSON.stringify({ ok: report.ok, arbitrary }));",
      ].join("\n"),
    );
    const printed = JSON.parse(run("node", ["gradcheck.mjs"], project));
    expect(printed.ok).toBe(true);
    expect(printed.arbitrary).toMatch(/^floatTensor: .*need fast-check, which is not installed/);
  });

  it("exports a model to ONNX, and without the optional peer onnxruntime-node says so", () => {
    writeFileSync(
      join(project, "onnx.mjs"),
      [
        'import { nn, uniform } from "@focalgrad/core";',
        'import { decodeModel, toOnnx } from "@focalgrad/onnx";',
        'import { onnxRuntimeAvailable, runOnnx } from "@focalgrad/onnx/runtime";',
        "const net = new nn.Sequential(new nn.Conv2d(3, 4, 3, { seed: 0 }), new nn.ReLU());",
        "const x = uniform([1, 3, 8, 8], { seed: 1 });",
        "const { bytes, nodes } = toOnnx(net, [x]);",
        "const graph = decodeModel(bytes).graph;",
        "let message = 'no error';",
        "try { await runOnnx(bytes, [x]); } catch (error) { message = error.message; }",
        "console.log(JSON.stringify({ nodes, outputs: graph.output.map((o) => o.name), available: await onnxRuntimeAvailable(), message }));",
      ].join("\n"),
    );
    const printed = JSON.parse(run("node", ["onnx.mjs"], project));
    expect(printed.nodes).toEqual({ Conv: 1, Relu: 1 });
    expect(printed.outputs).toEqual(["output"]);
    expect(printed.available).toBe(false);
    expect(printed.message).toMatch(/^runOnnx: cannot load onnxruntime-node, an optional peer/);
  });

  it("does not resolve the workspace's source condition", () => {
    // A consumer running with --conditions=source gets the built files, not a missing src/.
    const printed = run(
      "node",
      [
        "--conditions=source",
        "--input-type=module",
        "-e",
        'import("@focalgrad/losses").then((m) => console.log(typeof m.focal))',
      ],
      project,
    );
    expect(printed.trim()).toBe("function");
  });
});
