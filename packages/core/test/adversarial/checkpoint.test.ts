// Corrupt safetensors files are rejected with a reason, never loaded partly or silently; save
// never writes what load would reject, and never replaces a loadable file by an unloadable one.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeSafetensors, encodeSafetensors, load, save } from "../../src/checkpoint/index.js";
import { nn, tensor } from "../../src/index.js";

/** Safetensors bytes from a header (an object, or JSON text as it is) and the data bytes. */
function file(header: unknown, data: number[] = [], declared?: number): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declared ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({
  dtype: "F32",
  shape,
  data_offsets: [begin, end],
});
const eightBytes = [0, 0, 128, 63, 0, 0, 0, 64]; // float32 1 and 2, little-endian

describe("decodeSafetensors rejects corrupt files", () => {
  const cases: [string, Uint8Array, string][] = [
    ["fewer than 8 bytes", new Uint8Array(5), "truncated: 5 bytes"],
    [
      "a header length beyond the file",
      file({ a: f32([2], 0, 8) }, eightBytes, 1000),
      "truncated: the header needs 1000 bytes",
    ],
    ["a header length over the limit", file({}, [], 100_000_001), "exceeds 100000000 bytes"],
    // The limit itself is allowed: this header is only missing its bytes.
    [
      "a header length at the limit",
      file({}, [], 100_000_000),
      "truncated: the header needs 100000000 bytes",
    ],
    [
      "data cut short",
      file({ a: f32([2], 0, 8) }, eightBytes.slice(0, 6)),
      'truncated: "a" ends at byte 8',
    ],
    ["a header that is not JSON", file("{not json"), "not valid UTF-8 JSON"],
    [
      "a header that is not UTF-8",
      (() => {
        const b = file('{"a":1}');
        b[9] = 0xff;
        return b;
      })(),
      "not valid UTF-8 JSON",
    ],
    ["an array header", file([1, 2]), "the header is not a JSON object"],
    ["a number header", file(7), "the header is not a JSON object"],
    ["a string header", file('"x"'), "the header is not a JSON object"],
    [
      "a duplicated tensor name",
      file(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        eightBytes,
      ),
      'the key "a" twice',
    ],
    [
      "a duplicated key inside an entry",
      file('{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}', eightBytes),
      'the key "dtype" twice',
    ],
    [
      "a duplicated key spelt with an escape",
      file(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"\\u0061":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
        eightBytes,
      ),
      'the key "a" twice',
    ],
    ["a duplicated metadata key", file('{"__metadata__":{"k":"1","k":"2"}}'), 'the key "k" twice'],
    [
      "an unknown dtype",
      file({ a: { dtype: "F16", shape: [4], data_offsets: [0, 8] } }, eightBytes),
      'unsupported dtype "F16"',
    ],
    [
      "a shape that does not match the bytes",
      file({ a: f32([3], 0, 8) }, eightBytes),
      "needs 12 bytes but data_offsets span 8",
    ],
    ["a negative size", file({ a: f32([-2], 0, 8) }, eightBytes), "is not a list of sizes"],
    ["a fractional size", file({ a: f32([1.5], 0, 8) }, eightBytes), "is not a list of sizes"],
    [
      "a shape beyond the element limit",
      file({ a: f32([65536, 65536], 0, 8) }, eightBytes),
      "more elements than a tensor can hold",
    ],
    [
      "offsets the wrong way round",
      file({ a: f32([0], 8, 0) }, eightBytes),
      'data_offsets of "a" must be [begin, end]',
    ],
    [
      "overlapping tensors",
      file({ a: f32([2], 0, 8), b: f32([1], 4, 8) }, eightBytes),
      '"b" starts at byte 4 of the data, expected 8',
    ],
    [
      "a hole between tensors",
      file({ a: f32([1], 0, 4), b: f32([0], 8, 8) }, eightBytes),
      '"b" starts at byte 8 of the data, expected 4',
    ],
    [
      "a gap at the start",
      file({ a: f32([1], 4, 8) }, eightBytes),
      '"a" starts at byte 4 of the data, expected 0',
    ],
    [
      "bytes after the last tensor",
      file({ a: f32([1], 0, 4) }, eightBytes),
      "4 bytes after the last tensor",
    ],
    [
      "a BOOL byte that is not 0 or 1",
      file({ m: { dtype: "BOOL", shape: [2], data_offsets: [0, 2] } }, [1, 2]),
      'the BOOL tensor "m" holds values other than 0 and 1',
    ],
    [
      "non-string metadata",
      file({ __metadata__: { epoch: 3 } }),
      "__metadata__ must map strings to strings",
    ],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, () => {
      expect(() => decodeSafetensors(bytes)).toThrow(message);
    });
  }

  it("accepts entries listed out of order when they tile the data", () => {
    const bytes = file({ b: f32([1], 4, 8), a: f32([1], 0, 4) }, eightBytes);
    const { tensors } = decodeSafetensors(bytes);
    expect(tensors.get("a")!.toArray()).toEqual([1]);
    expect(tensors.get("b")!.toArray()).toEqual([2]);
  });

  it("a key that only looks like a duplicate inside a string value is not one", () => {
    const bytes = file(
      '{"__metadata__":{"note":"\\"a\\":1, \\"a\\":2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      eightBytes,
    );
    expect(decodeSafetensors(bytes).metadata.note).toBe('"a":1, "a":2');
  });

  it("a tensor named __proto__ round-trips as a plain name", () => {
    const bytes = encodeSafetensors(new Map([["__proto__", tensor([1, 2])]]));
    expect(decodeSafetensors(bytes).tensors.get("__proto__")!.toArray()).toEqual([1, 2]);
  });
});

describe("save refuses what load would reject", () => {
  const directory = mkdtempSync(join(tmpdir(), "focalgrad-adversarial-"));

  it("metadata over the header limit: an error before the file is touched", async () => {
    const model = new nn.Linear(2, 1, { seed: 0 });
    const path = join(directory, "model.safetensors");
    await save(model, path);
    const good = readFileSync(path);
    const huge = "x".repeat(100_000_000);
    const refusal = await save(model, path, { metadata: { huge } }).catch((e: Error) => e.message);
    expect(refusal).toContain(`save: refusing to write ${JSON.stringify(path)}`);
    expect(refusal).toContain("more than the 100000000 a safetensors reader accepts");
    expect(readFileSync(path).equals(good)).toBe(true);
    const other = new nn.Linear(2, 1, { seed: 1 });
    await load(other, path); // still loadable
    expect([...other.weight.read()]).toEqual([...model.weight.read()]);
  });

  it("a corrupt file on disk leaves the module unchanged", async () => {
    const model = new nn.Linear(2, 1, { seed: 0 });
    const before = [...model.weight.read()];
    const path = join(directory, "corrupt.safetensors");
    writeFileSync(
      path,
      file(
        '{"weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}',
        eightBytes,
      ),
    );
    await expect(load(model, path)).rejects.toThrow('the key "weight" twice');
    expect([...model.weight.read()]).toEqual(before);
  });

  it("options are checked", async () => {
    const model = new nn.Linear(2, 1, { seed: 0 });
    const path = join(directory, "options.safetensors");
    // biome-ignore lint/suspicious/noExplicitAny: a plain-JavaScript call
    await expect(save(model, path, { meta: {} } as any)).rejects.toThrow(
      'save: unknown option "meta"',
    );
    await save(model, path);
    // biome-ignore lint/suspicious/noExplicitAny: a plain-JavaScript call
    await expect(load(model, path, { strict: "no" } as any)).rejects.toThrow(
      "load: option strict must be true or false",
    );
  });
});
