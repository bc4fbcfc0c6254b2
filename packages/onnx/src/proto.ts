/** The part of ONNX's protobuf schema (onnx.proto, IR version 7 and later) that an exported model uses, encoded by protobufjs. */

import protobuf from "protobufjs";

// Field numbers and types are those of onnx.proto; names keep its snake_case so that each line can
// be checked against the specification. Only the fields the exporter writes are declared: a
// reader skips nothing it needs, since every other field of a message is optional.
const schema = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            ir_version: { type: "int64", id: 1 },
            opset_import: { rule: "repeated", type: "OperatorSetIdProto", id: 8 },
            producer_name: { type: "string", id: 2 },
            producer_version: { type: "string", id: 3 },
            doc_string: { type: "string", id: 6 },
            graph: { type: "GraphProto", id: 7 },
            metadata_props: { rule: "repeated", type: "StringStringEntryProto", id: 14 },
          },
        },
        StringStringEntryProto: {
          fields: { key: { type: "string", id: 1 }, value: { type: "string", id: 2 } },
        },
        OperatorSetIdProto: {
          fields: { domain: { type: "string", id: 1 }, version: { type: "int64", id: 2 } },
        },
        GraphProto: {
          fields: {
            node: { rule: "repeated", type: "NodeProto", id: 1 },
            name: { type: "string", id: 2 },
            initializer: { rule: "repeated", type: "TensorProto", id: 5 },
            doc_string: { type: "string", id: 10 },
            input: { rule: "repeated", type: "ValueInfoProto", id: 11 },
            output: { rule: "repeated", type: "ValueInfoProto", id: 12 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: "repeated", type: "string", id: 1 },
            output: { rule: "repeated", type: "string", id: 2 },
            name: { type: "string", id: 3 },
            op_type: { type: "string", id: 4 },
            attribute: { rule: "repeated", type: "AttributeProto", id: 5 },
            domain: { type: "string", id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: "string", id: 1 },
            type: { type: "int32", id: 20 },
            f: { type: "float", id: 2 },
            i: { type: "int64", id: 3 },
            s: { type: "bytes", id: 4 },
            floats: { rule: "repeated", type: "float", id: 7 },
            ints: { rule: "repeated", type: "int64", id: 8 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: "repeated", type: "int64", id: 1 },
            data_type: { type: "int32", id: 2 },
            name: { type: "string", id: 8 },
            raw_data: { type: "bytes", id: 9 },
          },
        },
        ValueInfoProto: {
          fields: { name: { type: "string", id: 1 }, type: { type: "TypeProto", id: 2 } },
        },
        TypeProto: {
          fields: { tensor_type: { type: "Tensor", id: 1 } },
          nested: {
            Tensor: {
              fields: {
                elem_type: { type: "int32", id: 1 },
                shape: { type: "TensorShapeProto", id: 2 },
              },
            },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: "repeated", type: "Dimension", id: 1 } },
          nested: {
            Dimension: {
              fields: {
                dim_value: { type: "int64", id: 1 },
                dim_param: { type: "string", id: 2 },
              },
            },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(schema);

/** ONNX's `TensorProto.DataType` codes of the element types an exported graph uses. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;

/** ONNX's `AttributeProto.AttributeType` codes. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** An ONNX attribute, as the exporter builds it. */
export interface Attribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

/** An ONNX node. */
export interface NodeMessage {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: Attribute[];
}

/** An ONNX tensor with its bytes little-endian in `raw_data`. */
export interface TensorMessage {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

/** A graph input or output: a name, an element type and a static shape. */
export interface ValueInfoMessage {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: { dim_value: number }[] } } };
}

/** The whole model. */
export interface ModelMessage {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string: string;
  graph: {
    name: string;
    node: NodeMessage[];
    initializer: TensorMessage[];
    input: ValueInfoMessage[];
    output: ValueInfoMessage[];
  };
  metadata_props: { key: string; value: string }[];
}

/** The protobuf bytes of `model`, checked against the schema first. */
export function encodeModel(model: ModelMessage): Uint8Array {
  const type = root.lookupType("onnx.ModelProto");
  const problem = type.verify(model);
  if (problem !== null)
    throw new Error(`exportOnnx: the model does not fit ONNX's schema: ${problem}`);
  return type.encode(type.fromObject(model)).finish();
}

/** `bytes` decoded as an ONNX model (for tests and tools that inspect an exported file). */
export function decodeModel(bytes: Uint8Array): ModelMessage {
  const type = root.lookupType("onnx.ModelProto");
  return type.toObject(type.decode(bytes), { longs: Number, bytes: Uint8Array }) as ModelMessage;
}
