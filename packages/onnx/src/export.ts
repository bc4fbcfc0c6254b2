/** `toOnnx` and `exportOnnx`: a traced forward pass of a focalgrad model, read back from the engine's recording, written as an ONNX graph with the weights as initialisers. */

import { endianness } from "node:os";
import { type DType, nn, recordedOp, type Tensor, tensor } from "@focalgrad/core";
import { writeFileAtomic } from "@focalgrad/core/checkpoint";
import {
  type Attribute,
  AttributeType,
  DataType,
  encodeModel,
  type NodeMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from "./proto.js";

/** What can be exported: a module, or a function of tensors (a module's forward with extras). */
export type Exportable = nn.AnyModule | ((...inputs: Tensor[]) => ExportedOutputs);

/** A traced function may return one tensor, several, or named tensors (named graph outputs). */
export type ExportedOutputs = Tensor | readonly Tensor[] | Readonly<Record<string, Tensor>>;

/** Options of `toOnnx` and `exportOnnx`. */
export interface OnnxExportOptions {
  /** The ONNX operator set, from 13 to 21. Default 13. */
  opset?: number;
  /** Names of the graph inputs, one per example input. Default "input" (one) or "input0", "input1", … */
  inputNames?: readonly string[];
  /**
   * Names of the graph outputs. Default: the keys of a returned object, else "output" (one) or
   * "output0", "output1", ….
   */
  outputNames?: readonly string[];
  /** Stored in the model's doc_string. */
  docString?: string;
}

/** What an export wrote, for a report. */
export interface OnnxExportSummary {
  /** The model's protobuf bytes. */
  bytes: Uint8Array;
  /** How many nodes of each ONNX op type the graph has. */
  nodes: Record<string, number>;
  /** How many initialisers (weights and constants) the graph has. */
  initializers: number;
  /** How many elements they hold in all. */
  weights: number;
  /** The graph's inputs: names, element types, shapes. */
  inputs: ValueInfoMessage[];
  /** The graph's outputs. */
  outputs: ValueInfoMessage[];
}

/** The opsets this exporter writes, and the IR version of the ONNX release that introduced each. */
const IR_VERSION: Record<number, number> = {
  13: 7,
  14: 7,
  15: 8,
  16: 8,
  17: 8,
  18: 8,
  19: 9,
  20: 9,
  21: 10,
};

const DATA_TYPES: Record<DType, number> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  int32: DataType.INT32,
  bool: DataType.BOOL,
};

/** A recorded op turned into ONNX nodes: `emit` adds them, reading input names through `input`. */
interface Context {
  readonly out: Tensor;
  readonly inputs: readonly Tensor[];
  readonly attributes: Readonly<Record<string, number | boolean | readonly number[]>>;
  readonly opset: number;
  /** The name of input `i`, cast to `dtype` first when given and different. */
  input(i: number, dtype?: DType): string;
  /** A new int64 constant (shapes, axes, pads), returning its name. */
  int64(values: readonly number[]): string;
  /** A new scalar constant of `dtype`. */
  scalar(value: number, dtype: DType): string;
  /** Adds a node whose output is the op's result (or, with `output`, an intermediate value). */
  node(opType: string, inputs: string[], attributes?: Attribute[], output?: string): string;
  /** A fresh name for an intermediate value. */
  fresh(hint: string): string;
}

const ints = (name: string, values: readonly number[]): Attribute => ({
  name,
  type: AttributeType.INTS,
  ints: [...values],
});
const int = (name: string, value: number): Attribute => ({
  name,
  type: AttributeType.INT,
  i: value,
});

function attribute<T>(c: Context, key: string): T {
  const value = c.attributes[key];
  if (value === undefined) {
    throw new Error(
      `exportOnnx: the recorded op that made a tensor of shape [${c.out.shape.join(", ")}] has no "${key}" attribute (a focalgrad older than this exporter?)`,
    );
  }
  return value as T;
}

