/** `@focalgrad/onnx`: export a focalgrad model to ONNX by tracing its forward pass; `@focalgrad/onnx/runtime` runs the result in ONNX Runtime. */

export {
  EXPORTABLE_OPS,
  type Exportable,
  type ExportedOutputs,
  exportOnnx,
  type OnnxExportOptions,
  type OnnxExportSummary,
  toOnnx,
} from "./export.js";
export {
  type Attribute,
  decodeModel,
  type GraphMessage,
  type ModelMessage,
  type NodeMessage,
  type OpsetMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from "./proto.js";
