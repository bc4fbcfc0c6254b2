/** `runOnnx`: runs an ONNX model in ONNX Runtime (the optional peer `onnxruntime-node`) on focalgrad tensors, to check an export or to deploy it. */

import { type DType, type Tensor, tensor } from "@focalgrad/core";

type Runtime = typeof import("onnxruntime-node");

let runtime: Promise<Runtime> | null = null;

/** onnxruntime-node, loaded on first use: it is large, and only this entry point needs it. */
function loadRuntime(): Promise<Runtime> {
  runtime ??= import("onnxruntime-node").catch((e: Error) => {
    runtime = null;
    throw new Error(
      `runOnnx: cannot load onnxruntime-node (install it beside @focalgrad/onnx: npm install onnxruntime-node): ${e.message}`,
    );
  });
  return runtime;
}

const FROM_ORT: Record<string, DType> = {
  float32: "float32",
  float64: "float64",
  int32: "int32",
  bool: "bool",
};

/**
 * Runs the ONNX model at `model` (a path, or the bytes `toOnnx` returns) in ONNX Runtime on the
 * CPU, with one tensor per graph input (by name, or in the graph's order), and returns every
 * graph output as a focalgrad tensor (float32, float64, int32 or bool; an int64 output, such as
 * NonMaxSuppression's indices, comes back as int32 when every value fits).
 *
 * @example
 * const { bytes } = toOnnx(net, [x]);
 * const { output } = await runOnnx(bytes, [x]);
 * output.shape; // net.forward(x).shape
 */
export async function runOnnx(
  model: string | Uint8Array,
  inputs: readonly Tensor[] | Readonly<Record<string, Tensor>>,
): Promise<Record<string, Tensor>> {
  const ort = await loadRuntime();
  const session =
    typeof model === "string"
      ? await ort.InferenceSession.create(model)
      : await ort.InferenceSession.create(model);
  try {
    const given: [string, Tensor][] = Array.isArray(inputs)
      ? (inputs as readonly Tensor[]).map((t, i) => [session.inputNames[i], t])
      : Object.entries(inputs as Record<string, Tensor>);
    if (given.length !== session.inputNames.length || given.some(([name]) => name === undefined)) {
      throw new Error(
        `runOnnx: the model takes ${session.inputNames.length} inputs (${session.inputNames.join(", ")}), got ${given.length}`,
      );
    }
    const feeds: Record<string, InstanceType<Runtime["Tensor"]>> = {};
    for (const [name, t] of given) {
      if (!session.inputNames.includes(name)) {
        throw new Error(
          `runOnnx: the model has no input "${name}" (its inputs: ${session.inputNames.join(", ")})`,
        );
      }
      const data = t.read();
      const values = t.dtype === "bool" ? Uint8Array.from(data).map((v) => (v ? 1 : 0)) : data;
      feeds[name] = new ort.Tensor(t.dtype, values.slice(), [...t.shape]);
    }
    const results = await session.run(feeds);
    const out: Record<string, Tensor> = {};
    for (const name of session.outputNames) {
      const value = results[name];
      const shape = value.dims.map(Number);
      if (value.type === "int64") {
        const wide = value.data as BigInt64Array;
        const narrow = Int32Array.from(wide, (v) => {
          if (v > 2147483647n || v < -2147483648n) {
            throw new Error(`runOnnx: output "${name}" holds ${v}, which does not fit int32`);
          }
          return Number(v);
        });
        out[name] = tensor(narrow, { shape, dtype: "int32" });
        continue;
      }
      const dtype = FROM_ORT[value.type];
      if (dtype === undefined) {
        throw new Error(
          `runOnnx: output "${name}" is ${value.type}, which focalgrad has no dtype for`,
        );
      }
      const data = value.data as Float32Array | Float64Array | Int32Array | Uint8Array;
      out[name] = tensor(dtype === "bool" ? Uint8Array.from(data) : data, { shape, dtype });
    }
    return out;
  } finally {
    await session.release();
  }
}
