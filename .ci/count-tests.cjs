// Prints "tests: N passed, M failed" from vitest's JSON reports (the runner's own counts), and exits
// non-zero when anything failed or nothing ran. A test file that fails to load runs no test: it
// counts as one failure, not as nothing. With several reports (a second run of some files, e.g.
// with the bench peers installed), a test counts once: failed if it failed in any run, else passed
// if it passed in any.
const fs = require("node:fs");

const paths = process.argv.length > 2 ? process.argv.slice(2) : [".vitest-results.json"];
const outcomes = new Map();
let unloaded = 0;
for (const path of paths) {
  const report = JSON.parse(fs.readFileSync(path, "utf8"));
  for (const file of report.testResults) {
    const results = file.assertionResults ?? [];
    // Tests of one name in one file (a loop's) stay apart: the k-th of them is one test.
    const seen = new Map();
    for (const test of results) {
      const k = (seen.get(test.fullName) ?? 0) + 1;
      seen.set(test.fullName, k);
      const key = `${file.name}\0${test.fullName}\0${k}`;
      if (test.status === "failed") outcomes.set(key, "failed");
      else if (test.status === "passed" && outcomes.get(key) !== "failed")
        outcomes.set(key, "passed");
    }
    if (file.status === "failed" && !results.some((t) => t.status === "failed")) unloaded += 1;
  }
}
const passed = [...outcomes.values()].filter((s) => s === "passed").length;
const failed = [...outcomes.values()].filter((s) => s === "failed").length + unloaded;
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
