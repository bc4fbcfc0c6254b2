import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeSafetensors, encodeSafetensors, load, save } from "../src/checkpoint/index.js";
import { nn, reshape, type Tensor, tensor, uniform } from "../src/index.js";

const directory = mkdtempSync(join(tmpdir(), "focalgrad-checkpoint-"));
afterAll(() => {
  // Left for the OS to clean: removing files in a test would hide what a failure wrote.
});

function makeModel(seed: number, dtype: "float32" | "float64" = "float32"): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(1, 4, 3, { padding: "same", seed, dtype }),
    new nn.BatchNorm2d(4, { dtype }),
    new nn.ReLU(),
    new nn.Flatten(),
    new nn.Linear(4 * 4 * 4, 2, { seed: seed + 1, dtype }),
  );
}

function snapshot(m: nn.AnyModule): Map<string, number[]> {
  return new Map([...m.stateDict()].map(([k, t]) => [k, [...t.data]]));
}

let counter = 0;
const fresh = (name = "model") => join(directory, `${name}-${counter++}.safetensors`);

describe("save and load", () => {
  it("round-trips every parameter and buffer bit for bit", async () => {
    const a = makeModel(0);
    a.forward(uniform([2, 1, 4, 4], { seed: 9 })); // moves the BatchNorm running statistics
    const b = makeModel(100);
    expect(snapshot(b)).not.toEqual(snapshot(a));
    const path = fresh();
    await save(a, path, { metadata: { epoch: "3" } });
    const metadata = await load(b, path);
    expect(snapshot(b)).toEqual(snapshot(a));
    expect(metadata).toEqual({ format: "pt", epoch: "3" });
    // Loading writes into the existing tensors, so an optimiser holding them keeps working.
    expect(b.parameters()[0]).toBe(b.namedParameters()[0][1]);
  });

  it("round-trips a module of several inputs and outputs, with a list and a buffer inside", async () => {
    class TwoLevelHead extends nn.Module<[Tensor, Tensor], { scores: Tensor; boxes: Tensor }> {
      readonly convs = this.addModule(
        "convs",
        new nn.ModuleList([0, 1].map((i) => new nn.Conv2d(2, 2, 3, { padding: "same", seed: i }))),
      );
      readonly norm = this.addModule("norm", new nn.BatchNorm2d(2));
      readonly boxes = this.addModule("boxes", new nn.Linear(2, 4, { seed: 2 }));
      constructor(readonly offset: number) {
        super();
        for (const p of this.parameters()) {
          for (let i = 0; i < p.size; i++) p.data[i] += offset;
          p.markModified();
        }
      }
      forward(p3: Tensor, p4: Tensor) {
        const a = this.norm.forward(this.convs.at(0).forward(p3));
        const b = this.convs.at(1).forward(p4);
        return { scores: a, boxes: this.boxes.forward(reshape(b, [-1, 2])) };
      }
    }
    const a = new TwoLevelHead(0);
    a.forward(uniform([2, 2, 3, 3], { seed: 1 }), uniform([1, 2, 2, 2], { seed: 2 }));
    const b = new TwoLevelHead(1);
    expect(snapshot(b)).not.toEqual(snapshot(a));
    const path = fresh("head");
    await save(a, path);
    await load(b, path);
    expect([...b.stateDict().keys()]).toEqual([
      "convs.0.weight",
      "convs.0.bias",
      "convs.1.weight",
      "convs.1.bias",
      "norm.weight",
      "norm.bias",
      "norm.running_mean",
      "norm.running_var",
      "norm.num_batches_tracked",
      "boxes.weight",
      "boxes.bias",
    ]);
    expect(snapshot(b)).toEqual(snapshot(a));
    // The loaded module computes what the saved one does, in evaluation mode (running statistics).
    const p3 = uniform([1, 2, 3, 3], { seed: 3 });
    const p4 = uniform([1, 2, 2, 2], { seed: 4 });
    const want = a.eval().forward(p3, p4);
    const got = b.eval().forward(p3, p4);
    expect([...got.scores.data]).toEqual([...want.scores.data]);
    expect([...got.boxes.data]).toEqual([...want.boxes.data]);
  });

  it("writes the safetensors layout: u64 header length, JSON header, aligned raw data", async () => {
    const m = makeModel(1, "float64");
    const path = fresh();
    await save(m, path);
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"));
    const names = [...m.stateDict().keys()];
    expect(
      Object.keys(header)
        .filter((k) => k !== "__metadata__")
        .sort(),
    ).toEqual([...names].sort());
    expect(header.__metadata__).toEqual({ format: "pt" });
    expect(header["0.weight"]).toMatchObject({ dtype: "F64", shape: [4, 1, 3, 3] });
    expect(header["1.num_batches_tracked"]).toMatchObject({ dtype: "I32", shape: [] });
    // The tensors tile the data exactly, each starting at a multiple of its element size.
    const spans = names
      .map((n) => header[n].data_offsets as [number, number])
      .sort((p, q) => p[0] - q[0]);
    let end = 0;
    for (const [begin, stop] of spans) {
      expect(begin).toBe(end);
      end = stop;
    }
    expect(end).toBe(bytes.length - 8 - headerLength);
    const [begin] = header["4.bias"].data_offsets;
    const start = 8 + headerLength + begin;
    const bias = new Float64Array(
      bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + 16),
    );
    expect([...bias]).toEqual([...(m.stateDict().get("4.bias") as Tensor).data]);
  });

  it("is readable by an independent reader (Python with NumPy, when installed)", async (ctx) => {
    const m = makeModel(2);
    const path = fresh();
    await save(m, path);
    // HuggingFace's own reader when it is installed (the Rust parser PyTorch's loader uses), else
    // the layout parsed by hand with NumPy, independently of our decoder.
    const script = `
import json, struct, sys, numpy as np
try:
    from safetensors.numpy import load_file
    out = {k: v.ravel().tolist() for k, v in load_file(sys.argv[1]).items()}
    reader = "safetensors"
except ImportError:
    raw = open(sys.argv[1], "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    types = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "BOOL": "?"}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, s = e["data_offsets"]
        out[name] = np.frombuffer(data[b:s], dtype=types[e["dtype"]]).reshape(e["shape"]).ravel().tolist()
    reader = "numpy"
print(json.dumps({"reader": reader, "tensors": out}))
`;
    const run = spawnSync("python3", ["-c", script, path], { encoding: "utf8" });
    if (run.error !== undefined || /No module named 'numpy'/.test(run.stderr)) {
      ctx.skip();
      return;
    }
    expect(run.stderr).toBe("");
    const read = JSON.parse(run.stdout) as { reader: string; tensors: Record<string, number[]> };
    expect(Object.keys(read.tensors).sort()).toEqual([...m.stateDict().keys()].sort());
    for (const [name, t] of m.stateDict()) expect(read.tensors[name]).toEqual([...t.data]);
  }, 30_000);

  it("writes atomically: no temporary file is left behind, on success or failure", async () => {
    const dir = join(directory, `atomic-${counter++}`);
    mkdirSync(dir);
    const path = join(dir, "model.safetensors");
    await save(makeModel(3), path);
    await save(makeModel(4), path); // replaces the old file in one rename
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
    // A target that cannot be replaced (a non-empty directory) fails after the temporary file was
    // written: the error names the path, and the temporary file is gone.
    const blocked = join(dir, "blocked.safetensors");
    mkdirSync(blocked);
    writeFileSync(join(blocked, "keep"), "x");
    await expect(save(makeModel(5), blocked)).rejects.toThrow(
      `save: could not write checkpoint ${JSON.stringify(blocked)}`,
    );
    expect(readdirSync(dir).sort()).toEqual(["blocked.safetensors", "model.safetensors"]);
    const reloaded = makeModel(6);
    await load(reloaded, path);
    expect(snapshot(reloaded)).toEqual(snapshot(makeModel(4)));
  });

  describe("rejects bad files and leaves the module unchanged", () => {
    async function expectRejected(bytes: Uint8Array, message: string, model = makeModel(7)) {
      const path = fresh("bad");
      writeFileSync(path, bytes);
      const before = snapshot(model);
      await expect(load(model, path)).rejects.toThrow(message);
      expect(snapshot(model)).toEqual(before);
    }
    async function goodBytes(model: nn.Module = makeModel(8)): Promise<Buffer> {
      const path = fresh();
      await save(model, path);
      return readFileSync(path);
    }

    it("a first argument that is not a module", async () => {
      await expect(save({} as nn.Module, fresh())).rejects.toThrow(
        "save: the first argument must be an nn.Module",
      );
    });

    it("a missing file", async () => {
      await expect(load(makeModel(0), join(directory, "nope.safetensors"))).rejects.toThrow(
        "load: could not read checkpoint",
      );
    });

    it("a file truncated inside the length, the header or the data", async () => {
      const good = await goodBytes();
      await expectRejected(
        good.subarray(0, 5),
        "truncated: 5 bytes, fewer than the 8 of the header length",
      );
      await expectRejected(good.subarray(0, 20), "truncated: the header needs");
      await expectRejected(good.subarray(0, good.length - 3), "truncated:");
    });

    it("a corrupt header: not JSON, an absurd length, offsets that do not tile the data", async () => {
      const good = await goodBytes();
      const garbled = Buffer.from(good);
      garbled[8] = 0x78; // "x" instead of the opening "{"
      await expectRejected(garbled, "corrupt: the header is not valid UTF-8 JSON");
      const huge = Buffer.from(good);
      huge.writeBigUInt64LE(2n ** 40n, 0);
      await expectRejected(huge, "corrupt: the header length 1099511627776 exceeds");
      const t = new Map([["w", tensor([1, 2])]]);
      const bytes = Buffer.from(encodeSafetensors(t));
      const n = Number(bytes.readBigUInt64LE(0));
      const header = bytes
        .subarray(8, 8 + n)
        .toString("utf8")
        .replace("[0,8]", "[0,4]");
      const edited = Buffer.concat([
        bytes.subarray(0, 8 + n - header.length),
        Buffer.from(header),
        bytes.subarray(8 + n),
      ]);
      expect(() => decodeSafetensors(edited)).toThrow(
        'corrupt: "w" (F32, shape [2]) needs 8 bytes but data_offsets span 4',
      );
    });

    it("a missing key, a wrong shape, a wrong dtype and an unexpected key, all listed", async () => {
      const other = new nn.Sequential(
        new nn.Conv2d(1, 4, 3, { padding: "same", seed: 0 }),
        new nn.BatchNorm2d(4),
        new nn.ReLU(),
        new nn.Flatten(),
        new nn.Linear(4 * 4 * 4, 3, { seed: 1 }), // 3 outputs instead of 2
      );
      await expectRejected(
        await goodBytes(other),
        '"4.weight" has shape [3, 64] in the file but [2, 64] in the module',
      );
      await expectRejected(
        await goodBytes(makeModel(0, "float64")),
        '"0.weight" is F64 in the file but F32 in the module',
      );
      const partial = encodeSafetensors(
        [...makeModel(0).stateDict()].filter(([k]) => k !== "1.running_var"),
      );
      await expectRejected(partial, 'missing "1.running_var"');
      const extra = encodeSafetensors([...makeModel(0).stateDict(), ["head.bias", tensor([1])]]);
      await expectRejected(extra, 'unexpected "head.bias" (not in the module)');
      // Non-strict loading ignores the extra tensor.
      const path = fresh();
      writeFileSync(path, extra);
      const model = makeModel(9);
      await load(model, path, { strict: false });
      expect(snapshot(model)).toEqual(snapshot(makeModel(0)));
    });
  });
});

