"""Reads and writes safetensors files: through `safetensors.torch` when it is installed, else through
a small implementation of the format (an 8-byte little-endian header length, a JSON header, the
tensors' bytes), so that the hand-off works with nothing but PyTorch."""

import json
import os
import struct
import sys
import tempfile

import torch

# The format's dtype tags and PyTorch's types.
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
TAGS = {dtype: tag for tag, dtype in DTYPES.items()}

try:  # pragma: no cover - depends on the machine
    from safetensors import safe_open as _safe_open
    from safetensors.torch import save_file as _save_file

    HAVE_SAFETENSORS = True
except ImportError:
    HAVE_SAFETENSORS = False


class SafetensorsError(ValueError):
    """A file that is not valid safetensors, named with what is wrong."""


def _element_count(shape):
    count = 1
    for d in shape:
        count *= d
    return count


def decode(data, where="<bytes>"):
    """The tensors and string metadata of safetensors `data` (bytes), every field checked."""
    if sys.byteorder != "little":
        raise SafetensorsError("the fallback reader needs a little-endian machine")
    if len(data) < 8:
        raise SafetensorsError(f"{where}: {len(data)} bytes is too short for a safetensors header")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > len(data) - 8:
        raise SafetensorsError(
            f"{where}: the header claims {header_length} bytes but the file has {len(data) - 8} after the length"
        )
    try:
        header = json.loads(data[8 : 8 + header_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{where}: the header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{where}: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{where}: __metadata__ must map names to strings")
    body = memoryview(data)[8 + header_length :]
    tensors = {}
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: tensor {name!r} needs exactly dtype, shape and data_offsets")
        tag, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        if tag not in DTYPES:
            raise SafetensorsError(f"{where}: tensor {name!r} has unknown dtype {tag!r} (known: {', '.join(DTYPES)})")
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{where}: tensor {name!r} has a bad shape {shape}")
        dtype = DTYPES[tag]
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not (0 <= begin <= end <= len(body)) or end - begin != _element_count(shape) * itemsize:
            raise SafetensorsError(
                f"{where}: tensor {name!r} ({tag} {shape}) has data_offsets [{begin}, {end}], "
                f"expected {_element_count(shape) * itemsize} bytes within the {len(body)} of the data"
            )
        spans.append((begin, end, name))
        raw = bytearray(body[begin:end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(shape)
    spans.sort()
    for (_, end_a, a), (begin_b, _, b) in zip(spans, spans[1:]):
        if begin_b < end_a:
            raise SafetensorsError(f"{where}: tensors {a!r} and {b!r} overlap")
    return tensors, metadata


def encode(tensors, metadata=None):
    """The safetensors bytes of `tensors` (a dict of names to tensors) and string `metadata`."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in TAGS:
            raise SafetensorsError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot hold")
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": TAGS[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError("metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def load_file(path, use_library=None):
    """`(tensors, metadata)` of the safetensors file at `path`."""
    if use_library if use_library is not None else HAVE_SAFETENSORS:
        with _safe_open(path, framework="pt") as f:  # pragma: no cover - depends on the machine
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    with open(path, "rb") as f:
        return decode(f.read(), where=path)


def save_file(tensors, path, metadata=None, use_library=None):
    """Writes `tensors` and `metadata` to `path` atomically (a temporary file renamed into place)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    os.close(fd)
    try:
        if use_library if use_library is not None else HAVE_SAFETENSORS:
            _save_file({k: v.contiguous() for k, v in tensors.items()}, temporary, metadata)  # pragma: no cover
        else:
            with open(temporary, "wb") as f:
                f.write(encode(tensors, metadata))
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
