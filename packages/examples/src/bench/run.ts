/** The benchmark's runner: prepares every implementation of a case, cross-checks them, then times each. */

import { type Check, crossCheck } from "./checks.js";

/**
 * The implementations the benchmark knows. `focalgrad` runs on the default backend (wasm where
 * available) with every core, `focalgrad-1t` on the same backend with one thread, `focalgrad-js`
 * on the JavaScript backend; `fused` is the hand-fused focal loop on this thread and `fused-2t` the
 * same loop on two worker threads; `pytorch-1t` / `pytorch-2t` are PyTorch on 1 and 2 threads.
 */
export type ImplName =
  | "focalgrad"
  | "focalgrad-1t"
  | "focalgrad-js"
  | "fused"
  | "fused-2t"
  | "tfjs-cpu"
  | "tfjs-wasm"
  | "pytorch-1t"
  | "pytorch-2t";
export const IMPL_NAMES: readonly ImplName[] = [
  "focalgrad",
  "focalgrad-1t",
  "focalgrad-js",
  "fused",
  "fused-2t",
  "tfjs-cpu",
  "tfjs-wasm",
  "pytorch-1t",
  "pytorch-2t",
];

/** An implementation with its inputs in place, ready to run one case. */
export interface Prepared {
  /** Makes this implementation's backend the active one (tfjs has one global backend). */
  activate?(): Promise<void>;
  /** One timed iteration, synchronous, its results dropped. */
  run(): void;
  /**
   * One untimed iteration that calls `probe` wherever the most memory is live (end of the forward
   * pass, before results are released) and returns the numbers to cross-check.
   */
  check(probe: () => void): Check[] | Promise<Check[]>;
  /** Bytes the implementation's own allocator held at its peak during the last `check`, above its start. */
  trackedPeakBytes?(): number;
  /**
   * Times the implementation measured itself (another process: PyTorch), used instead of timing
   * `run`: wall and CPU milliseconds per iteration.
   */
  recorded?: { wallMs: number[]; cpuMs: number[] };
  dispose(): void;
}

/** An implementation of a case; `prepare` returns a reason instead when it cannot run here. */
export interface Implementation {
  name: ImplName;
  prepare(): Promise<Prepared | string>;
}

/** One workload and pass, run by several implementations on the same inputs. */
export interface Case {
  workload: string;
  /** Forward, forward + backward, or a whole training step (forward, backward, optimiser). */
  pass: "fwd" | "fwd+bwd" | "step";
  /** Floating-point operations of one iteration, for GFLOP/s. */
  flops?: number;
  /** Bytes of `yPred`, to state peak memory as a multiple of it. */
  predictionBytes?: number;
  /** The implementation all others are cross-checked against, and the unit of the ratios if `ratioToReference`. */
  reference: ImplName;
  ratioToReference: boolean;
  implementations: Implementation[];
}

export interface RunOptions {
  /** Untimed iterations right before timing (the cross-check's own run comes on top). */
  warmup: number;
  /**
   * …and at least this many seconds of them (default 0), so that worker threads have started and
   * the engine has optimised every kernel before a fast row is timed. Ignored when `warmup` is 0.
   */
  warmupSeconds?: number;
  /** Timed iterations, at most. */
  iterations: number;
  /** Stop timing a row after this many seconds once it has one iteration; skip warm-ups when one run takes longer. */
  maxSeconds: number;
  log?: (line: string) => void;
}

/** One row of the result table. */
export interface Row {
  workload: string;
  impl: ImplName;
  pass: Case["pass"];
  /** Why the row did not run, if it did not. */
  skipped?: string;
  /** The error an implementation threw while running, if it did: the benchmark then exits non-zero. */
  failed?: string;
  timesMs: number[];
  /** Whether the only timing is the cross-check's run (see `runCase`). */
  timedByCheck?: boolean;
  /** CPU time of the process (user + system, all threads) per timed iteration. */
  cpuMs: number[];
  medianMs: number;
  medianCpuMs: number;
  minMs: number;
  maxMs: number;
  /** Median over the reference's median, when the case has ratios. */
  ratio?: number;
  /** The same for CPU time, steadier than wall time on a loaded machine. */
  cpuRatio?: number;
  gflops?: number;
  /** Peak additional memory (heap + external, or the implementation's own count if higher). */
  peakBytes: number;
  /** Peak additional memory over the bytes of `yPred`. */
  peakOverPrediction?: number;
}

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * A full collection, twice: V8 frees the backing stores of dead typed arrays concurrently after a
 * GC, and only the next GC waits for that, so one call can leave them in `external` for a while.
 */
function collect(): void {
  gc?.();
  gc?.();
}

/** Whether node runs with --expose-gc, which the memory column needs to count live memory only. */
export const canCollectGarbage = typeof gc === "function";

