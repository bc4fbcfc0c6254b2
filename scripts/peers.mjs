#!/usr/bin/env node
// Installs peers, the heavy dependencies kept out of the repository's own install (peers/README.md),
// and links them into the packages that import them.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const peersDir = join(root, "peers");
/** Written into a peer's node_modules after its install: the hash of the files it was installed from. */
const stampName = ".focalgrad-peer-stamp";

const available = () =>
  readdirSync(peersDir, { withFileTypes: true })
    .filter(
      (entry) => entry.isDirectory() && existsSync(join(peersDir, entry.name, "package.json")),
    )
    .map((entry) => entry.name)
    .sort();

const usage = () => `Usage: pnpm peers:install <name>...

Installs peers/<name> (its own lockfile, frozen) unless it is installed from the same files already,
and links each of its dependencies into the node_modules of the packages its package.json lists
under "focalgrad": { "linkInto": [...] }. pnpm bench and pnpm typecheck run it for "bench".

Peers: ${available().join(", ")}

Options:
  -h, --help   this text`;

/** A user error: one line and exit code 2, as every command of the repository. */
class UsageError extends Error {}

/** The hash of the files that decide what a peer's install holds. */
function stampOf(dir) {
  const hash = createHash("sha256");
  for (const file of ["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml"]) {
    const path = join(dir, file);
    hash.update(`${file}\0${existsSync(path) ? readFileSync(path) : ""}\0`);
  }
  return hash.digest("hex");
}

/** Points `link` at `target` (relatively); an existing link is replaced, anything else is an error. */
function linkTo(link, target) {
  const wanted = relative(dirname(link), target);
  let existing = null;
  try {
    existing = lstatSync(link);
  } catch {
    // Nothing there yet.
  }
  if (existing !== null) {
    if (!existing.isSymbolicLink()) {
      throw new Error(
        `${relative(root, link)} exists and is not a link; remove it to let peers link ${relative(root, target)} there`,
      );
    }
    if (readlinkSync(link) === wanted) return;
    unlinkSync(link);
  }
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(wanted, link, "dir");
}

/** Installs peer `name` if its install is missing or stale, then links its dependencies. */
function ensure(name) {
  const dir = join(peersDir, name);
  if (!existsSync(join(dir, "package.json"))) {
    throw new UsageError(`unknown peer "${name}" (expected one of ${available().join(", ")})`);
  }
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const stampPath = join(dir, "node_modules", stampName);
  const stamp = stampOf(dir);
  if (!existsSync(stampPath) || readFileSync(stampPath, "utf8") !== stamp) {
    console.error(`peers: installing peers/${name} (${manifest.description ?? "no description"})`);
    execFileSync("npx", ["-y", "pnpm@12.4.2", "install", "--frozen-lockfile"], {
      cwd: dir,
      stdio: ["ignore", "inherit", "inherit"],
    });
    writeFileSync(stampPath, stamp);
  }
  for (const into of manifest.focalgrad?.linkInto ?? []) {
    for (const dependency of Object.keys(manifest.dependencies ?? {})) {
      linkTo(join(root, into, "node_modules", dependency), join(dir, "node_modules", dependency));
    }
  }
}

function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv.filter((a) => a !== "--"),
    options: { help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(usage());
    return;
  }
  if (positionals.length === 0)
    throw new UsageError("name the peers to install (--help lists them)");
  for (const name of positionals) ensure(name);
}

try {
  main(process.argv.slice(2));
} catch (error) {
  const known = error instanceof UsageError || error.code?.startsWith("ERR_PARSE_ARGS");
  console.error(`peers: ${known ? error.message : error.stack}`);
  process.exitCode = known ? 2 : 1;
}