/** A window op's kernel, strides and pads ([top, left, bottom, right], ONNX's order too). */
function windowOf(c: Context): Attribute[] {
  return [
    ints("kernel_shape", attribute(c, "kernelSize")),
    ints("strides", attribute(c, "stride")),
    ints("pads", attribute(c, "padding")),
  ];
}

/** Ops that map to one ONNX op on inputs of the output's dtype (NumPy broadcasting, as ONNX's). */
const ELEMENTWISE: Record<string, string> = {
  add: "Add",
  sub: "Sub",
  mul: "Mul",
  div: "Div",
  maximum: "Max",
  minimum: "Min",
  pow: "Pow",
  neg: "Neg",
  exp: "Exp",
  log: "Log",
  sqrt: "Sqrt",
  abs: "Abs",
  sign: "Sign",
  relu: "Relu",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  erf: "Erf",
  softplus: "Softplus",
  floor: "Floor",
  ceil: "Ceil",
  round: "Round",
  identity: "Identity",
};

/** The converters of the other ops, by the name the op records itself under. */
const CONVERTERS: Record<string, (c: Context) => void> = {
  square: (c) => {
    const x = c.input(0, c.out.dtype);
    c.node("Mul", [x, x]);
  },
  logSigmoid: (c) => {
    // log σ(x) = −softplus(−x), exact in the same way as the kernel's formula.
    const negated = c.node("Neg", [c.input(0)], [], c.fresh("neg"));
    const soft = c.node("Softplus", [negated], [], c.fresh("softplus"));
    c.node("Neg", [soft]);
  },
  cast: (c) => {
    c.node("Cast", [c.input(0)], [int("to", DATA_TYPES[c.out.dtype])]);
  },
  clip: (c) => {
    const dtype = c.out.dtype;
    const lo = c.scalar(attribute<number>(c, "lo"), dtype);
    const hi = c.scalar(attribute<number>(c, "hi"), dtype);
    c.node("Clip", [c.input(0), lo, hi]);
  },
  where: (c) => {
    c.node("Where", [c.input(0), c.input(1, c.out.dtype), c.input(2, c.out.dtype)]);
  },
  conv2d: (c) => {
    const inputs = [c.input(0), c.input(1)];
    if (c.inputs.length > 2) inputs.push(c.input(2));
    c.node("Conv", inputs, [
      ...windowOf(c),
      ints("dilations", attribute(c, "dilation")),
      int("group", attribute(c, "groups")),
    ]);
  },
  maxPool2d: (c) => {
    c.node("MaxPool", [c.input(0)], windowOf(c));
  },
  avgPool2d: (c) => {
    // Zero padding counts towards the mean, as focalgrad's (and PyTorch's default) does.
    c.node("AveragePool", [c.input(0)], [...windowOf(c), int("count_include_pad", 1)]);
  },
  matmul: (c) => {
    const operand = (i: number, transposed: boolean) => {
      const name = c.input(i, c.out.dtype);
      if (!transposed) return name;
      const rank = c.inputs[i].rank;
      const perm = [...Array(rank).keys()];
      [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
      return c.node("Transpose", [name], [ints("perm", perm)], c.fresh("transposed"));
    };
    const a = operand(0, attribute(c, "transposeA"));
    const b = operand(1, attribute(c, "transposeB"));
    c.node("MatMul", [a, b]);
  },
  reshape: (c) => {
    c.node("Reshape", [c.input(0), c.int64(c.out.shape)]);
  },
  broadcastTo: (c) => {
    c.node("Expand", [c.input(0), c.int64(c.out.shape)]);
  },
  permute: (c) => {
    c.node("Transpose", [c.input(0)], [ints("perm", attribute(c, "perm"))]);
  },
  concat: (c) => {
    c.node(
      "Concat",
      c.inputs.map((_, i) => c.input(i)),
      [int("axis", attribute(c, "axis"))],
    );
  },
  slice: (c) => {
    const begin = attribute<readonly number[]>(c, "begin");
    const end = begin.map((b, i) => b + c.out.shape[i]);
    const axes = begin.map((_, i) => i);
    c.node("Slice", [c.input(0), c.int64(begin), c.int64(end), c.int64(axes)]);
  },
  pad: (c) => {
    // focalgrad lists [before, after] per axis; ONNX every axis's before, then every after.
    const flat = attribute<readonly number[]>(c, "padding");
    const befores = flat.filter((_, i) => i % 2 === 0);
    const afters = flat.filter((_, i) => i % 2 === 1);
    const value = c.scalar(attribute<number>(c, "value"), c.out.dtype);
    c.node(
      "Pad",
      [c.input(0), c.int64([...befores, ...afters]), value],
      [{ name: "mode", type: AttributeType.STRING, s: new TextEncoder().encode("constant") }],
    );
  },
  sum: (c) => {
    const axes = attribute<readonly number[]>(c, "axes");
    const keepdims = attribute<boolean>(c, "keepdims");
    // A bool sum counts into int32, as the op does.
    const x = c.input(0, c.out.dtype);
    if (axes.length === 0) {
      c.node("Identity", [x]);
      return;
    }
    c.node("ReduceSum", [x, c.int64(axes)], [int("keepdims", keepdims ? 1 : 0)]);
  },
  gather: (c) => {
    c.node("Gather", [c.input(0), c.input(1)], [int("axis", attribute(c, "axis"))]);
  },
};

/** The ops `toOnnx` can export, by the name they record themselves under. */
export const EXPORTABLE_OPS: readonly string[] = [
  ...Object.keys(ELEMENTWISE),
  ...Object.keys(CONVERTERS),
].sort();

function bytesOf(t: Tensor): Uint8Array {
  const data = t.read();
  // ONNX stores raw data little-endian; the typed arrays are in the machine's order.
  if (endianness() !== "LE") {
    throw new Error("exportOnnx: writing raw tensor data needs a little-endian machine");
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}

function valueInfo(name: string, t: Tensor): ValueInfoMessage {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DATA_TYPES[t.dtype],
        shape: { dim: t.shape.map((d) => ({ dim_value: d })) },
      },
    },
  };
}

