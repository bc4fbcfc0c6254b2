/** The command-line conventions of every command (`demo:loss`, `bench`, `detect`): parsing, `--help`, errors and exit codes. */

import { type ParseArgsConfig, parseArgs } from "node:util";

/** Bad input from the command line: printed as one line, `<command>: <message>`, exit code 2. */
export class UsageError extends Error {}

/**
 * The program's arguments without the `--` that pnpm passes through to the script wherever the
 * user typed it, so that `pnpm bench -- --quick` and `pnpm bench --quick` mean the same.
 *
 * @example
 * cliArguments(["train", "--name", "demo", "--", "--help"]); // ["train", "--name", "demo", "--help"]
 */
export function cliArguments(argv: readonly string[] = process.argv.slice(2)): string[] {
  return argv.filter((a) => a !== "--");
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The `util.parseArgs` configuration of a command whose options are `O`, with -h / --help. */
type CommandConfig<O extends Options> = {
  args: string[];
  options: O & { help: { type: "boolean"; short: string } };
  strict: true;
  allowPositionals: boolean;
};

/** What `parseCommandLine` gives when help is not asked for: `values` and `positionals`. */
export type ParsedCommandLine<O extends Options> = ReturnType<typeof parseArgs<CommandConfig<O>>>;

/**
 * `argv` parsed strictly by node's `util.parseArgs` against `options`, with `-h` / `--help` added:
 * null when help is asked for (print the usage then), and a `UsageError` for an unknown option, a
 * missing value or a positional argument the command does not take.
 *
 * @example
 * const parsed = parseCommandLine(["--steps", "10"], { steps: { type: "string" } });
 * if (parsed === null) console.log(usage);
 * else numberOption("steps", parsed.values.steps, { integer: true, min: 1 }); // 10
 */
export function parseCommandLine<const O extends Options>(
  argv: readonly string[],
  options: O,
  { positionals = false }: { positionals?: boolean } = {},
): ParsedCommandLine<O> | null {
  try {
    const parsed = parseArgs<CommandConfig<O>>({
      args: cliArguments(argv),
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: positionals,
    });
    return (parsed.values as { help?: boolean }).help === true ? null : parsed;
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      // Node's advice about `--` before positionals does not apply to these commands.
      const option = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`unknown option ${option} (--help lists the options)`);
    }
    // Node writes some of these on two lines (the ambiguous "--gamma -1"): one line here.
    if (code?.startsWith("ERR_PARSE_ARGS") === true) {
      throw new UsageError(message.replace(/\s*\n\s*/g, " "));
    }
    throw error;
  }
}

/** What a number option accepts: an integer or any finite number, within bounds. */
export interface NumberRule {
  /** Only integers. */
  integer?: boolean;
  /** The smallest value accepted. */
  min?: number;
  /** A bound the value must be strictly above. */
  above?: number;
  /** The largest value accepted. */
  max?: number;
}

function describeRule({ integer = false, min, above, max }: NumberRule): string {
  const kind = integer ? "an integer" : "a number";
  if (min !== undefined && max !== undefined) return `${kind} in [${min}, ${max}]`;
  if (above !== undefined) return `${kind} > ${above}${max === undefined ? "" : ` and <= ${max}`}`;
  if (min !== undefined) return `${kind} >= ${min}`;
  if (max !== undefined) return `${kind} <= ${max}`;
  return kind;
}

/**
 * The value of the number option `--name` (undefined when it was not given), or a `UsageError`
 * naming the flag, what it accepts and what was given.
 *
 * @example
 * numberOption("alpha", "0.25", { min: 0, max: 1 }); // 0.25
 * numberOption("alpha", "2", { min: 0, max: 1 });    // throws '--alpha: expected a number in [0, 1], got "2"'
 */
export function numberOption(
  name: string,
  text: string | undefined,
  rule: NumberRule = {},
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  const { integer = false, min, above, max } = rule;
  if (
    text.trim() === "" ||
    !Number.isFinite(value) ||
    (integer && !Number.isInteger(value)) ||
    (min !== undefined && value < min) ||
    (above !== undefined && value <= above) ||
    (max !== undefined && value > max)
  ) {
    throw new UsageError(`--${name}: expected ${describeRule(rule)}, got "${text}"`);
  }
  return value;
}

/**
 * The value of `--name` if it is one of `allowed` (undefined when it was not given), else a
 * `UsageError` listing them.
 *
 * @example
 * choiceOption("norm", "batch", ["group", "batch"]); // "batch"
 */
export function choiceOption<T extends string>(
  name: string,
  text: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (text === undefined) return undefined;
  if (!allowed.includes(text as T)) {
    throw new UsageError(`--${name}: expected one of ${allowed.join(", ")}, got "${text}"`);
  }
  return text as T;
}

/**
 * Runs a command's `main` the same way for every command: a `UsageError` is printed as one line,
 * `<command>: <message>`, with exit code 2; any other error keeps its stack (a bug report needs
 * it), with exit code 1.
 *
 * @example
 * await runCommand("demo:loss", () => main(process.argv.slice(2)));
 */
export async function runCommand(command: string, main: () => Promise<void> | void): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${command}: ${error.message}`);
      process.exitCode = 2;
    } else {
      console.error(error);
      process.exitCode = 1;
    }
  }
}
