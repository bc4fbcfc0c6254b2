/**
 * `@focalgrad/core/checkpoint`: saving and loading a module's parameters and buffers in the
 * safetensors format, which PyTorch's `safetensors` loader reads. Node only (node:fs), hence a
 * subpath of its own, so that the root package stays free of Node built-ins.
 *
 * @packageDocumentation
 */

import { randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { endianness } from "node:os";
import { basename, dirname, join } from "node:path";
import { allocate, type DataArray, type DType } from "../dtype.js";
import { writeInPlace } from "../nn/inplace.js";
import type { AnyModule } from "../nn/module.js";
import { checkOptions } from "../ops/util.js";
import { formatShape, maxElements, sizeOf } from "../shape.js";
import { Tensor } from "../tensor.js";

/*
 * The format: an unsigned 64-bit little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}, padded
 * with spaces so that the data starts 8-byte aligned, then the raw little-endian tensor bytes.
 * Offsets count from the start of the data; the tensors must tile it exactly, with no holes or
 * overlaps (the reference reader rejects anything else), so alignment comes from ordering the
 * tensors by element size, largest first, rather than from padding between them.
 */

const tagOf = { float32: "F32", float64: "F64", int32: "I32", bool: "BOOL" } as const satisfies {
  [D in DType]: string;
};
const dtypeOfTag: Record<string, DType> = {
  F32: "float32",
  F64: "float64",
  I32: "int32",
  BOOL: "bool",
};
const bytesPer = { float32: 4, float64: 8, int32: 4, bool: 1 } as const satisfies {
  [D in DType]: number;
};
/** Headers beyond this are corrupt, not large: the reference reader's limit (100 000 000 bytes). */
const maxHeaderBytes = 100_000_000;
const littleEndian = endianness() === "LE";

/** The contents of a safetensors file. */
export interface Safetensors {
  /** The tensors by name, in the file's order. */
  tensors: Map<string, Tensor>;
  /** The header's `__metadata__` strings (empty when there are none). */
  metadata: Record<string, string>;
}

function rawBytes(t: Tensor): Uint8Array {
  const data = t.read();
  if (littleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) writeElement(view, t.dtype, i, data[i]);
  return out;
}

function writeElement(view: DataView, dtype: DType, i: number, v: number): void {
  if (dtype === "float32") view.setFloat32(4 * i, v, true);
  else if (dtype === "float64") view.setFloat64(8 * i, v, true);
  else if (dtype === "int32") view.setInt32(4 * i, v, true);
  else view.setUint8(i, v);
}

function readElements(bytes: Uint8Array, dtype: DType, out: DataArray): void {
  if (littleEndian) {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) {
    if (dtype === "float32") out[i] = view.getFloat32(4 * i, true);
    else if (dtype === "float64") out[i] = view.getFloat64(8 * i, true);
    else if (dtype === "int32") out[i] = view.getInt32(4 * i, true);
    else out[i] = view.getUint8(i);
  }
}

/**
 * Serialises named tensors (and string metadata) into safetensors bytes.
 *
 * @example
 * const bytes = encodeSafetensors(new Map([["w", tensor([1, 2])]]), { format: "pt" });
 * decodeSafetensors(bytes).tensors.get("w"); // [1, 2]
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, Tensor> | Iterable<[string, Tensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : tensors)] as [string, Tensor][];
  const names = new Set<string>();
  for (const [name, t] of entries) {
    if (typeof name !== "string" || name === "" || name === "__metadata__") {
      throw new Error(`encodeSafetensors: invalid tensor name ${JSON.stringify(name)}`);
    }
    if (names.has(name)) throw new Error(`encodeSafetensors: the name "${name}" appears twice`);
    if (!(t instanceof Tensor)) throw new Error(`encodeSafetensors: "${name}" is not a Tensor`);
    names.add(name);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") {
      throw new Error(
        `encodeSafetensors: metadata values must be strings, got ${typeof value} for "${key}"`,
      );
    }
  }
  // Largest elements first keeps every tensor aligned to its element size without gaps.
  const ordered = entries
    .map((e, i) => [e, i] as const)
    .sort(([[, a], i], [[, b], j]) => bytesPer[b.dtype] - bytesPer[a.dtype] || i - j)
    .map(([e]) => e);
  // No prototype: a tensor named "__proto__" is then a key like any other.
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of ordered) {
    const length = t.size * bytesPer[t.dtype];
    header[name] = {
      dtype: tagOf[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + length],
    };
    offset += length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  if (headerLength > maxHeaderBytes) {
    throw new Error(
      `encodeSafetensors: the header would take ${headerLength} bytes, more than the ${maxHeaderBytes} a safetensors reader accepts (is the metadata too large?)`,
    );
  }
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const [, t] of ordered) {
    out.set(rawBytes(t), at);
    at += t.read().byteLength;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Parses and fully validates safetensors bytes: the header length against the file, every
 * entry's dtype, shape and byte range, and that the ranges tile the data exactly. Throws a
 * descriptive error on a truncated or corrupt file; never reads out of bounds.
 *
 * @example
 * const { tensors, metadata } = decodeSafetensors(await readFile("model.safetensors"));
 */
export function decodeSafetensors(bytes: Uint8Array): Safetensors {
  const { spans, metadata, start } = readLayout(bytes);
  const tensors = new Map<string, Tensor>();
  for (const s of spans) {
    const data = allocate(s.dtype, sizeOf(s.shape));
    readElements(bytes.subarray(start + s.begin, start + s.end), s.dtype, data);
    tensors.set(s.name, new Tensor(data, s.shape, s.dtype));
  }
  return { tensors, metadata };
}

/** Where each tensor of a safetensors file lies, by name. */
interface Span {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * The first key that appears twice in one object of a valid JSON text, or null. `JSON.parse`
 * keeps the last of duplicated keys silently; the reference reader rejects such a header.
 */
function duplicateKey(text: string): string | null {
  // One entry per open object (its keys so far) or array (null).
  const open: (Set<string> | null)[] = [];
  let expectingKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const keys = open[open.length - 1];
      if (expectingKey && keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectingKey = false;
      }
      i = j;
    } else if (c === "{") {
      open.push(new Set());
      expectingKey = true;
    } else if (c === "[") open.push(null);
    else if (c === "}" || c === "]") open.pop();
    else if (c === ",") expectingKey = open[open.length - 1] !== null;
  }
  return null;
}