/** One traced forward pass: the graph inputs, the outputs and every tensor between them, inputs first. */
interface Trace {
  inputs: Tensor[];
  outputs: [string, Tensor][];
  /** Reachable tensors in topological order. */
  order: Tensor[];
}

function outputsOf(
  result: ExportedOutputs,
  names: readonly string[] | undefined,
): [string, Tensor][] {
  let named: [string, Tensor][];
  if (Array.isArray(result)) {
    const list = result as readonly Tensor[];
    named = list.map((t, i) => [list.length === 1 ? "output" : `output${i}`, t]);
  } else if (result !== null && typeof result === "object" && !("shape" in result)) {
    named = Object.entries(result as Record<string, Tensor>);
  } else {
    named = [["output", result as Tensor]];
  }
  for (const [name, t] of named) {
    if (t === null || typeof t !== "object" || !("shape" in t) || !("dtype" in t)) {
      throw new Error(`exportOnnx: output "${name}" is not a tensor`);
    }
  }
  if (names !== undefined) {
    if (names.length !== named.length) {
      throw new Error(
        `exportOnnx: outputNames has ${names.length} names but the model returns ${named.length} outputs (${named.map(([n]) => n).join(", ")})`,
      );
    }
    named = named.map(([, t], i) => [names[i], t]);
  }
  return named;
}

