// Counts the documented and undocumented exports in typedoc's JSON output: every class, interface,
// type alias, function, variable, property, method, accessor and constructor (inherited members
// where they are declared; implicit constructors not at all). Usage: node coverage.mjs <api.json>
import { readFileSync } from "node:fs";

const kinds = new Map([
  [8, "enum"],
  [32, "variable"],
  [64, "function"],
  [128, "class"],
  [256, "interface"],
  [512, "constructor"],
  [1024, "property"],
  [2048, "method"],
  [262144, "accessor"],
  [2097152, "type alias"],
]);

function documented(reflection) {
  const parts = [
    reflection,
    ...(reflection.signatures ?? []),
    reflection.getSignature,
    reflection.setSignature,
  ];
  return parts.some((part) => part?.comment?.summary?.some((piece) => piece.text.trim() !== ""));
}

const counts = new Map();
const missing = [];
function walk(reflection, path) {
  const kind = kinds.get(reflection.kind);
  // An implicit constructor (none written in the source) has no source position to document.
  const implicit = kind === "constructor" && !reflection.signatures?.some((sig) => sig.sources);
  if (kind !== undefined && reflection.inheritedFrom === undefined && !implicit) {
    const entry = counts.get(kind) ?? { with: 0, without: 0 };
    if (documented(reflection)) entry.with++;
    else {
      entry.without++;
      missing.push(`${path} (${kind})`);
    }
    counts.set(kind, entry);
  }
  for (const child of reflection.children ?? []) walk(child, `${path}.${child.name}`);
  for (const signature of reflection.signatures ?? []) {
    const literal = signature.type?.declaration;
    if (literal !== undefined) walk(literal, path);
  }
}

const project = JSON.parse(readFileSync(process.argv[2], "utf8"));
for (const module of project.children ?? []) walk(module, module.name);
let total = { with: 0, without: 0 };
for (const [kind, entry] of [...counts].sort()) {
  console.log(
    `${kind.padEnd(12)} ${String(entry.with).padStart(4)} documented, ${entry.without} not`,
  );
  total = { with: total.with + entry.with, without: total.without + entry.without };
}
console.log(
  `${"all".padEnd(12)} ${String(total.with).padStart(4)} documented, ${total.without} not`,
);
for (const name of missing) console.log(`  undocumented: ${name}`);
