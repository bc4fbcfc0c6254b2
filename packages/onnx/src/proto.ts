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

/** An ONNX attribute (`AttributeProto`), as the exporter builds it: one of the value fields is set. */
export interface Attribute {
  /** The attribute's name, e.g. "strides". */
  name: string;
  /** Which value field is set (`AttributeType`). */
  type: number;
  /** A float value. */
  f?: number;
  /** An integer value. */
  i?: number;
  /** A string value, UTF-8. */
  s?: Uint8Array;
  /** A list of floats. */
  floats?: number[];
  /** A list of integers. */
  ints?: number[];
}

/** An ONNX node (`NodeProto`): one operator applied to named values. */
export interface NodeMessage {
  /** Names of the values it reads. */
  input: string[];
  /** Names of the values it makes. */
  output: string[];
  /** The node's own name (the exporter uses its first output's). */
  name: string;
  /** The ONNX operator, e.g. "Conv". */
  op_type: string;
  /** The operator's attributes. */
  attribute: Attribute[];
}

/** An ONNX tensor (`TensorProto`) with its bytes little-endian in `raw_data`: an initialiser. */
export interface TensorMessage {
  /** The value's name in the graph (a parameter's state-dict name where it has one). */
  name: string;
  /** Its shape. */
  dims: number[];
  /** Its element type (`DataType`). */
  data_type: number;
  /** Its elements, little-endian. */
  raw_data: Uint8Array;
}

/** A graph input or output (`ValueInfoProto`): a name, an element type and a static shape. */
export interface ValueInfoMessage {
  /** The value's name. */
  name: string;
  /** Its type. */
  type: {
    /** A tensor. */
    tensor_type: {
      /** Of this element type (`DataType`). */
      elem_type: number;
      /** And this static shape. */
      shape: {
        /** One entry per axis. */
        dim: {
          /** The axis's size. */
          dim_value: number;
        }[];
      };
    };
  };
}

/** The graph of a model (`GraphProto`). */
export interface GraphMessage {
  /** The graph's name. */
  name: string;
  /** Its nodes, in an order where every value is made before it is read. */
  node: NodeMessage[];
  /** Its weights and constants. */
  initializer: TensorMessage[];
  /** What it takes. */
  input: ValueInfoMessage[];
  /** What it returns. */
  output: ValueInfoMessage[];
}

/** An operator set the model uses (`OperatorSetIdProto`). */
export interface OpsetMessage {
  /** "" for the default ONNX domain. */
  domain: string;
  /** The opset version. */
  version: number;
}

/** A whole ONNX model (`ModelProto`), as the exporter writes it and `decodeModel` reads it. */
export interface ModelMessage {
  /** The ONNX IR version (7 for opset 13). */
  ir_version: number;
  /** The operator sets it uses. */
  opset_import: OpsetMessage[];
  /** "focalgrad". */
  producer_name: string;
  /** The exporter's version. */
  producer_version: string;
  /** A description (the `docString` option). */
  doc_string: string;
  /** The graph. */
  graph: GraphMessage;
  /** Key–value metadata. */
  metadata_props: {
    /** The entry's name. */
    key: string;
    /** Its value. */
    value: string;
  }[];
}

/**
 * The protobuf bytes of `model`, checked against the schema first.
 *
 * @example
 * const bytes = encodeModel(model);
 * decodeModel(bytes).graph.node.length === model.graph.node.length; // true
 */
export function encodeModel(model: ModelMessage): Uint8Array {
  const type = root.lookupType("onnx.ModelProto");
  const problem = type.verify(model);
  if (problem !== null)
    throw new Error(`exportOnnx: the model does not fit ONNX's schema: ${problem}`);
  return type.encode(type.fromObject(model)).finish();
}

/**
 * `bytes` decoded as an ONNX model (for tests and tools that inspect an exported file).
 *
 * @example
 * const model = decodeModel(readFileSync("model.onnx"));
 * model.graph.initializer.map((t) => t.name); // the weights, by state-dict name
 */
export function decodeModel(bytes: Uint8Array): ModelMessage {
  const type = root.lookupType("onnx.ModelProto");
  return type.toObject(type.decode(bytes), { longs: Number, bytes: Uint8Array }) as ModelMessage;
}