/**
 * Validates everything of safetensors bytes that `load` checks, without copying the tensors: the
 * header and the place of every tensor in the data. `save` runs it on what it is about to write.
 */
function readLayout(bytes: Uint8Array): {
  spans: Span[];
  metadata: Record<string, string>;
  start: number;
} {
  if (bytes.length < 8) {
    throw new Error(`truncated: ${bytes.length} bytes, fewer than the 8 of the header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(maxHeaderBytes)) {
    throw new Error(`corrupt: the header length ${declared} exceeds ${maxHeaderBytes} bytes`);
  }
  const headerLength = Number(declared);
  if (8 + headerLength > bytes.length) {
    throw new Error(
      `truncated: the header needs ${headerLength} bytes but only ${bytes.length - 8} follow the length`,
    );
  }
  let header: unknown;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
    header = JSON.parse(text);
  } catch (e) {
    throw new Error(`corrupt: the header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isRecord(header)) throw new Error("corrupt: the header is not a JSON object");
  const repeated = duplicateKey(text);
  if (repeated !== null) {
    throw new Error(`corrupt: the header has the key ${JSON.stringify(repeated)} twice`);
  }
  const dataLength = bytes.length - 8 - headerLength;
  const metadata: Record<string, string> = {};
  const spans: Span[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isRecord(entry) || Object.values(entry).some((v) => typeof v !== "string")) {
        throw new Error("corrupt: __metadata__ must map strings to strings");
      }
      Object.assign(metadata, entry);
      continue;
    }
    if (!isRecord(entry)) throw new Error(`corrupt: the entry of "${name}" is not an object`);
    const { dtype: tag, shape, data_offsets: offsets } = entry;
    if (typeof tag !== "string") throw new Error(`corrupt: the entry of "${name}" has no dtype`);
    const dtype = Object.hasOwn(dtypeOfTag, tag) ? dtypeOfTag[tag] : undefined;
    if (dtype === undefined) {
      throw new Error(
        `unsupported dtype ${JSON.stringify(tag)} for "${name}" (expected F32, F64, I32 or BOOL)`,
      );
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new Error(
        `corrupt: the shape of "${name}" is not a list of sizes: ${JSON.stringify(shape)}`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      offsets.some((o) => !Number.isSafeInteger(o) || o < 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new Error(
        `corrupt: data_offsets of "${name}" must be [begin, end], got ${JSON.stringify(offsets)}`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (sizeOf(shape) > maxElements) {
      throw new Error(
        `corrupt: the shape ${formatShape(shape)} of "${name}" has more elements than a tensor can hold (${maxElements})`,
      );
    }
    const expected = sizeOf(shape) * bytesPer[dtype];
    if (end - begin !== expected) {
      throw new Error(
        `corrupt: "${name}" (${tag}, shape ${formatShape(shape)}) needs ${expected} bytes but data_offsets span ${end - begin}`,
      );
    }
    if (end > dataLength) {
      throw new Error(
        `truncated: "${name}" ends at byte ${end} of the data but the file holds only ${dataLength}`,
      );
    }
    spans.push({ name, dtype, shape, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const s of spans) {
    if (s.begin !== covered) {
      throw new Error(
        `corrupt: "${s.name}" starts at byte ${s.begin} of the data, expected ${covered} (tensors must tile the data without gaps or overlaps)`,
      );
    }
    covered = s.end;
  }
  if (covered !== dataLength) {
    throw new Error(`corrupt: ${dataLength - covered} bytes after the last tensor belong to none`);
  }
  const start = 8 + headerLength;
  for (const s of spans) {
    if (s.dtype === "bool" && bytes.subarray(start + s.begin, start + s.end).some((v) => v > 1)) {
      throw new Error(`corrupt: the BOOL tensor "${s.name}" holds values other than 0 and 1`);
    }
  }
  return { spans, metadata, start };
}

/** Options of `save`. */
export interface SaveOptions {
  /** String metadata stored in the header; `format: "pt"` is added, as PyTorch's writer does. */
  metadata?: Record<string, string>;
}

/**
 * Writes `module`'s parameters and buffers (its `stateDict()`, so names match `namedParameters()`
 * and PyTorch's `state_dict`) to `path` as safetensors. Atomic: the bytes go to a temporary file
 * in the same directory, which is flushed to disk and then renamed over `path`, so a crash
 * leaves either the old file or the new one, never half of one.
 *
 * @example
 * import { load, save } from "@focalgrad/core/checkpoint";
 * await save(model, "detector.safetensors");
 * await load(model, "detector.safetensors");
 */
export async function save(
  module: AnyModule,
  path: string,
  options: SaveOptions = {},
): Promise<void> {
  checkModule("save", module);
  checkOptions("save", options, { metadata: "object" });
  let bytes: Uint8Array;
  try {
    bytes = encodeSafetensors(module.stateDict(), { format: "pt", ...options.metadata });
    // What load would reject is never written: the file at `path` stays as it was.
    readLayout(bytes);
  } catch (e) {
    throw new Error(
      `save: refusing to write ${JSON.stringify(path)}: ${(e as Error).message} (the file is left as it was)`,
    );
  }
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new Error(
      `save: could not write checkpoint ${JSON.stringify(path)}: ${(e as Error).message}`,
    );
  }
}

/**
 * Writes `bytes` to `path` atomically: to a temporary file in the same directory, flushed to disk,
 * then renamed over `path`, so a crash leaves either the old file or the new one, never half of
 * one (`save` writes checkpoints this way; exporters of other formats can too).
 *
 * @example
 * import { writeFileAtomic } from "@focalgrad/core/checkpoint";
 * await writeFileAtomic("model.onnx", bytes);
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const directory = dirname(path);
  const temporary = join(
    directory,
    `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`,
  );
  let handle: Awaited<ReturnType<typeof open>> | null = null;
  try {
    handle = await open(temporary, "wx");
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = null;
    await rename(temporary, path);
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw e;
  }
  // Persist the rename itself; some platforms cannot open a directory, which is fine to skip.
  try {
    const dir = await open(directory, "r");
    await dir.sync().finally(() => dir.close());
  } catch {
    // Best effort.
  }
}

/** Options of `load`. */
export interface LoadOptions {
  /**
   * Require the file's names and the module's to match exactly (default true, PyTorch's). With
   * `false`, names on one side only are reported in the result instead, and every tensor both
   * sides have is loaded: a backbone checkpoint loads into a model with an extra head.
   */
  strict?: boolean;
}

/** What `load` did, as PyTorch's `load_state_dict` reports it, and the file's metadata. */
export interface LoadResult {
  /** Names the module has and the file does not (left as they were); empty when strict. */
  missingKeys: string[];
  /** Names the file has and the module does not (ignored); empty when strict. */
  unexpectedKeys: string[];
  /** The file's string metadata. */
  metadata: Record<string, string>;
}

/**
 * Reads a safetensors checkpoint into `module`'s parameters and buffers, in place (optimisers
 * holding the parameters keep working). The whole file is validated first: a truncated or
 * corrupt file, a tensor of the wrong shape or dtype, or (when strict) a missing or unexpected
 * name is an error that lists every problem, and leaves the module unchanged. Returns the names
 * found on one side only (with `strict: false`) and the file's metadata.
 *
 * @example
 * import { load } from "@focalgrad/core/checkpoint";
 * const { metadata } = await load(model, "detector.safetensors");
 * const { missingKeys, unexpectedKeys } = await load(detector, "backbone.safetensors", {
 *   strict: false,
 * }); // missingKeys: the head's parameters
 */
export async function load(
  module: AnyModule,
  path: string,
  options: LoadOptions = {},
): Promise<LoadResult> {
  checkModule("load", module);
  checkOptions("load", options, { strict: "boolean" });
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(
      `load: could not read checkpoint ${JSON.stringify(path)}: ${(e as Error).message}`,
    );
  }
  let file: Safetensors;
  try {
    file = decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(
      `load: ${JSON.stringify(path)} is not a valid safetensors file: ${(e as Error).message}`,
    );
  }
  const strict = options.strict ?? true;
  const state = module.stateDict();
  const problems: string[] = [];
  const missingKeys: string[] = [];
  const unexpectedKeys = [...file.tensors.keys()].filter((name) => !state.has(name));
  for (const [name, target] of state) {
    const found = file.tensors.get(name);
    if (found === undefined) missingKeys.push(name);
    else if (found.dtype !== target.dtype) {
      problems.push(
        `"${name}" is ${tagOf[found.dtype]} in the file but ${tagOf[target.dtype]} in the module`,
      );
    } else if (found.shape.join() !== target.shape.join()) {
      problems.push(
        `"${name}" has shape ${formatShape(found.shape)} in the file but ${formatShape(target.shape)} in the module`,
      );
    }
  }
  if (strict) {
    problems.push(...missingKeys.map((name) => `missing "${name}"`));
    problems.push(...unexpectedKeys.map((name) => `unexpected "${name}" (not in the module)`));
  }
  if (problems.length > 0) {
    throw new Error(
      `load: ${JSON.stringify(path)} does not match the module (${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was loaded): ${problems.join("; ")}`,
    );
  }
  const loaded = [...state].filter(([name]) => file.tensors.has(name));
  writeInPlace(
    loaded.map(([, target]) => target),
    () => {
      for (const [name, target] of loaded) target.writable().set(file.tensors.get(name)!.read());
    },
  );
  return { missingKeys, unexpectedKeys, metadata: file.metadata };
}

function checkModule(op: string, module: AnyModule): void {
  if (
    module === null ||
    typeof module !== "object" ||
    typeof (module as AnyModule).stateDict !== "function"
  ) {
    throw new Error(`${op}: the first argument must be an nn.Module`);
  }
}
