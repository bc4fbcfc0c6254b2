// Prints "tests: N passed, M failed" from vitest's JSON report (the runner's own counts), and exits
// non-zero when anything failed or nothing ran. A test file that fails to load runs no test: it
// counts as one failure, not as nothing.
const fs = require("node:fs");

const report = JSON.parse(fs.readFileSync(process.argv[2] ?? ".vitest-results.json", "utf8"));
let passed = 0;
let failed = 0;
for (const file of report.testResults) {
  const results = file.assertionResults ?? [];
  passed += results.filter((t) => t.status === "passed").length;
  const failures = results.filter((t) => t.status === "failed").length;
  failed += failures;
  if (file.status === "failed" && failures === 0) failed += 1;
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
