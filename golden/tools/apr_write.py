"""APR v2 writer and the APR-q4 / APR-q8 quantizers, for golden fixtures.

Follows /work/shared/reference/formats.md ("APR v2") and produces the same bytes as the Rust
`AprWriter` (engine/src/format/apr/write.rs) for the same metadata and tensors:

- metadata: compact JSON, object keys sorted (by UTF-8 bytes) at every depth, numbers spelled the
  way serde_json spells them (see `_json_float`);
- index: entries sorted by tensor name (byte order); data stored in index order, each tensor at
  a 64-aligned offset relative to the data section;
- every section zero-padded to a multiple of 64; header CRC32 over [0,40) ‖ [44,64); footer CRC32
  over every byte before it;
- flags: LAYOUT_ROW_MAJOR always, HAS_VOCAB when the metadata holds `tokenizer.vocabulary`
  (flat key or nested under `tokenizer`), QUANTIZED when any tensor is Q4_K/Q6_K/APR_Q4/APR_Q8.

Quantizer rounding (formats.md fixes the layouts, not the rounding):

- APR-q4: per 32-element block, d = f16(max_abs / 7) computed in f32 (1.0 for an all-zero
  block); each element is q = clamp(round_half_away(x / d) + 8, 0, 15), where d is the f16 scale
  converted back to f32 and x / d is an f32 division. Using the *stored* scale makes the
  dequantized value (q - 8) * d the nearest grid point of the grid the reader actually uses.
  The padding elements of the last block are zeros, so their nibble is 8 (value 0).
- APR-q8: scale = max_abs / 127 in f32 (1.0 if all zero), q = clamp(round_half_away(x / scale),
  -127, 127) with an f32 division.

Round half away from zero is Rust's `f32::round`, so a Rust port of these quantizers gives the
same bytes. Non-finite inputs are refused rather than encoded.

Only numpy and the standard library are used.

Usage:
    python golden/tools/apr_write.py                # self-test (+ target/debug/harness if built)
    python golden/tools/apr_write.py --parity FILE  # write the Rust parity fixture
"""

import io
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from decimal import Decimal

import numpy as np

MAGIC = b"APR\0"
VERSION = (2, 0)
HEADER_LEN = 64
ALIGN = 64
MAX_DIMS = 8
MAX_TENSORS = 1 << 20
# Header CRC covers everything but its own field at [40, 44).
HEADER_CRC_AT = 40

FLAG_QUANTIZED = 0x0020
FLAG_HAS_VOCAB = 0x0200
FLAG_LAYOUT_ROW_MAJOR = 0x0400

# name -> (dtype byte, layout). Layouts: ("elem", bytes per element),
# ("blocks", elements per super-block along the last dim, bytes per super-block), ("apr_q4",),
# ("apr_q8",). Codes are the current ones; legacy 8/9 are never written (same as the Rust writer).
DTYPES = {
    "F32": (0, ("elem", 4)),
    "F16": (1, ("elem", 2)),
    "F64": (3, ("elem", 8)),
    "I32": (4, ("elem", 4)),
    "I64": (5, ("elem", 8)),
    "I8": (6, ("elem", 1)),
    "U8": (7, ("elem", 1)),
    "Q4_K": (12, ("blocks", 256, 144)),
    "Q6_K": (14, ("blocks", 256, 210)),
    "BF16": (30, ("elem", 2)),
    "APR_Q4": (128, ("apr_q4",)),
    "APR_Q8": (129, ("apr_q8",)),
}
QUANTIZED_DTYPES = {"Q4_K", "Q6_K", "APR_Q4", "APR_Q8"}

Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2


# --------------------------------------------------------------------------------------------
# Quantizers
# --------------------------------------------------------------------------------------------


def _round_half_away(v):
    """Round half away from zero (Rust's `f32::round`), elementwise.

    Done in float64: adding 0.5 to the f32 0.49999997 rounds up to 1.0 in f32, wrongly. In f64
    the sum is exact for every f32 between 0.25 and 2^28, the only range where a .5 boundary
    can be straddled (below 0.25 the result is 0; above 2^23 every f32 is an integer).
    """
    v = np.asarray(v, dtype=np.float64)
    return np.copysign(np.floor(np.abs(v) + 0.5), v)


