/** The child process of the Table 1 sweep: runs the one job its parent sends, on the threads it is given, and sends the result back. */

import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setNumThreads } from "@focalgrad/core";
import type { RunResult } from "./cache.js";
import { type Job, type Runner, runJob } from "./sweep.js";

/** What the parent sends: the job, where its run directory goes, and the threads it may use. */
interface Request {
  job: Job;
  runsDir: string;
  threads: number;
}

/** What the child answers: the result, or the error that stopped the run. */
type Reply = { result: RunResult } | { error: string };

/**
 * Runs each job in a child process of its own (this file), with `threads` threads for its dense
 * kernels: runs are independent, a run's progress output stays out of the sweep's, and results are
 * the same bits for any thread count. The child's stderr is kept for the message if it fails.
 *
 * @example
 * const runner = forkedRunner("runs/table1/runs", 1);
 * const result = await runner(job);
 */
export function forkedRunner(runsDir: string, threads: number): Runner {
  const script = fileURLToPath(import.meta.url);
  return (job) =>
    new Promise((resolve, reject) => {
      const child = fork(script, [], { stdio: ["ignore", "ignore", "pipe", "ipc"] });
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000);
      });
      let reply: Reply | null = null;
      child.on("message", (message: Reply) => {
        reply = message;
      });
      child.on("error", reject);
      child.on("exit", (code, signal) => {
        const answer = reply as Reply | null;
        if (answer !== null && "result" in answer) resolve(answer.result);
        else if (answer !== null)
          reject(
            new Error(`table1: run ${job.config.id} seed ${job.seed} failed: ${answer.error}`),
          );
        else {
          reject(
            new Error(
              `table1: the process of run ${job.config.id} seed ${job.seed} ended (${signal ?? `exit code ${code}`}) without a result\n${stderr}`,
            ),
          );
        }
      });
      child.send({ job, runsDir, threads } satisfies Request);
    });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send !== undefined) {
  process.once("message", async ({ job, runsDir, threads }: Request) => {
    let reply: Reply;
    try {
      setNumThreads(threads);
      reply = { result: await runJob(job, runsDir) };
    } catch (e) {
      reply = { error: (e as Error).stack ?? String(e) };
    }
    process.send?.(reply, () => process.exit(0));
  });
}
