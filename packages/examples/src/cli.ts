/** Command-line arguments of the demo and the benchmark. */

/**
 * The program's arguments without a leading `--`: pnpm passes it through to the script, so that
 * `pnpm bench -- --quick` and `pnpm bench --quick` mean the same.
 *
 * @example
 * cliArguments(["--", "--quick"]); // ["--quick"]
 */
export function cliArguments(argv: readonly string[] = process.argv.slice(2)): string[] {
  return argv[0] === "--" ? argv.slice(1) : [...argv];
}
