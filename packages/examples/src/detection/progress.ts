/** Training progress on the terminal: a cli-progress bar (step, losses, images/s, ETA), or plain log lines in quiet mode. */

import cliProgress from "cli-progress";

/** Where `train` reports each step and its messages. */
export interface Progress {
  /** Steps completed so far, and the last step's losses. */
  update(step: number, classificationLoss: number, boxLoss: number): void;
  /** A message on a line of its own. */
  log(message: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Steps of the whole run. */
  total: number;
  /** Steps already done (a resumed run). */
  start: number;
  batchSize: number;
  /** Log a line every `logEvery` steps (default a tenth of the run) instead of drawing a bar. */
  quiet: boolean;
  logEvery?: number;
  /** Default process.stderr. */
  stream?: NodeJS.WriteStream;
}

/**
 * A progress reporter for a training run: a bar with step, classification and box loss
 * (averaged over the last 20 steps), images per second and the time left, redrawn at most 10
 * times a second; or, with `quiet`, one line per `logEvery` steps, for logs.
 *
 * @example
 * const progress = progressReporter({ total: 700, start: 0, batchSize: 8, quiet: true });
 * progress.update(1, 0.9, 0.4);
 * progress.stop();
 */
export function progressReporter(options: ProgressOptions): Progress {
  const { total, start, batchSize, quiet } = options;
  const stream = options.stream ?? process.stderr;
  const logEvery = options.logEvery ?? Math.max(1, Math.round(total / 10));
  const began = performance.now();
  const recent: [number, number][] = [];
  const rates = (step: number) => {
    const seconds = (performance.now() - began) / 1000;
    const imagesPerSecond = ((step - start) * batchSize) / Math.max(seconds, 1e-9);
    const eta = ((total - step) * batchSize) / Math.max(imagesPerSecond, 1e-9);
    return { imagesPerSecond, eta };
  };
  const averages = () => {
    const n = Math.max(1, recent.length);
    return [recent.reduce((a, r) => a + r[0], 0) / n, recent.reduce((a, r) => a + r[1], 0) / n];
  };
  if (quiet) {
    return {
      update(step, cls, box) {
        recent.push([cls, box]);
        if (recent.length > 20) recent.shift();
        if (step % logEvery !== 0 && step !== total) return;
        const [c, b] = averages();
        const { imagesPerSecond, eta } = rates(step);
        stream.write(
          `step ${step}/${total}  cls ${c.toFixed(4)}  box ${b.toFixed(4)}  ${imagesPerSecond.toFixed(1)} img/s  ETA ${Math.round(eta)} s\n`,
        );
      },
      log(message) {
        stream.write(`${message}\n`);
      },
      stop() {},
    };
  }
  const bars = new cliProgress.MultiBar(
    {
      format: "step {value}/{total} {bar} cls {cls} box {box} | {ips} img/s | ETA {eta_formatted}",
      stream,
      fps: 10,
      etaBuffer: 50,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bar = bars.create(total, start, { cls: "-", box: "-", ips: "-" });
  return {
    update(step, cls, box) {
      recent.push([cls, box]);
      if (recent.length > 20) recent.shift();
      const [c, b] = averages();
      bar.update(step, {
        cls: c.toFixed(4),
        box: b.toFixed(4),
        ips: rates(step).imagesPerSecond.toFixed(1),
      });
    },
    log(message) {
      bars.log(`${message}\n`);
    },
    stop() {
      bars.stop();
    },
  };
}
