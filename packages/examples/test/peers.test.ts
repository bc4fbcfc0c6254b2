/**
 * scripts/peers.mjs on a throwaway repository: installs a peer, links its dependencies into the
 * packages that use it, skips an install that is current, and fails in one line on bad input.
 */

import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// The first run installs with pnpm (no download: the one dependency is a local directory).
vi.setConfig({ testTimeout: 60_000 });

const script = fileURLToPath(new URL("../../../scripts/peers.mjs", import.meta.url));
const repo = mkdtempSync(join(tmpdir(), "focalgrad-peers-"));
const peer = join(repo, "peers/fake");

function peers(...args: string[]) {
  const { status, stdout, stderr } = spawnSync("node", [join(repo, "scripts/peers.mjs"), ...args], {
    encoding: "utf8",
  });
  return { status, stdout, stderr };
}

beforeAll(() => {
  mkdirSync(join(repo, "scripts"));
  copyFileSync(script, join(repo, "scripts/peers.mjs"));
  mkdirSync(join(peer, "vendored/dep"), { recursive: true });
  writeFileSync(join(peer, "vendored/dep/package.json"), '{ "name": "dep", "version": "1.0.0" }');
  writeFileSync(
    join(peer, "package.json"),
    JSON.stringify({
      name: "fake-peer",
      private: true,
      description: "a peer for the test",
      dependencies: { dep: "link:./vendored/dep" },
      focalgrad: { linkInto: ["packages/user"] },
    }),
  );
  writeFileSync(join(peer, "pnpm-workspace.yaml"), "packages: []\n");
  // The lockfile that a real peer commits.
  execFileSync("npx", ["-y", "pnpm@12.4.2", "install"], { cwd: peer, stdio: "pipe" });
  rmSync(join(peer, "node_modules"), { recursive: true });
}, 120_000);

afterAll(() => rmSync(repo, { recursive: true, force: true }));

describe("peers.mjs", () => {
  it("installs a peer and links its dependencies into the packages that use it", () => {
    const first = peers("fake");
    expect(first.stderr).toContain("peers: installing peers/fake (a peer for the test)");
    expect(first.status).toBe(0);
    const link = join(repo, "packages/user/node_modules/dep");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe("../../../peers/fake/node_modules/dep");
    expect(realpathSync(link)).toBe(realpathSync(join(peer, "vendored/dep")));
    // Installed from the same files: no second install, and the link is left as it is.
    const second = peers("--", "fake");
    expect(second.status).toBe(0);
    expect(second.stderr).toBe("");
    // A link that went (the repository's node_modules wiped) is made again, without an install.
    rmSync(join(repo, "packages/user/node_modules"), { recursive: true });
    expect(peers("fake").stderr).toBe("");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it("refuses to replace a directory with a link", () => {
    const taken = join(repo, "packages/other");
    writeFileSync(
      join(peer, "package.json"),
      JSON.stringify({
        name: "fake-peer",
        private: true,
        dependencies: { dep: "link:./vendored/dep" },
        focalgrad: { linkInto: ["packages/other"] },
      }),
    );
    mkdirSync(join(taken, "node_modules/dep"), { recursive: true });
    const { status, stderr } = peers("fake");
    expect(status).toBe(1);
    expect(stderr).toContain(
      "packages/other/node_modules/dep exists and is not a link; remove it to let peers link peers/fake/node_modules/dep there",
    );
  });

  it("prints its usage for -h and --help, and bad input in one line with exit code 2", () => {
    for (const flag of ["-h", "--help"]) {
      const help = peers(flag);
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(/^Usage: pnpm peers:install <name>\.\.\./);
      expect(help.stdout).toContain("Peers: fake");
    }
    expect(peers("nope")).toMatchObject({
      status: 2,
      stderr: 'peers: unknown peer "nope" (expected one of fake)\n',
    });
    expect(peers()).toMatchObject({
      status: 2,
      stderr: "peers: name the peers to install (--help lists them)\n",
    });
    const unknown = peers("--frob");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(unknown.stderr).toMatch(/^peers: Unknown option '--frob'/);
  });
});