describe("encodeSafetensors / decodeSafetensors", () => {
  it("round-trips every dtype, in any order of element sizes, keeping alignment", () => {
    const tensors = new Map<string, Tensor>([
      ["flags", tensor([true, false, true])],
      ["a", tensor([1.5, -2], { dtype: "float32" })],
      ["counts", tensor([[1, -2]], { dtype: "int32" })],
      ["b", tensor([Math.PI], { dtype: "float64" })],
      ["empty", tensor(new Float32Array(0), { shape: [0, 3] })],
    ]);
    const bytes = encodeSafetensors(tensors, { note: "hi" });
    const { tensors: back, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ note: "hi" });
    for (const [name, t] of tensors) {
      const u = back.get(name)!;
      expect([u.dtype, u.shape, [...u.data]]).toEqual([t.dtype, t.shape, [...t.data]]);
    }
  });

  it("rejects duplicate names, the reserved name and non-string metadata", () => {
    expect(() => encodeSafetensors([["__metadata__", tensor([1])]])).toThrow(
      'encodeSafetensors: invalid tensor name "__metadata__"',
    );
    expect(() =>
      encodeSafetensors([
        ["x", tensor([1])],
        ["x", tensor([2])],
      ]),
    ).toThrow('encodeSafetensors: the name "x" appears twice');
    expect(() => encodeSafetensors([["x", tensor([1])]], { n: 1 as unknown as string })).toThrow(
      'encodeSafetensors: metadata values must be strings, got number for "n"',
    );
  });

  it("rejects unsupported dtypes by name", () => {
    const header = JSON.stringify({ x: { dtype: "F16", shape: [1], data_offsets: [0, 2] } });
    const padded = header + " ".repeat((8 - (header.length % 8)) % 8);
    const bytes = Buffer.alloc(8 + padded.length + 2);
    bytes.writeBigUInt64LE(BigInt(padded.length), 0);
    bytes.write(padded, 8);
    expect(() => decodeSafetensors(bytes)).toThrow(
      'unsupported dtype "F16" for "x" (expected F32, F64, I32 or BOOL)',
    );
  });
});
