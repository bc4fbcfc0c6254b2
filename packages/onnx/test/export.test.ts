import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  add,
  argmax,
  avgPool2d,
  cast,
  clip,
  concat,
  conv2d,
  cumsum,
  div,
  exp,
  gather,
  gelu,
  greater,
  interpolate,
  logSigmoid,
  matmul,
  maxPool2d,
  mean,
  mul,
  nn,
  pad,
  permute,
  relu,
  reshape,
  sigmoid,
  slice,
  softplus,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
  tanh,
  tensor,
  transpose,
  uniform,
  upsampleNearest2d,
  where,
  zeros,
} from "@focalgrad/core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeModel, exportOnnx, toOnnx } from "../src/index.js";
import { onnxRuntimeAvailable, runOnnx } from "../src/runtime.js";

/**
 * The tests that run a model in ONNX Runtime: onnxruntime-node is the peer `onnx`
 * (`npx -y pnpm@12.4.2 peers:install onnx`, which CI runs), not part of the repository's own install.
 */
const ortAvailable = await onnxRuntimeAvailable();
const withOrt = it.skipIf(!ortAvailable);

/** The largest |a − b| over two tensors of one shape. */
function maxDifference(a: Tensor, b: Tensor): number {
  expect(b.shape).toEqual(a.shape);
  const x = a.read();
  const y = b.read();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(Number(x[i]) - Number(y[i])));
  return worst;
}

/** Exports `f` on `inputs`, runs it in ONNX Runtime and returns the worst difference per output. */
async function agreement(
  f: (...xs: Tensor[]) => Tensor | Record<string, Tensor>,
  inputs: Tensor[],
  opset = 13,
): Promise<number> {
  const { bytes } = toOnnx(f, inputs, { opset });
  const ours = f(...inputs);
  const theirs = await runOnnx(bytes, inputs);
  const named = "shape" in ours ? { output: ours as Tensor } : (ours as Record<string, Tensor>);
  let worst = 0;
  for (const [name, t] of Object.entries(named))
    worst = Math.max(worst, maxDifference(t, theirs[name]));
  return worst;
}

const x4 = () => uniform([2, 4, 9, 10], { low: -1, high: 1, seed: 1 });

describe("single ops agree with ONNX Runtime within 1e-5", () => {
  const w = uniform([6, 4, 3, 3], { low: -0.5, high: 0.5, seed: 2 });
  const b = uniform([6], { seed: 3 });
  const cases: [string, (x: Tensor) => Tensor][] = [
    [
      "conv2d same, stride 2 (zeros after only)",
      (x) => conv2d(x, w, { stride: 2, padding: "same", bias: b }),
    ],
    ["conv2d valid, dilation 2", (x) => conv2d(x, w, { dilation: 2 })],
    [
      "conv2d groups 2, padding [1, 0]",
      (x) => conv2d(x, uniform([4, 2, 3, 2], { seed: 4 }), { groups: 2, padding: [1, 0] }),
    ],
    ["maxPool2d 3/2/1", (x) => maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 })],
    ["maxPool2d 2 (a floor-rounded odd height)", (x) => maxPool2d(x, { kernelSize: 2 })],
    [
      "avgPool2d 3/2/1 (padding counted)",
      (x) => avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
    ],
    ["upsampleNearest2d ×2", (x) => upsampleNearest2d(x, { scaleFactor: 2 })],
    ["interpolate bilinear", (x) => interpolate(x, { size: [5, 13], mode: "bilinear" })],
    ["relu, sigmoid, tanh", (x) => tanh(sigmoid(relu(x)))],
    ["exp, sqrt, square, div", (x) => div(sqrt(add(square(x), 1)), add(exp(x), 2))],
    ["logSigmoid, softplus", (x) => sub(logSigmoid(x), softplus(x))],
    ["clip", (x) => clip(x, -0.25, 0.5)],
    ["gelu, exact (erf) and tanh", (x) => add(gelu(x), gelu(x, { approximate: "tanh" }))],
    [
      "sum and mean with and without keepdims",
      (x) => add(sum(x, { axis: [1, 3], keepdims: true }), mean(x, { axis: 2, keepdims: true })),
    ],
    ["a full sum", (x) => sum(x)],
    ["permute, transpose, reshape", (x) => reshape(transpose(permute(x, [0, 2, 3, 1])), [2, -1])],
    [
      "slice and pad",
      (x) =>
        pad(
          slice(x, [1, 0, 2, 3], [1, 3, -1, 4]),
          [
            [0, 0],
            [1, 0],
            [0, 2],
            [3, 1],
          ],
          -2,
        ),
    ],
    ["concat", (x) => concat([x, mul(x, 2), slice(x, [0, 0, 0, 0], [2, 1, 9, 10])], 1)],
    [
      "matmul with transposes",
      (x) => matmul(reshape(x, [2, 4, 90]), transpose(reshape(x, [2, 4, 90]))),
    ],
    ["gather", (x) => gather(x, tensor([3, 0, 3], { dtype: "int32" }), 2)],
    [
      "where on a parameter mask",
      (x) => where(greater(tensor([1, 0, 1, 0, 1, 0, 1, 0, 1, 0]), 0.5), x, mul(x, -1)),
    ],
    ["cast to float64", (x) => mul(cast(x, "float64"), tensor([0.5], { dtype: "float64" }))],
  ];
  for (const [name, f] of cases) {
    withOrt(name, async () => {
      expect(await agreement(f, [x4()])).toBeLessThan(1e-5);
    });
  }

  withOrt("a float64 graph, and several inputs", async () => {
    const a = uniform([3, 4], { seed: 5, dtype: "float64" });
    const c = uniform([4, 2], { seed: 6, dtype: "float64" });
    expect(await agreement((p, q) => sigmoid(matmul(p, q)), [a, c])).toBeLessThan(1e-12);
  });

  withOrt("every opset from 13 to 21 runs", async () => {
    for (let opset = 13; opset <= 21; opset++) {
      const f = (x: Tensor) =>
        pad(sum(conv2d(x, w, { padding: 1 }), { axis: [3] }), [
          [0, 0],
          [1, 1],
          [0, 0],
        ]);
      expect(await agreement(f, [x4()], opset)).toBeLessThan(1e-5);
    }
  });
});

