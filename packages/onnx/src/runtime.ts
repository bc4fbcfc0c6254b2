/** `runOnnx`: runs an ONNX model in ONNX Runtime (the optional peer `onnxruntime-node`) on focalgrad tensors, to check an export or to deploy it. */

import { type DType, type Tensor, tensor } from "@focalgrad/core";

/** The part of onnxruntime-node's API that `runOnnx` uses, typed here so that this package builds without it. */
interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Runtime {
  InferenceSession: { create(model: string | Uint8Array): Promise<OrtSession> };
  Tensor: new (type: string, data: ArrayLike<number>, dims: readonly number[]) => OrtTensor;
}

/** The peer's module name, held in a variable so that TypeScript does not look for its types. */
const RUNTIME_MODULE = "onnxruntime-node";

let runtime: Promise<Runtime> | null = null;

/** onnxruntime-node, loaded on first use: it is large, and only this entry point needs it. */
function loadRuntime(): Promise<Runtime> {
  runtime ??= (import(RUNTIME_MODULE) as Promise<Runtime>).catch((e: Error) => {
    runtime = null;
    throw new Error(
      `runOnnx: cannot load onnxruntime-node, an optional peer of @focalgrad/onnx (install it beside it: npm install onnxruntime-node@^1.30.0; in the focalgrad repository: npx -y pnpm@12.4.2 peers:install onnx): ${e.message}`,
    );
  });
  return runtime;
}

/**
 * Whether onnxruntime-node can be loaded, so that `runOnnx` can run (it is an optional peer).
 *
 * @example
 * if (await onnxRuntimeAvailable()) await runOnnx(bytes, [x]);
 */
export async function onnxRuntimeAvailable(): Promise<boolean> {
  try {
    await loadRuntime();
    return true;
  } catch {
    return false;
  }
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
  const session = await ort.InferenceSession.create(model);
  try {
    const given: [string, Tensor][] = Array.isArray(inputs)
      ? (inputs as readonly Tensor[]).map((t, i) => [session.inputNames[i], t])
      : Object.entries(inputs as Record<string, Tensor>);
    if (given.length !== session.inputNames.length || given.some(([name]) => name === undefined)) {
      throw new Error(
        `runOnnx: the model takes ${session.inputNames.length} inputs (${session.inputNames.join(", ")}), got ${given.length}`,
      );
    }
    const feeds: Record<string, OrtTensor> = {};
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
