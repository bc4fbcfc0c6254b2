import { describe, expect, it } from "vitest";
import {
  bceWithLogits,
  Generator,
  mean,
  nn,
  noGrad,
  optim,
  reshape,
  Tensor,
} from "../src/index.js";

/**
 * Filled squares (label 0) and filled discs (label 1) of random size and position on a 16 × 16
 * canvas with a little noise: the synthetic task a small CNN must learn.
 */
function shapes(count: number, gen: Generator): { images: Tensor; labels: Tensor } {
  const side = 16;
  const images = new Float32Array(count * side * side);
  const labels = new Float32Array(count);
  for (let n = 0; n < count; n++) {
    const disc = gen.uniform() < 0.5;
    labels[n] = disc ? 1 : 0;
    const r = 3 + gen.uniform() * 3;
    const cy = r + gen.uniform() * (side - 1 - 2 * r);
    const cx = r + gen.uniform() * (side - 1 - 2 * r);
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++) {
        const inside = disc
          ? (y - cy) ** 2 + (x - cx) ** 2 <= r * r
          : Math.abs(y - cy) <= r * 0.85 && Math.abs(x - cx) <= r * 0.85;
        images[(n * side + y) * side + x] = (inside ? 1 : 0) + gen.normal(0, 0.05);
      }
  }
  return {
    images: new Tensor(images, [count, 1, side, side], "float32"),
    labels: new Tensor(labels, [count], "float32"),
  };
}

function model(gen: Generator): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(1, 8, 3, { padding: "same", generator: gen }),
    new nn.ReLU(),
    new nn.MaxPool2d({ kernelSize: 2 }),
    new nn.Conv2d(8, 16, 3, { padding: "same", generator: gen }),
    new nn.ReLU(),
    new nn.MaxPool2d({ kernelSize: 2 }),
    new nn.Flatten(),
    new nn.Linear(16 * 4 * 4, 1, { generator: gen }),
  );
}

function batchOf(data: { images: Tensor; labels: Tensor }, start: number, size: number) {
  const pixels = 16 * 16;
  return {
    images: new Tensor(
      data.images.data.slice(start * pixels, (start + size) * pixels),
      [size, 1, 16, 16],
      "float32",
    ),
    labels: new Tensor(data.labels.data.slice(start, start + size), [size], "float32"),
  };
}

/** Trains from `seed` and returns the model, its trained weights and its test accuracy. */
function trainRun(seed: number) {
  const gen = new Generator(seed);
  const net = model(gen);
  const train = shapes(512, gen);
  const test = shapes(256, gen);
  const steps = 80;
  const batch = 32;
  const opt = new optim.Adam(net.parameters(), { lr: 0.02 });
  const scheduler = new optim.LearningRateScheduler(
    opt,
    optim.linearWarmup(optim.cosineDecay({ lr: 0.02, totalSteps: steps }), { warmupSteps: 10 }),
  );
  for (let step = 0; step < steps; step++) {
    const { images, labels } = batchOf(train, (step * batch) % 512, batch);
    opt.zeroGrad();
    const logits = reshape(net.forward(images), [batch]);
    mean(bceWithLogits(logits, labels)).backward();
    optim.clipGradNorm(net.parameters(), 5);
    opt.step();
    scheduler.step();
  }
  const logits = noGrad(() => net.eval().forward(test.images));
  let correct = 0;
  for (let i = 0; i < test.labels.size; i++) {
    if (logits.data[i] > 0 === (test.labels.data[i] === 1)) correct++;
  }
  return { net, accuracy: correct / test.labels.size };
}

describe("training a small CNN", () => {
  it("tells discs from squares with >= 95% accuracy, the same weights on every run", () => {
    const first = trainRun(2024);
    expect(first.accuracy).toBeGreaterThanOrEqual(0.95);
    const second = trainRun(2024);
    expect(second.accuracy).toBe(first.accuracy);
    const a = first.net.stateDict();
    for (const [name, t] of second.net.stateDict()) {
      const u = a.get(name)!;
      // Bit for bit: compare the raw bytes, not rounded values.
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(u.data.buffer)), name).toBe(true);
    }
  }, 60_000);
});