describe("conv2d and pooling geometry, as a property", () => {
  withOrt("random stride, padding, dilation, groups and kernel sizes export exactly", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          size: fc.integer({ min: 5, max: 12 }),
          kernel: fc.integer({ min: 1, max: 4 }),
          stride: fc.integer({ min: 1, max: 3 }),
          dilation: fc.integer({ min: 1, max: 2 }),
          groups: fc.constantFrom(1, 2),
          padding: fc.oneof(fc.constant("same" as const), fc.integer({ min: 0, max: 2 })),
          seed: fc.integer({ min: 0, max: 1000 }),
        }),
        async ({ size, kernel, stride, dilation, groups, padding, seed }) => {
          fc.pre(dilation * (kernel - 1) + 1 <= size);
          const x = uniform([1, 4, size, size + 1], { low: -1, high: 1, seed });
          const w = uniform([4, 4 / groups, kernel, kernel], { low: -1, high: 1, seed: seed + 1 });
          const f = (input: Tensor) => {
            const y = conv2d(input, w, { stride, padding, dilation, groups });
            const window = Math.min(kernel + 1, y.shape[2], y.shape[3]);
            return maxPool2d(y, { kernelSize: window, stride, padding: Math.floor(window / 2) });
          };
          expect(await agreement(f, [x])).toBeLessThan(1e-5);
        },
      ),
      { numRuns: 25, seed: 15 },
    );
  });
});

describe("the issue's Conv-BatchNorm-ReLU-Conv net", () => {
  withOrt(
    "exports as Conv, normalisation arithmetic on the running statistics, Relu, Conv, and agrees",
    async () => {
      const net = new nn.Sequential(
        new nn.Conv2d(3, 8, 3, { padding: 1, seed: 0 }),
        new nn.BatchNorm2d(8),
        new nn.ReLU(),
        new nn.Conv2d(8, 4, 3, { padding: 1, seed: 1 }),
      );
      // Give the running statistics values of their own (a few training batches).
      for (let i = 0; i < 3; i++)
        net.forward(uniform([4, 3, 8, 8], { low: -1, high: 2, seed: 10 + i }));
      expect(net.training).toBe(true);
      const x = uniform([2, 3, 8, 8], { seed: 20 });
      const { bytes, nodes } = toOnnx(net, [x]);
      // The export traced in eval mode and put the network back in training mode.
      expect(net.training).toBe(true);
      expect(nodes.Conv).toBe(2);
      expect(nodes.Relu).toBe(1);
      net.eval();
      const theirs = await runOnnx(bytes, { input: x });
      expect(maxDifference(net.forward(x), theirs.output)).toBeLessThan(1e-5);
      // The weights are initialisers named as in the state dict.
      const model = decodeModel(bytes);
      const names = model.graph.initializer.map((t) => t.name);
      expect(names).toEqual(
        expect.arrayContaining(["0.weight", "0.bias", "3.weight", "3.bias", "1.weight", "1.bias"]),
      );
      expect(model.opset_import.map((o) => [o.domain ?? "", o.version])).toEqual([["", 13]]);
      expect(model.graph.input.map((i) => i.name)).toEqual(["input"]);
    },
  );
});