function trace(
  model: Exportable,
  examples: readonly Tensor[],
  outputNames: readonly string[] | undefined,
): Trace {
  const inputs = examples.map((x) =>
    tensor(x.read(), { shape: x.shape, dtype: x.dtype, requiresGrad: true }),
  );
  const forward =
    model instanceof nn.Module
      ? (...xs: Tensor[]) => (model as nn.Module<Tensor[], ExportedOutputs>).forward(...xs)
      : (model as (...xs: Tensor[]) => ExportedOutputs);
  const outputs = outputsOf(forward(...inputs), outputNames);
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Depth first with an explicit stack: a deep network must not overflow the call stack.
  for (const [, root] of outputs) {
    if (seen.has(root)) continue;
    const stack: [Tensor, number][] = [[root, 0]];
    seen.add(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const ins = recordedOp(top[0])?.inputs ?? [];
      if (top[1] < ins.length) {
        const next = ins[top[1]++];
        if (!seen.has(next)) {
          seen.add(next);
          stack.push([next, 0]);
        }
      } else {
        order.push(top[0]);
        stack.pop();
      }
    }
  }
  return { inputs, outputs, order };
}

/** The element at each position reversed: the same values, at other places. */
function reversed(x: Tensor): Tensor {
  return tensor(x.read().slice().reverse(), { shape: x.shape, dtype: x.dtype });
}

function checkInputs(model: unknown, examples: unknown): readonly Tensor[] {
  if (!(model instanceof nn.Module) && typeof model !== "function") {
    throw new Error(`exportOnnx: expected a module or a function of tensors, got ${typeof model}`);
  }
  if (!Array.isArray(examples) || examples.length === 0) {
    throw new Error(
      "exportOnnx: exampleInputs must be a non-empty array of tensors, one per input",
    );
  }
  examples.forEach((x, i) => {
    if (x === null || typeof x !== "object" || !("dtype" in x) || !("shape" in x)) {
      throw new Error(`exportOnnx: exampleInputs[${i}] is not a tensor`);
    }
    if (x.dtype !== "float32" && x.dtype !== "float64") {
      // A traced pass follows only what requires gradients: an integer input would be folded
      // into constants without a trace of where it went.
      throw new Error(
        `exportOnnx: exampleInputs[${i}] is ${x.dtype}; only float32 and float64 inputs can be traced`,
      );
    }
  });
  return examples as readonly Tensor[];
}

/**
 * The ONNX model of `model`'s forward pass on `exampleInputs`, as protobuf bytes. The pass is traced
 * through the engine's own recording (in eval mode for a module, restored afterwards): every
 * recorded op becomes ONNX nodes, parameters become initialisers named as in `stateDict()`, other
 * constants initialisers of their own. The graph has the example inputs' shapes. It is traced a
 * second time on the example inputs' values in reverse order: a constant that differs between the
 * two passes was computed from the inputs by an op that is not recorded (a comparison, an argmax),
 * and the export fails rather than freeze it; so does an op without an ONNX form, naming it.
 *
 * @example
 * const net = new nn.Sequential(new nn.Conv2d(3, 8, 3), new nn.ReLU());
 * const { bytes, nodes } = toOnnx(net, [zeros([1, 3, 32, 32])]);
 * nodes; // { Conv: 1, Relu: 1 }
 */