function liveBytes(): number {
  const m = process.memoryUsage();
  // `external` already includes `arrayBuffers` (typed arrays, wasm memories): do not add it twice.
  return m.heapUsed + m.external;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.split("\n")[0]}` : String(error);
}

function median(sorted: readonly number[]): number {
  const n = sorted.length;
  return n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

function elapsedMs(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

/** Warm-ups, then timed iterations back to back, until `iterations` or the time budget is spent. */
async function time(impl: Prepared, row: Row, warmups: number, options: RunOptions): Promise<void> {
  if (impl.recorded !== undefined) {
    row.timesMs.push(...impl.recorded.wallMs);
    row.cpuMs.push(...impl.recorded.cpuMs);
    return;
  }
  await impl.activate?.();
  const warmupEnd = performance.now() + 1000 * (options.warmupSeconds ?? 0);
  for (let i = 0; i < warmups || (warmups > 0 && performance.now() < warmupEnd); i++) impl.run();
  collect();
  const budgetMs = options.maxSeconds * 1000;
  let spent = 0;
  while (
    row.timesMs.length < options.iterations &&
    (row.timesMs.length === 0 || spent < budgetMs)
  ) {
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    impl.run();
    const ms = elapsedMs(start);
    const used = process.cpuUsage(cpu);
    row.timesMs.push(ms);
    row.cpuMs.push((used.user + used.system) / 1000);
    spent += ms;
  }
}

function summarise(row: Row, c: Case): void {
  const sorted = [...row.timesMs].sort((a, b) => a - b);
  row.medianMs = median(sorted);
  row.minMs = sorted[0];
  row.maxMs = sorted[sorted.length - 1];
  row.medianCpuMs = median([...row.cpuMs].sort((a, b) => a - b));
  if (c.flops !== undefined) row.gflops = c.flops / (row.medianMs * 1e6);
}

/**
 * Runs one case, one implementation after another, the reference first: each runs once untimed
 * (measuring peak memory and collecting its checks), must agree with the reference (else this
 * throws, and nothing of the case is reported), then is warmed up and timed until it has its
 * iterations or has spent its time.
 *
 * @example
 * const rows = await runCase(matmulCase(256, "fwd", ["focalgrad"]), { warmup: 2, iterations: 10, maxSeconds: 5 });
 */
export async function runCase(c: Case, options: RunOptions): Promise<Row[]> {
  const log = options.log ?? (() => {});
  const order = [...c.implementations].sort(
    (a, b) => Number(b.name === c.reference) - Number(a.name === c.reference),
  );
  if (order[0]?.name !== c.reference) {
    throw new Error(
      `runCase: ${c.workload} has no implementation '${c.reference}' to check against`,
    );
  }
  const rows: Row[] = [];
  // The first implementation that runs is the one the others are checked against. Each is checked,
  // then timed, before the next one runs at all: so tfjs's gigabytes of allocation (and the 2 GiB
  // its wasm backend keeps for good) come after the fused loop and focalgrad are timed, not between.
  let reference: { name: ImplName; checks: Check[] } | null = null;
  for (const implementation of order) {
    const row: Row = {
      workload: c.workload,
      impl: implementation.name,
      pass: c.pass,
      timesMs: [],
      cpuMs: [],
      medianMs: Number.NaN,
      medianCpuMs: Number.NaN,
      minMs: Number.NaN,
      maxMs: Number.NaN,
      peakBytes: Number.NaN,
    };
    rows.push(row);
    const impl = await implementation.prepare();
    if (typeof impl === "string") {
      if (implementation.name === c.reference && c.ratioToReference) {
        throw new Error(
          `runCase: the reference ${c.reference} of ${c.workload} cannot run: ${impl}`,
        );
      }
      row.skipped = impl;
      log(`  ${c.workload} ${c.pass} ${implementation.name}: skipped (${impl})`);
      continue;
    }
    await impl.activate?.();
    collect();
    const baseline = liveBytes();
    let peak = 0;
    const probe = () => {
      collect();
      peak = Math.max(peak, liveBytes() - baseline);
    };
    const checkCpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    let checks: Check[];
    try {
      checks = await impl.check(probe);
    } catch (error) {
      // An implementation that cannot run the case (out of memory, a missing kernel) is a result
      // too; one that runs and disagrees is not, and stops everything below.
      if (implementation.name === c.reference && c.ratioToReference) throw error;
      row.failed = describeError(error);
      log(`  ${c.workload} ${c.pass} ${implementation.name}: FAILED (${row.failed})`);
      impl.dispose();
      continue;
    }
    const checkMs = elapsedMs(start);
    const checkCpuUsed = process.cpuUsage(checkCpu);
    probe();
    row.peakBytes = Math.max(peak, impl.trackedPeakBytes?.() ?? 0);
    if (c.predictionBytes !== undefined) row.peakOverPrediction = row.peakBytes / c.predictionBytes;
    if (reference === null) reference = { name: implementation.name, checks };
    else crossCheck(`${c.workload} ${c.pass}`, reference, { name: implementation.name, checks });
    log(
      `  ${c.workload} ${c.pass} ${implementation.name}: checked in ${(checkMs / 1000).toFixed(1)} s (${checks
        .map((k) => `${k.label} ${k.value.toPrecision(7)}`)
        .join(", ")})`,
    );
    // A row whose one run takes far beyond its time budget (tfjs-cpu's conv2d backward, minutes)
    // is timed by its cross-check run alone, rather than run once more.
    if (checkMs > 2 * options.maxSeconds * 1000) {
      row.timesMs.push(checkMs);
      row.cpuMs.push((checkCpuUsed.user + checkCpuUsed.system) / 1000);
      row.timedByCheck = true;
    } else await time(impl, row, checkMs > options.maxSeconds * 1000 ? 0 : options.warmup, options);
    impl.dispose();
    summarise(row, c);
    log(
      `  ${c.workload} ${c.pass} ${row.impl}: median ${row.medianMs.toFixed(2)} ms (CPU ${row.medianCpuMs.toFixed(2)} ms) over ${row.timesMs.length}`,
    );
  }
  if (c.ratioToReference) {
    const unit = rows.find((r) => r.impl === c.reference);
    if (unit !== undefined) {
      for (const r of rows) {
        if (r.skipped !== undefined || r.failed !== undefined) continue;
        r.ratio = r.medianMs / unit.medianMs;
        r.cpuRatio = r.medianCpuMs / unit.medianCpuMs;
      }
    }
  }
  return rows;
}