describe("runOnnx without ONNX Runtime", () => {
  it.skipIf(ortAvailable)("says how to install the peer", async () => {
    const x = tensor([1, 2]);
    const { bytes } = toOnnx((t) => relu(t), [x]);
    await expect(runOnnx(bytes, [x])).rejects.toThrow(
      /runOnnx: cannot load onnxruntime-node, an optional peer of @focalgrad\/onnx \(install it beside it: npm install onnxruntime-node@\^1\.30\.0; in the focalgrad repository: npx -y pnpm@12\.4\.2 peers:install onnx\)/,
    );
  });
});

describe("exportOnnx writes the file; errors name what is wrong", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "onnx-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  withOrt("writes the bytes that toOnnx returns, with named outputs", async () => {
    const path = join(dir, "net.onnx");
    const f = (x: Tensor) => ({ double: mul(x, 2), same: x });
    const x = uniform([3], { seed: 0 });
    const summary = await exportOnnx(f, [x], path, { inputNames: ["images"] });
    expect(Buffer.compare(await readFile(path), summary.bytes)).toBe(0);
    const out = await runOnnx(path, { images: x });
    expect(Array.from(out.double.read())).toEqual(Array.from(x.read(), (v) => Math.fround(v * 2)));
    expect(Array.from(out.same.read())).toEqual(Array.from(x.read()));
  });

  it("an op without an ONNX form is an error naming it", () => {
    expect(() => toOnnx((x: Tensor) => cumsum(x, 0), [zeros([4])])).toThrow(
      /exportOnnx: cannot export op "cumsum" \(it made a tensor of shape \[4\]\); ONNX forms exist for .*conv2d/,
    );
  });

  it("a constant computed from the inputs by an unrecorded op is an error, not a frozen value", () => {
    // greater(x, 0) is not recorded (no gradient): exported as a constant it would be the mask of
    // the example input for every input. The second trace, on the reversed input, shows it.
    const f = (x: Tensor) => where(greater(x, 0), x, 0);
    expect(() => toOnnx(f, [tensor([-1, 2, 3])])).toThrow(/depends on the input values/);
    // argmax is 2 for [1, 2, 5] and 0 for the reversed [5, 2, 1].
    const g = (x: Tensor) => mul(x, cast(argmax(x), "float32"));
    expect(() => toOnnx(g, [tensor([1, 2, 5])])).toThrow(/depends on the input values/);
  });

  it("bad arguments", () => {
    const f = (x: Tensor) => mul(x, 2);
    expect(() => toOnnx(f, [])).toThrow(/exampleInputs must be a non-empty array/);
    expect(() => toOnnx(f, [tensor([1], { dtype: "int32" })])).toThrow(
      /exampleInputs\[0\] is int32/,
    );
    expect(() => toOnnx(f, [zeros([1])], { opset: 12 })).toThrow(
      /opset must be an integer from 13 to 21, got 12/,
    );
    expect(() => toOnnx(f, [zeros([1])], { opsets: 13 } as never)).toThrow(
      /unknown option "opsets"/,
    );
    expect(() => toOnnx(f, [zeros([1])], { inputNames: ["a", "b"] })).toThrow(
      /inputNames must give 1 distinct names/,
    );
    expect(() => toOnnx(f, [zeros([1])], { outputNames: ["a", "b"] })).toThrow(
      /outputNames has 2 names but the model returns 1/,
    );
    expect(() => toOnnx(f, [zeros([1])], { inputNames: ["x"], outputNames: ["x"] })).toThrow(
      /"x" names two graph values/,
    );
    expect(() => toOnnx(42 as never, [zeros([1])])).toThrow(
      /expected a module or a function of tensors/,
    );
  });
});