export function toOnnx(
  model: Exportable,
  exampleInputs: readonly Tensor[],
  options: OnnxExportOptions = {},
): OnnxExportSummary {
  const examples = checkInputs(model, exampleInputs);
  if (options === null || typeof options !== "object") {
    throw new Error(
      "exportOnnx: options must be an object { opset, inputNames, outputNames, docString }",
    );
  }
  const known = new Set(["opset", "inputNames", "outputNames", "docString"]);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new Error(`exportOnnx: unknown option "${key}"`);
  }
  const opset = options.opset ?? 13;
  if (IR_VERSION[opset] === undefined) {
    throw new Error(`exportOnnx: opset must be an integer from 13 to 21, got ${opset}`);
  }
  const inputNames =
    options.inputNames ?? examples.map((_, i) => (examples.length === 1 ? "input" : `input${i}`));
  if (inputNames.length !== examples.length || new Set(inputNames).size !== inputNames.length) {
    throw new Error(
      `exportOnnx: inputNames must give ${examples.length} distinct names, got [${inputNames.join(", ")}]`,
    );
  }
  const module = model instanceof nn.Module ? model : null;
  const wasTraining = module?.training ?? false;
  module?.eval();
  let first: Trace;
  let second: Trace;
  try {
    first = trace(model, examples, options.outputNames);
    second = trace(model, examples.map(reversed), options.outputNames);
  } finally {
    module?.train(wasTraining);
  }
  const parameterNames = new Map<Tensor, string>();
  if (module !== null) for (const [name, t] of module.stateDict()) parameterNames.set(t, name);
  return build(first, second, { ...options, opset, inputNames }, parameterNames);
}