def _finite_f32(x, what):
    flat = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1))
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{what}: the tensor holds NaN or infinity, which cannot be quantized")
    return flat


def quantize_apr_q4(x):
    """APR-q4 bytes of `x` (flattened, as float32): ceil(N/32) blocks of f16 scale + 16 bytes."""
    flat = _finite_f32(x, "APR-q4")
    n_blocks = -(-flat.size // Q4_BLOCK)
    blocks = np.zeros(n_blocks * Q4_BLOCK, dtype=np.float32)
    blocks[: flat.size] = flat
    blocks = blocks.reshape(n_blocks, Q4_BLOCK)

    max_abs = np.abs(blocks).max(axis=1) if n_blocks else np.zeros(0, np.float32)
    scale32 = np.where(max_abs > 0, max_abs / np.float32(7), np.float32(1)).astype(np.float32)
    with np.errstate(over="ignore"):
        scale16 = scale32.astype(np.float16)  # IEEE round-to-nearest-even
    if not np.all(np.isfinite(scale16)):
        raise ValueError("APR-q4: a block's max_abs / 7 exceeds the f16 range (65504)")
    d = scale16.astype(np.float32)[:, None]
    # A scale that underflowed to f16 zero: every value of the block dequantizes to 0, which is
    # the nearest the block can get, so store nibble 8 instead of dividing by zero.
    quot = np.divide(blocks, d, out=np.zeros_like(blocks), where=d != 0)
    q = np.clip(_round_half_away(quot) + 8, 0, 15).astype(np.uint8)

    out = np.empty((n_blocks, Q4_BLOCK_BYTES), dtype=np.uint8)
    out[:, :2] = scale16.astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    out[:, 2:] = q[:, 0::2] | (q[:, 1::2] << 4)
    return out.tobytes()


def dequantize_apr_q4(data, n):
    """The `n` float32 values of APR-q4 `data`: (nibble - 8) * scale."""
    n_blocks = -(-n // Q4_BLOCK)
    if len(data) != n_blocks * Q4_BLOCK_BYTES:
        raise ValueError(
            f"APR-q4 of {n} elements takes {n_blocks * Q4_BLOCK_BYTES} bytes, got {len(data)}")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(n_blocks, Q4_BLOCK_BYTES)
    d = raw[:, :2].copy().view("<f2").astype(np.float32)  # shape (n_blocks, 1)
    q = np.empty((n_blocks, Q4_BLOCK), dtype=np.uint8)
    q[:, 0::2] = raw[:, 2:] & 0x0F
    q[:, 1::2] = raw[:, 2:] >> 4
    values = (q.astype(np.float32) - np.float32(8)) * d
    return values.reshape(-1)[:n].copy()


def quantize_apr_q8(x):
    """APR-q8 bytes of `x` (flattened, as float32): one f32 scale, then N int8 values."""
    flat = _finite_f32(x, "APR-q8")
    max_abs = np.abs(flat).max() if flat.size else np.float32(0)
    scale = np.float32(max_abs / np.float32(127)) if max_abs > 0 else np.float32(1)
    # max_abs below ~127 * 2^-149 gives a zero scale; all values then store (and read back) 0.
    quot = flat / scale if scale != 0 else np.zeros_like(flat)
    q = np.clip(_round_half_away(quot), -127, 127).astype(np.int8)
    return np.array([scale], dtype="<f4").tobytes() + q.tobytes()


def dequantize_apr_q8(data, n):
    """The `n` float32 values of APR-q8 `data`: q * scale."""
    if len(data) != 4 + n:
        raise ValueError(f"APR-q8 of {n} elements takes {4 + n} bytes, got {len(data)}")
    scale = np.frombuffer(data[:4], dtype="<f4")[0]
    return np.frombuffer(data[4:], dtype=np.int8).astype(np.float32) * scale


# --------------------------------------------------------------------------------------------
# Tensor geometry
# --------------------------------------------------------------------------------------------


def tensor_nbytes(dtype, dims):
    """Bytes a tensor of `dtype` and row-major `dims` takes (Rust `DType::byte_size`)."""
    _, layout = DTYPES[dtype]
    n = math.prod(dims)  # 1 for a scalar ([]), as in Rust
    if layout[0] == "elem":
        return n * layout[1]
    if layout[0] == "blocks":
        # Row-major [out, in]: the last dim is the row, each row padded to whole super-blocks.
        row = dims[-1] if dims else 1
        return (n // row) * (-(-row // layout[1])) * layout[2]
    if layout[0] == "apr_q4":
        return -(-n // Q4_BLOCK) * Q4_BLOCK_BYTES
    return 4 + n  # apr_q8


# --------------------------------------------------------------------------------------------
# JSON, spelled as serde_json spells it
# --------------------------------------------------------------------------------------------


def _json_float(f):
    """A finite float as serde_json writes it: serde_json 1.0.154 (the version in Cargo.lock)
    formats f64 with the `zmij` crate.

    Python's repr and zmij both pick the shortest digit string that round-trips (the closest
    one when several are that short); they differ only in layout: Python writes `1e-06`,
    `1e-05`, `1e+16`, serde_json writes `1e-6`, `0.00001`, `1e+16`. So the digits come from
    repr and the layout follows zmij's rules. With value = 0.DIGITS x 10^kk:
      DIGITS x 10^exp, exp >= 0, kk <= 16 -> digits, zeros, ".0"   10000.0, 1000000.0
      0 < kk <= 16                         -> point inside digits    12.34
      -5 < kk <= 0                         -> "0." zeros digits      0.001234, 0.00001
      otherwise                            -> d[.ddd]e-N / d[.ddd]e+N (no exponent padding)
                                                                     1e-6, 1.5e-7, 1e+16
    Checked against serde_json 1.0.154 on ~425k floats (random bit patterns, short decimals,
    f32 values, powers of two and ten). Older serde_json (ryu) wrote `1e16`, without the `+`;
    only exponents >= 16 are affected, and fixture metadata has none.
    """
    if not math.isfinite(f):
        # serde_json's Value cannot hold these (Number::from_f64 gives None).
        raise ValueError(f"metadata float {f!r} is not finite; JSON has no spelling for it")
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + "0.0"
    _, digit_tuple, exp = Decimal(repr(abs(f))).as_tuple()
    all_digits = "".join(map(str, digit_tuple))
    digits = all_digits.rstrip("0")  # value = digits x 10^exp, shortest form
    exp += len(all_digits) - len(digits)
    length = len(digits)
    kk = length + exp
    if 0 <= exp and kk <= 16:
        body = digits + "0" * exp + ".0"
    elif 0 < kk <= 16:
        body = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        body = "0." + "0" * -kk + digits
    else:
        mantissa = digits if length == 1 else f"{digits[0]}.{digits[1:]}"
        body = f"{mantissa}e{kk - 1:+d}"
    return sign + body


def to_json(value):
    """Compact JSON with sorted keys at every depth, byte-identical to the Rust writer's
    `serde_json::to_vec(&sorted(value))`. Refuses what serde_json's Value cannot hold."""
    if value is None:
        return "null"
    # Before int: bool is an int subclass.
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if not -(1 << 63) <= v < (1 << 64):
            raise ValueError(f"metadata integer {v} fits neither i64 nor u64")
        return str(v)
    if isinstance(value, (float, np.floating)):
        return _json_float(float(value))
    if isinstance(value, str):
        # Python's escaping with ensure_ascii=False matches serde_json's: \" \\ \b \f \n \r \t,
        # other control characters as lowercase \u00xx, everything else raw UTF-8.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"metadata key {k!r} is not a string")
        keys = sorted(value, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(to_json(k) + ":" + to_json(value[k]) for k in keys) + "}"
    raise TypeError(f"metadata value {value!r} of type {type(value).__name__} has no JSON form")


# --------------------------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------------------------


def _align_up(x):
    return -(-x // ALIGN) * ALIGN


def _flags(metadata, dtypes):
    bits = FLAG_LAYOUT_ROW_MAJOR
    # Same test as the Rust writer: the key's presence counts, whatever its value.
    tok = metadata.get("tokenizer")
    if "tokenizer.vocabulary" in metadata or (isinstance(tok, dict) and "vocabulary" in tok):
        bits |= FLAG_HAS_VOCAB
    if any(d in QUANTIZED_DTYPES for d in dtypes):
        bits |= FLAG_QUANTIZED
    return bits


def _check_tensor(name, dtype, dims, data):
    """The Rust writer's `tensor()` checks; returns (name bytes, dtype, dims, byte view)."""
    where = f"APR tensor `{name}`"
    if not isinstance(name, str):
        raise TypeError(f"{where}: the name must be a str")
    name_b = name.encode("utf-8")
    if not 1 <= len(name_b) <= 0xFFFF:
        raise ValueError(
            f"{where}: the name is {len(name_b)} bytes; APR names are 1..=65535 bytes")
    key = dtype.upper() if isinstance(dtype, str) else dtype
    if key not in DTYPES:
        raise ValueError(
            f"{where}: APR has no dtype code for {dtype!r} (one of {', '.join(DTYPES)})")
    dims = [int(d) for d in dims]
    if len(dims) > MAX_DIMS:
        raise ValueError(f"{where}: {len(dims)} dimensions; APR allows {MAX_DIMS}")
    if any(not 1 <= d < (1 << 64) for d in dims):
        raise ValueError(f"{where}: shape {dims} has a zero, negative or over-u64 dimension")
    view = memoryview(data)
    if not view.c_contiguous:
        raise ValueError(f"{where}: the data buffer is not contiguous")
    view = view.cast("B")
    expected = tensor_nbytes(key, dims)
    if len(view) != expected:
        raise ValueError(f"{where}: {len(view)} bytes given; {key} {dims} takes {expected}")
    return name_b, key, dims, view


class _CrcWriter:
    """Hashes what it writes (for the footer) and tracks the position (for padding)."""

    def __init__(self, f):
        self.f, self.crc, self.written = f, 0, 0

    def write(self, b):
        self.f.write(b)
        self.crc = zlib.crc32(b, self.crc)
        self.written += len(b)

    def pad(self):
        self.write(bytes(_align_up(self.written) - self.written))


def write_apr_to(f, metadata, tensors):
    """Streams an APR v2 file to the binary file object `f`; returns the bytes written."""
    if not isinstance(metadata, dict):
        raise TypeError("APR metadata must be a dict (a JSON object)")
    entries = sorted((_check_tensor(*t) for t in tensors), key=lambda e: e[0])
    for a, b in zip(entries, entries[1:]):
        if a[0] == b[0]:
            raise ValueError(f"APR tensor `{a[0].decode()}` is declared twice")
    if len(entries) > MAX_TENSORS:
        raise ValueError(f"{len(entries)} tensors; the reader's cap is {MAX_TENSORS}")

    js = to_json(metadata).encode("utf-8")  # strict: a lone surrogate fails here
    if len(js) >= 1 << 32:
        raise ValueError(f"{len(js)} bytes of metadata JSON do not fit the u32 size field")
    index_offset = _align_up(HEADER_LEN + len(js))

    index = bytearray()
    relative = 0
    for name_b, key, dims, view in entries:
        index += struct.pack("<H", len(name_b)) + name_b
        index += struct.pack("<BB", DTYPES[key][0], len(dims))
        index += struct.pack(f"<{len(dims)}Q", *dims)
        index += struct.pack("<QQ", relative, len(view))
        relative = _align_up(relative + len(view))
    data_offset = _align_up(index_offset + len(index))

    header = bytearray(HEADER_LEN)
    struct.pack_into(
        "<4sBBHIQIQQ", header, 0,
        MAGIC, *VERSION, _flags(metadata, [e[1] for e in entries]), len(entries),
        HEADER_LEN, len(js), index_offset, data_offset,
    )
    crc = zlib.crc32(header[HEADER_CRC_AT + 4:], zlib.crc32(header[:HEADER_CRC_AT]))
    struct.pack_into("<I", header, HEADER_CRC_AT, crc)

    out = _CrcWriter(f)
    out.write(bytes(header))
    out.write(js)
    out.pad()
    out.write(bytes(index))
    out.pad()
    for *_, view in entries:
        out.write(view)
        out.pad()
    footer = struct.pack("<I", out.crc)
    out.write(footer)
    return out.written


def apr_bytes(metadata, tensors):
    """The whole APR v2 file in memory."""
    buf = io.BytesIO()
    write_apr_to(buf, metadata, tensors)
    return buf.getvalue()


def write_apr(path, metadata, tensors):
    """Writes an APR v2 file at `path` atomically (temp file in the same directory, fsync,
    os.replace), so a crash never leaves a half-written fixture. Returns the bytes written.

    `tensors` is a list of (name, dtype, dims, data): dtype one of DTYPES' names, dims
    row-major outermost first ([out, in] for a linear weight), data exactly
    `tensor_nbytes(dtype, dims)` bytes (any contiguous buffer).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".apr-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            n = write_apr_to(f, metadata, tensors)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return n


# --------------------------------------------------------------------------------------------
# Parity fixture and self-test
# --------------------------------------------------------------------------------------------


def _filler(n, seed):
    """Deterministic bytes, the formula of engine/src/format/apr/tests.rs (`filler`)."""
    return ((np.arange(n, dtype=np.uint64) % 256 * 31 + seed) % 256).astype(np.uint8).tobytes()


# (name, dtype, dims) of the parity fixture: every dtype, a scalar, 1-3 dims, rows padded to
# whole super-blocks, a partial APR-q4 block, names whose byte order differs from insertion
# order and from case-insensitive order.
PARITY_TENSORS = [
    ("token_embd.weight", "F32", [4, 3]),
    ("blk.0.attn_norm.weight", "F16", [5]),
    ("blk.0.attn_q.weight", "BF16", [2, 3]),
    ("Zeta.f64", "F64", [3]),
    ("blk.0.ffn_gate.weight", "I32", [2, 2, 2]),
    ("blk.0.ffn_up.weight", "I64", [3]),
    ("alpha.i8", "I8", [7]),
    ("alpha.u8", "U8", []),
    ("blk.0.ffn_down.weight", "Q4_K", [1, 300]),
    ("output.weight", "Q6_K", [1, 256]),
    ("blk.0.attn_k.weight", "APR_Q4", [3, 11]),
    ("blk.0.attn_v.weight", "APR_Q8", [5, 5]),
]

# Mirrored literally in engine/tests/apr_python_parity.rs; covers every JSON spelling we emit.
PARITY_METADATA = {
    "architecture": "llama",
    "name": "parity \"quoted\" \\ back\nslash\t\u0001 caf\u00e9 \u2603",
    "hidden_size": 8,
    "num_layers": 1,
    "vocab_size": 4,
    "big": 18446744073709551615,
    "neg": -9223372036854775808,
    "rms_norm_eps": 1e-06,
    "layer_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "rope_theta_big": 1000000.0,
    "floats": [0.1, -0.0, 0.0, 1.5e-07, 1e16, 1e15, 123.456, 1.2345678901234567e17, 0.0001,
               5e-324, 1.7976931348623157e308, 2.5, -3e-05, 4096.0],
    "flag": True,
    "off": False,
    "nothing": None,
    "tokenizer": {
        "vocabulary": ["<s>", "</s>", "a", "b"],
        "model_type": "bpe",
        "merges": ["a b"],
        "eos_token_id": 1,
        "bos_token_id": 0,
    },
}


def parity_fixture():
    tensors = [
        (name, dtype, dims, _filler(tensor_nbytes(dtype, dims), seed))
        for seed, (name, dtype, dims) in enumerate(PARITY_TENSORS)
    ]
    return PARITY_METADATA, tensors


def _read_back(blob):
    """An independent minimal reader: checks both CRCs and the layout, returns (header fields,
    metadata, {name: (code, dims, bytes)})."""
    magic, major, minor, flags, count, m_off, m_size, i_off, d_off, crc = struct.unpack_from(
        "<4sBBHIQIQQI", blob, 0)
    assert magic == MAGIC and (major, minor) == VERSION and m_off == HEADER_LEN
    assert crc == zlib.crc32(blob[:40] + blob[44:64]) and blob[44:64] == bytes(20)
    assert struct.unpack_from("<I", blob, len(blob) - 4)[0] == zlib.crc32(blob[:-4])
    assert i_off % ALIGN == 0 and d_off % ALIGN == 0 and (len(blob) - 4) % ALIGN == 0
    assert blob[HEADER_LEN + m_size:i_off] == bytes(i_off - HEADER_LEN - m_size)
    meta = json.loads(blob[HEADER_LEN:HEADER_LEN + m_size])
    pos, out, names = i_off, {}, []
    for _ in range(count):
        (nlen,) = struct.unpack_from("<H", blob, pos)
        name = blob[pos + 2:pos + 2 + nlen].decode()
        pos += 2 + nlen
        code, ndim = struct.unpack_from("<BB", blob, pos)
        dims = list(struct.unpack_from(f"<{ndim}Q", blob, pos + 2))
        off, size = struct.unpack_from("<QQ", blob, pos + 2 + 8 * ndim)
        pos += 2 + 8 * ndim + 16
        assert off % ALIGN == 0
        out[name] = (code, dims, blob[d_off + off:d_off + off + size])
        names.append(name.encode())
    assert names == sorted(names) and blob[pos:d_off] == bytes(d_off - pos)
    return dict(flags=flags, count=count), meta, out


def _self_test():
    rng = np.random.default_rng(7)

    # --- JSON spellings (serde_json 1.0.154's, taken from its output) ---
    cases = [  # pairs, not a dict: -0.0 == 0.0 as a key
        (1e-06, "1e-6"), (1e-05, "0.00001"), (10000.0, "10000.0"), (1000000.0, "1000000.0"),
        (0.1, "0.1"), (-0.0, "-0.0"), (0.0, "0.0"), (1.5e-07, "1.5e-7"), (1e16, "1e+16"),
        (1e15, "1000000000000000.0"), (123.456, "123.456"), (0.0001, "0.0001"),
        (1.2345678901234567e17, "1.2345678901234566e+17"), (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"), (2.5, "2.5"), (-3e-05, "-0.00003"),
        (4096.0, "4096.0"), (1234567890123456.7, "1234567890123456.8"),
    ]
    for f, want in cases:
        got = _json_float(f)
        assert got == want, (f, got, want)
        assert float(got) == f
    nested = {"b": [1, "x\n"], "a": {"d": None, "c": True}}
    assert to_json(nested) == '{"a":{"c":true,"d":null},"b":[1,"x\\n"]}'
    for bad in (float("nan"), float("inf"), 1 << 64, -(1 << 63) - 1):
        try:
            to_json(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"{bad!r} accepted")

    # --- APR-q4 ---
    x = rng.standard_normal(100).astype(np.float32)
    x[32:64] = 0  # an all-zero block: scale 1.0, every nibble 8
    q4 = quantize_apr_q4(x)
    assert len(q4) == 4 * 18
    y = dequantize_apr_q4(q4, x.size)
    blocks = np.frombuffer(q4, np.uint8).reshape(4, 18)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32).reshape(-1)
    assert d[1] == 1.0 and np.all(blocks[1, 2:] == 0x88) and np.all(y[32:64] == 0)
    for b in (0, 2, 3):
        seg = slice(32 * b, min(32 * (b + 1), x.size))
        assert d[b] == np.float32(np.float16(np.abs(x[seg]).max() / np.float32(7)))
        # Nearest grid point, except where the f16 scale rounded down and the clamp bites.
        err = np.abs(y[seg] - x[seg])
        inside = np.abs(x[seg] / d[b]) <= 7
        assert np.all(err[inside] <= d[b] / 2 * (1 + 1e-6))
    assert np.all(blocks[3, 2 + 2:] == 0x88), "padding elements are zero-valued (nibble 8)"
    # Element i in byte i//2, even i low nibble; ties round away from zero.
    t = np.zeros(32, np.float32)
    t[0], t[1], t[2], t[3] = 7.0, -7.0, 2.5, -2.5  # d = 1.0 exactly
    tb = np.frombuffer(quantize_apr_q4(t), np.uint8)
    assert tb[0:2].view("<f2")[0] == 1.0
    assert tb[2] == (15 | (1 << 4)) and tb[3] == ((8 + 3) | ((8 - 3) << 4)), tb[2:4]

    # --- APR-q8 ---
    x = rng.standard_normal(45).astype(np.float32)
    q8 = quantize_apr_q8(x)
    assert len(q8) == 4 + 45
    scale = np.frombuffer(q8[:4], "<f4")[0]
    assert scale == np.abs(x).max() / np.float32(127)
    y = dequantize_apr_q8(q8, 45)
    assert np.all(np.abs(y - x) <= scale / 2 * (1 + 1e-6))
    assert quantize_apr_q8(np.zeros(3))[:4] == struct.pack("<f", 1.0)
    # Scale 1.0: ties go away from zero, and 0.49999997 must not round up (see _round_half_away).
    s = quantize_apr_q8(np.array([127, 0.5, -0.5, 1.5, 0.49999997], np.float32))
    assert list(np.frombuffer(s[4:], np.int8)) == [127, 1, -1, 2, 0]
    for dtype, quantize in (("APR_Q4", quantize_apr_q4), ("APR_Q8", quantize_apr_q8)):
        assert len(quantize(np.ones((3, 11)))) == tensor_nbytes(dtype, [3, 11])

    # --- Writer: every dtype, read back by the minimal reader and by the Rust harness ---
    metadata, tensors = parity_fixture()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "every_dtype.apr")
        n = write_apr(path, metadata, tensors)
        blob = open(path, "rb").read()
        assert n == len(blob) and blob == apr_bytes(metadata, tensors)
        assert os.listdir(tmp) == ["every_dtype.apr"], "temp file left behind"
        head, meta, got = _read_back(blob)
        assert head["flags"] == FLAG_LAYOUT_ROW_MAJOR | FLAG_HAS_VOCAB | FLAG_QUANTIZED
        assert meta == json.loads(json.dumps(metadata))
        for name, dtype, dims, data in tensors:
            assert got[name] == (DTYPES[dtype][0], dims, data), name

        # Flags without vocabulary or quantized tensors.
        plain = apr_bytes({"architecture": "llama"}, [("a", "F32", [2], bytes(8))])
        assert _read_back(plain)[0]["flags"] == FLAG_LAYOUT_ROW_MAJOR
        # Size validation.
        try:
            apr_bytes({}, [("w", "Q4_K", [2, 257], bytes(2 * 144))])
        except ValueError:
            pass
        else:
            raise AssertionError("a Q4_K row of 257 needs 2 super-blocks")

        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        harness = os.path.join(root, "target", "debug", "harness")
        if os.path.exists(harness):
            r = subprocess.run([harness, "inspect", path, "--json"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            report = json.loads(r.stdout)
            # Rust names dtypes ggml-style (`q4_K`, `apr_q4`); compare case-insensitively.
            seen = [(t["name"], t["dtype"].upper(), t["shape"]) for t in report["tensors"]]
            want = sorted([(n, dt, dims) for n, dt, dims, _ in tensors],
                          key=lambda t: t[0].encode())
            assert seen == want, (seen, want)
            print(f"harness inspect agrees on {len(seen)} tensors")
        else:
            print("target/debug/harness not built; skipped the Rust read-back")
    print("apr_write self-test passed")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--parity":
        md, ts = parity_fixture()
        print(f"wrote {write_apr(sys.argv[2], md, ts)} bytes to {sys.argv[2]}")
    elif len(sys.argv) == 1:
        _self_test()
    else:
        sys.exit(__doc__)