function build(
  first: Trace,
  second: Trace,
  options: OnnxExportOptions & { opset: number; inputNames: readonly string[] },
  parameterNames: ReadonlyMap<Tensor, string>,
): OnnxExportSummary {
  const { opset } = options;
  const names = new Map<Tensor, string>();
  for (const [i, t] of first.inputs.entries()) names.set(t, options.inputNames[i]);
  // Output names are reserved first, so that no other value can take one.
  const taken = new Set<string>(options.inputNames);
  for (const [name] of first.outputs) {
    if (taken.has(name)) {
      throw new Error(
        `exportOnnx: "${name}" names two graph values (inputs and outputs need distinct names)`,
      );
    }
    taken.add(name);
  }
  const fresh = (hint: string) => {
    let name = hint;
    for (let k = 1; taken.has(name); k++) name = `${hint}_${k}`;
    taken.add(name);
    return name;
  };
  const nodes: NodeMessage[] = [];
  const initializers: TensorMessage[] = [];
  const constant = (t: Tensor, hint: string): string => {
    const name = fresh(hint);
    initializers.push({
      name,
      dims: [...t.shape],
      data_type: DATA_TYPES[t.dtype],
      raw_data: bytesOf(t),
    });
    return name;
  };
  const int64 = (values: readonly number[]) => {
    const name = fresh("shape");
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    initializers.push({
      name,
      dims: [values.length],
      data_type: DataType.INT64,
      raw_data: new Uint8Array(data.buffer),
    });
    return name;
  };
  const scalar = (value: number, dtype: DType) =>
    constant(tensor([value], { shape: [], dtype }), "scalar");
  const casts = new Map<string, string>();

  if (first.order.length !== second.order.length) {
    throw new Error(
      "exportOnnx: the model's graph changes with the values of its inputs (control flow on tensor values cannot be exported)",
    );
  }
  first.order.forEach((t, position) => {
    if (names.has(t)) return;
    const other = second.order[position];
    const op = recordedOp(t);
    const otherOp = recordedOp(other);
    if (op?.op !== otherOp?.op) {
      throw new Error(
        "exportOnnx: the model's graph changes with the values of its inputs (control flow on tensor values cannot be exported)",
      );
    }
    if (op === null) {
      if (second.inputs.includes(other)) {
        throw new Error("exportOnnx: an input reaches the outputs in one pass and not the other");
      }
      const parameter = parameterNames.get(t);
      if (parameter === undefined && !sameValues(t, other)) {
        throw new Error(
          `exportOnnx: a constant of shape [${t.shape.join(", ")}] depends on the input values: it was computed by an op that is not recorded (a comparison, argmax, a cast of a mask, a value read with item()) and cannot be exported as a constant`,
        );
      }
      names.set(t, constant(t, parameter ?? "constant"));
      return;
    }
    const output = fresh(op.op);
    names.set(t, output);
    const context: Context = {
      out: t,
      inputs: op.inputs,
      attributes: op.attributes,
      opset,
      input(i, dtype) {
        const source = op.inputs[i];
        const name = names.get(source)!;
        if (dtype === undefined || source.dtype === dtype) return name;
        const key = `${name}:${dtype}`;
        let cast = casts.get(key);
        if (cast === undefined) {
          cast = fresh(`${name}_as_${dtype}`);
          nodes.push(node("Cast", [name], [cast], [int("to", DATA_TYPES[dtype])], cast));
          casts.set(key, cast);
        }
        return cast;
      },
      int64,
      scalar,
      fresh,
      node(opType, inputs, attributes = [], out = output) {
        nodes.push(node(opType, inputs, [out], attributes, out));
        return out;
      },
    };
    const simple = ELEMENTWISE[op.op];
    if (simple !== undefined) {
      context.node(
        simple,
        op.inputs.map((_, i) => context.input(i, t.dtype)),
      );
    } else {
      const converter = CONVERTERS[op.op];
      if (converter === undefined) {
        throw new Error(
          `exportOnnx: cannot export op "${op.op}" (it made a tensor of shape [${t.shape.join(", ")}]); ONNX forms exist for ${EXPORTABLE_OPS.join(", ")}`,
        );
      }
      converter(context);
    }
  });

  const outputs: ValueInfoMessage[] = [];
  for (const [name, t] of first.outputs) {
    const source = names.get(t)!;
    // A graph output is a value of its own name: the node that made it is renamed, unless the
    // value is an input, an initialiser or another output too, which an Identity node copies.
    const producer = nodes.find((n) => n.output[0] === source);
    const shared = producer === undefined || first.outputs.filter(([, u]) => u === t).length > 1;
    if (shared) {
      nodes.push(node("Identity", [source], [name], [], name));
    } else {
      for (const n of nodes) n.input = n.input.map((i) => (i === source ? name : i));
      producer.output[0] = name;
      producer.name = name;
    }
    outputs.push(valueInfo(name, t));
  }

  const inputs = first.inputs.map((t, i) => valueInfo(options.inputNames[i], t));
  const bytes = encodeModel({
    ir_version: IR_VERSION[opset],
    opset_import: [{ domain: "", version: opset }],
    producer_name: "focalgrad",
    producer_version: "0.1.0",
    doc_string: options.docString ?? "",
    graph: {
      name: "focalgrad",
      node: nodes,
      initializer: initializers,
      input: inputs,
      output: outputs,
    },
    metadata_props: [],
  });
  const counts: Record<string, number> = {};
  for (const n of nodes) counts[n.op_type] = (counts[n.op_type] ?? 0) + 1;
  return {
    bytes,
    nodes: counts,
    initializers: initializers.length,
    weights: initializers.reduce((a, t) => a + t.dims.reduce((p, d) => p * d, 1), 0),
    inputs,
    outputs,
  };
}

function node(
  opType: string,
  input: string[],
  output: string[],
  attribute: Attribute[],
  name: string,
): NodeMessage {
  return { input, output, name, op_type: opType, attribute };
}

function sameValues(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.size !== b.size) return false;
  const x = a.read();
  const y = b.read();
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  return true;
}

/**
 * Traces `model` on `exampleInputs` (see `toOnnx`) and writes the ONNX model to `path`,
 * atomically. Returns what it wrote.
 *
 * @example
 * const model = new RetinaNet({ numClasses: 3 });
 * const summary = await exportOnnx(model, [zeros([1, 3, 64, 64])], "retinanet.onnx", { opset: 13 });
 * summary.outputs.map((o) => o.name); // ["logits", "classification", "regression"]
 */
export async function exportOnnx(
  model: Exportable,
  exampleInputs: readonly Tensor[],
  path: string,
  options: OnnxExportOptions = {},
): Promise<OnnxExportSummary> {
  const summary = toOnnx(model, exampleInputs, options);
  await writeFileAtomic(path, summary.bytes);
  return summary;
}
