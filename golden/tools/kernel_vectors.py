"""Kernel test vectors for the quantized-weight kernels, produced by ggml itself (through ctypes) and
gguf-py, never by our own math.

One safetensors file per GGML type, `<type>.safetensors` (lowercase ggml names):

weight types (f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k):
  input              f32 [8, 512]       rows 0-3: 0.1 + 2·cos(i + r) (ggml's own test data), rows 4-7:
                                        seeded numpy data, mixed magnitudes, exact zeros, zero blocks
  quantized          u8  [8, row_bytes] ggml_quantize_chunk(type, input, dst, 0, 8, 512, imatrix=NULL)
  dequantized        f32 [8, 512]       gguf.quants.dequantize(quantized, type)  (gguf-py, numpy)
  dequantized_ggml   f32 [8, 512]       ggml_get_type_traits(type)->to_float(quantized)
  dot_activation_input      f32 [4, 512]  the activation rows (same as ACTIVATIONS below)
  dot_activation_quantized  u8  [4, act_row_bytes]  ggml_get_type_traits_cpu(vec_dot_type)->from_float
  dot                f32 [8, 4]         ggml_get_type_traits_cpu(type)->vec_dot(512, quantized[r],
                                        dot_activation_quantized[a]) — what llama.cpp's CPU matmul
                                        computes per output element (non-repacked path)

activation types (q8_0 — also a weight type, same file —, q8_1, q8_k):
  activation_input          f32 [4, 512]  rows: cos data, exact round-half cases, random mixed, edge
  activation_quantized      u8  [4, row_bytes]  ggml_get_type_traits_cpu(type)->from_float, the path
                                        llama.cpp uses for activations
  activation_quantized_ref  u8  [4, row_bytes]  ggml_get_type_traits(type)->from_float_ref
                                        (quantize_row_q8_*_ref, the reference quantizer)
  activation_dequantized_ggml  f32 [4, 512]  to_float(activation_quantized), where ggml has one
  activation_dequantized    f32 [4, 512]  gguf-py dequantize(activation_quantized), where it has one

Everything else (versions, commit, CPU features, which function produced which tensor, whether
ggml's to_float equals gguf-py bit for bit, whether from_float equals the reference quantizer) is in
the safetensors `__metadata__` (string values; keys written in sorted order so that files are
byte-identical run to run).

    python kernel_vectors.py OUT_DIR

The ggml libraries are llama-cpp-python's (`llama_cpp/lib/`), or those in $ASSAY_GGML_LIB_DIR.
Values of `dot` and `activation_quantized` depend on the CPU code path ggml was built for (recorded
in `cpu_features`); the other tensors come from ggml's portable reference code.
"""

import ctypes
import ctypes.util
import importlib.metadata
import importlib.util
import os
import sys

import numpy as np

import st

# enum ggml_type (ggml/include/ggml.h); checked against ggml_type_name and gguf-py at load time.
GGML_TYPE = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q8_1": 9,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15, "BF16": 30,
}
WEIGHT_TYPES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
ACTIVATION_TYPES = ["Q8_0", "Q8_1", "Q8_K"]

ROWS = 8          # weight rows: 4 cos rows + 4 random rows
N = 512           # elements per row: two K-quant super-blocks, 16 blocks of 32
SEED = 20240607   # numpy default_rng seed of the random weight / activation rows

WEIGHT_FORMULA = (
    "rows 0-3: x[r][i] = float32(0.1 + 2*cos(i + r)) (numpy float64, then f32), as ggml's "
    "test-quantize-fns; rows 4-7: numpy.random.default_rng(%d) normal values times a per-32-block "
    "magnitude in {1e-3,1e-2,0.1,1,10,100}, ~10%% exact zeros; row 4 block 0 all zero, row 5 block 3 "
    "all positive and block 4 all negative, row 6 block 5 a single nonzero and block 6 constant, "
    "row 7 elements 256..511 all zero (a zero super-block)" % SEED)
Q8K_BSUMS_NOTE = (
    "ggml's quantize_row_q8_K(_ref) writes d = 0 and zero quants for an all-zero super-block but "
    "leaves its bsums unwritten (irrelevant since d = 0); they are stored here as 0")
ACTIVATION_FORMULA = (
    "row 0: float32(0.1 + 2*cos(i + 1)) (ggml's second test vector); row 1: exact round-half cases: "
    "super-block s (256 elements) uses scale 2^(s-1); each 32-block holds one element +-127*scale "
    "(so d = scale and 1/d are exact) and otherwise (m + 0.5)*scale, m integer in [-127, 126], plus "
    "+-0.5, +-1.5, +-2.5 and integers; row 2: default_rng(%d + 1) mixed magnitudes, ~10%% zeros, "
    "block 2 all zero, elements 256..511 all zero; row 3: edge magnitudes per block (1e-6 .. 2.5e4: "
    "f16 underflow / subnormal scales), a constant block, an alternating +-v block, a single-"
    "nonzero block" % SEED)


# ---------------------------------------------------------------------------------------------
# ggml through ctypes

class _TypeTraits(ctypes.Structure):
    """struct ggml_type_traits (ggml.h)."""
    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),        # ggml_to_float_t
        ("from_float_ref", ctypes.c_void_p),  # ggml_from_float_t
    ]


class _TypeTraitsCpu(ctypes.Structure):
    """struct ggml_type_traits_cpu (ggml-cpu.h)."""
    _fields_ = [
        ("from_float", ctypes.c_void_p),      # ggml_from_float_t
        ("vec_dot", ctypes.c_void_p),         # ggml_vec_dot_t
        ("vec_dot_type", ctypes.c_int),       # enum ggml_type
        ("nrows", ctypes.c_int64),
    ]


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


_F32P = ctypes.POINTER(ctypes.c_float)
# typedef void (*ggml_to_float_t)  (const void * x, float * y, int64_t k);
TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _F32P, ctypes.c_int64)
# typedef void (*ggml_from_float_t)(const float * x, void * y, int64_t k);
FROM_FLOAT = ctypes.CFUNCTYPE(None, _F32P, ctypes.c_void_p, ctypes.c_int64)
# typedef void (*ggml_vec_dot_t)(int n, float * s, size_t bs, const void * x, size_t bx,
#                                const void * y, size_t by, int nrc);
VEC_DOT = ctypes.CFUNCTYPE(None, ctypes.c_int, _F32P, ctypes.c_size_t, ctypes.c_void_p,
                           ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)

CPU_FEATURES = ["sse3", "ssse3", "avx", "avx_vnni", "avx2", "bmi2", "f16c", "fma", "avx512",
                "avx512_vbmi", "avx512_vnni", "avx512_bf16", "amx_int8", "neon", "arm_fma",
                "fp16_va", "dotprod", "matmul_int8", "sve", "llamafile"]


def lib_dir():
    env = os.environ.get("ASSAY_GGML_LIB_DIR")
    if env:
        return env
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.origin:
        sys.exit("llama_cpp (llama-cpp-python) not installed; set ASSAY_GGML_LIB_DIR to ggml's libs")
    return os.path.join(os.path.dirname(spec.origin), "lib")


class Ggml:
    """libggml-base (quantizers, type traits) and libggml-cpu (activation quantizers, vec_dot)."""

    def __init__(self, path=None):
        path = path or lib_dir()
        # base first, RTLD_GLOBAL, so that libggml-cpu resolves its ggml symbols against it
        self.base = ctypes.CDLL(os.path.join(path, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
        self.cpu = ctypes.CDLL(os.path.join(path, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
        b, c = self.base, self.cpu
        for name in ("ggml_version", "ggml_commit"):
            getattr(b, name).argtypes, getattr(b, name).restype = [], ctypes.c_char_p
        b.ggml_type_name.argtypes, b.ggml_type_name.restype = [ctypes.c_int], ctypes.c_char_p
        b.ggml_blck_size.argtypes, b.ggml_blck_size.restype = [ctypes.c_int], ctypes.c_int64
        b.ggml_type_size.argtypes, b.ggml_type_size.restype = [ctypes.c_int], ctypes.c_size_t
        b.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
        b.ggml_row_size.restype = ctypes.c_size_t
        b.ggml_quantize_init.argtypes, b.ggml_quantize_init.restype = [ctypes.c_int], None
        b.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
        b.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
        b.ggml_quantize_chunk.argtypes = [ctypes.c_int, _F32P, ctypes.c_void_p, ctypes.c_int64,
                                          ctypes.c_int64, ctypes.c_int64, _F32P]
        b.ggml_quantize_chunk.restype = ctypes.c_size_t
        b.ggml_get_type_traits.argtypes = [ctypes.c_int]
        b.ggml_get_type_traits.restype = ctypes.POINTER(_TypeTraits)
        c.ggml_cpu_init.argtypes, c.ggml_cpu_init.restype = [], None
        c.ggml_get_type_traits_cpu.argtypes = [ctypes.c_int]
        c.ggml_get_type_traits_cpu.restype = ctypes.POINTER(_TypeTraitsCpu)
        c.ggml_cpu_init()  # fp16 tables, CPU feature detection

        self.unwritten = {}  # type → number of blocks whose bytes from_float left unwritten
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        self.libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
        self.libc.dladdr.restype = ctypes.c_int
        self._check_enum()

    def _check_enum(self):
        import gguf
        for name, value in GGML_TYPE.items():
            got = self.base.ggml_type_name(value).decode()
            if got.lower() != name.lower():
                raise RuntimeError(f"ggml_type_name({value}) = {got!r}, expected {name.lower()!r}")
            if gguf.GGMLQuantizationType[name].value != value:
                raise RuntimeError(f"gguf-py disagrees on the id of {name}")
            if name == "Q8_1":  # gguf-py 0.19 still lists the old f32 d/s layout: (32, 40) ≠ 36
                continue
            blck, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]]
            if (self.base.ggml_blck_size(value), self.base.ggml_type_size(value)) != (blck, size):
                raise RuntimeError(f"block size/bytes of {name} differ between ggml and gguf-py")

    # --- info ---
    def version(self):
        return self.base.ggml_version().decode(), self.base.ggml_commit().decode()

    def cpu_features(self):
        out = []
        for f in CPU_FEATURES:
            fn = getattr(self.cpu, "ggml_cpu_has_" + f, None)
            if fn is not None:
                fn.argtypes, fn.restype = [], ctypes.c_int
                out.append(f"{f}={fn()}")
        return ",".join(out)

    def symbol(self, address):
        """Exported name of a function pointer (dladdr), for the metadata."""
        info = _DlInfo()
        if address and self.libc.dladdr(ctypes.c_void_p(address), ctypes.byref(info)) and \
                info.dli_sname and info.dli_saddr == address:
            return info.dli_sname.decode()
        return "unexported function at %s+0x%x" % (
            os.path.basename(info.dli_fname.decode()) if info.dli_fname else "?",
            (address or 0) - (info.dli_fbase or 0))

    def traits(self, t):
        return self.base.ggml_get_type_traits(t).contents

    def traits_cpu(self, t):
        return self.cpu.ggml_get_type_traits_cpu(t).contents

    def _exported(self, symbol):
        fn = getattr(self.base, symbol, None)
        return ctypes.cast(fn, ctypes.c_void_p).value if fn is not None else None

    def to_float_ptr(self, t):
        """traits->to_float, else the exported dequantize_row_<type> (Q8_K has no to_float)."""
        name = self.base.ggml_type_name(t).decode()
        return self.traits(t).to_float or self._exported("dequantize_row_" + name)

    def from_float_ref_ptr(self, t):
        """traits->from_float_ref, else the exported quantize_row_<type>_ref (Q8_K has none)."""
        name = self.base.ggml_type_name(t).decode()
        return self.traits(t).from_float_ref or self._exported(f"quantize_row_{name}_ref")

    def row_size(self, t, n):
        return int(self.base.ggml_row_size(t, n))

    # --- operations (every buffer is a local numpy array, alive for the whole call) ---
    def quantize_chunk(self, t, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows, n = x.shape
        if self.base.ggml_quantize_requires_imatrix(t):
            raise RuntimeError(f"type {t} needs an imatrix")
        self.base.ggml_quantize_init(t)
        rs = self.row_size(t, n)
        results = []
        for fill in (0x00, 0xFF):  # a byte left unwritten would show up as a difference
            dst = np.full((rows, rs), fill, dtype=np.uint8)
            written = self.base.ggml_quantize_chunk(t, x.ctypes.data_as(_F32P),
                                                    dst.ctypes.data_as(ctypes.c_void_p), 0, rows,
                                                    n, None)
            if written != rows * rs:
                raise RuntimeError(f"ggml_quantize_chunk({t}) wrote {written}, expected {rows * rs}")
            results.append(dst)
        if not np.array_equal(*results):
            raise RuntimeError(f"ggml_quantize_chunk({t}) leaves bytes unwritten")
        return results[0]

    def to_float(self, t, q, n):
        fn_ptr = self.to_float_ptr(t)
        if not fn_ptr:
            return None
        q = np.ascontiguousarray(q, dtype=np.uint8)
        out = np.zeros((q.shape[0], n), dtype=np.float32)
        TO_FLOAT(fn_ptr)(q.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(_F32P),
                         q.shape[0] * n)
        return out

    def _from_float(self, fn_ptr, t, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows, n = x.shape
        rs = self.row_size(t, n)
        results = []
        for fill in (0x00, 0xFF):
            dst = np.full((rows, rs), fill, dtype=np.uint8)
            fn = FROM_FLOAT(fn_ptr)
            for r in range(rows):  # row by row, as ggml's matmul converts activations
                fn(x[r].ctypes.data_as(_F32P), dst[r].ctypes.data_as(ctypes.c_void_p), n)
            results.append(dst)
        unwritten = results[0] != results[1]
        if unwritten.any():
            # quantize_row_q8_K_ref leaves bsums of an all-zero super-block unwritten (d = 0 makes
            # them irrelevant); anything else would be a surprise
            ts = self.base.ggml_type_size(t)
            blocks = unwritten.reshape(-1, ts)
            if t != GGML_TYPE["Q8_K"] or blocks[:, :260].any() or \
                    results[0].reshape(-1, ts)[blocks.any(axis=1), :260].any():
                raise RuntimeError(f"from_float of type {t} leaves bytes unwritten")
            self.unwritten[t] = int(blocks.any(axis=1).sum())
        return results[0]

    def from_float_cpu(self, t, x):
        fn = self.traits_cpu(t).from_float
        return None if not fn else self._from_float(fn, t, x)

    def from_float_ref(self, t, x):
        fn = self.from_float_ref_ptr(t)
        return None if not fn else self._from_float(fn, t, x)

    def vec_dot(self, t, wq, aq, n):
        """s[r, a] = vec_dot(n, wq[r], aq[a]) with the CPU traits of weight type t (nrc = 1)."""
        tr = self.traits_cpu(t)
        if not tr.vec_dot:
            return None
        if tr.nrows != 1:
            raise RuntimeError(f"vec_dot of type {t} processes {tr.nrows} rows; only 1 is handled")
        fn = VEC_DOT(tr.vec_dot)
        wq = np.ascontiguousarray(wq, dtype=np.uint8)
        aq = np.ascontiguousarray(aq, dtype=np.uint8)
        out = np.zeros((wq.shape[0], aq.shape[0]), dtype=np.float32)
        s = np.zeros(1, dtype=np.float32)
        for r in range(wq.shape[0]):
            for a in range(aq.shape[0]):
                fn(n, s.ctypes.data_as(_F32P), 0, wq[r].ctypes.data_as(ctypes.c_void_p), 0,
                   aq[a].ctypes.data_as(ctypes.c_void_p), 0, 1)
                out[r, a] = s[0]
        return out


# ---------------------------------------------------------------------------------------------
# data

def _cos_row(offset):
    return (0.1 + 2.0 * np.cos(np.arange(N, dtype=np.float64) + offset)).astype(np.float32)


def _random_rows(rng, rows):
    mags = np.array([1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0])
    x = rng.standard_normal((rows, N))
    x *= np.repeat(mags[rng.integers(0, len(mags), (rows, N // 32))], 32, axis=1)
    x[rng.random((rows, N)) < 0.1] = 0.0
    return x


def weight_input():
    x = np.zeros((ROWS, N), dtype=np.float64)
    for r in range(4):
        x[r] = _cos_row(r)
    rng = np.random.default_rng(SEED)
    x[4:] = _random_rows(rng, 4)
    x[4, 0:32] = 0.0                              # zero block
    x[5, 96:128] = np.abs(x[5, 96:128]) + 0.25    # all positive
    x[5, 128:160] = -np.abs(x[5, 128:160]) - 0.25  # all negative
    x[6, 160:192] = 0.0
    x[6, 170] = -3.75                             # single nonzero
    x[6, 192:224] = 1.3                           # constant
    x[7, 256:512] = 0.0                           # zero super-block
    return x.astype(np.float32)


def activation_input():
    a = np.zeros((4, N), dtype=np.float64)
    a[0] = _cos_row(1.0)
    # exact round-half cases
    rng = np.random.default_rng(SEED + 1)
    for b in range(N // 32):
        scale = 2.0 ** (b // 8 - 1)               # constant per super-block (Q8_K's scale)
        m = rng.integers(-127, 127, 32).astype(np.float64) + 0.5
        m[1:7] = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5]
        m[7:9] = [3.0, -4.0]
        m[b % 32 if b % 32 >= 9 else 9 + b] = 127.0 if b % 2 == 0 else -127.0
        a[1, 32 * b:32 * b + 32] = m * scale
    a[2] = _random_rows(rng, 1)[0]
    a[2, 64:96] = 0.0
    a[2, 256:512] = 0.0
    mags = [1e-6, 1e-5, 3e-4, 0.37, 3.0, 17.3, 2e3, 2.5e4]
    for b in range(N // 32):
        a[3, 32 * b:32 * b + 32] = rng.standard_normal(32) * mags[b % len(mags)]
    a[3, 8 * 32:9 * 32] = -0.7                    # constant block
    a[3, 9 * 32:10 * 32] = 0.9 * np.tile([1.0, -1.0], 16)
    a[3, 10 * 32:11 * 32] = 0.0
    a[3, 10 * 32 + 17] = 5.5                      # single nonzero
    return a.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# files

def _bit_equal(a, b):
    return a is not None and b is not None and a.shape == b.shape and \
        np.array_equal(a.view(np.uint32), b.view(np.uint32))


def _ulp_diff(a, b):
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return int(np.abs(ia - ib).max())


def _gguf_dequantize(q, name):
    import gguf
    try:
        return np.asarray(gguf.quants.dequantize(q, gguf.GGMLQuantizationType[name]),
                          dtype=np.float32)
    except NotImplementedError:
        return None


def _versions(g):
    ver, commit = g.version()
    meta = {"ggml_version": ver, "ggml_commit": commit, "cpu_features": g.cpu_features()}
    for dist in ("llama_cpp_python", "gguf", "numpy", "safetensors"):
        try:
            meta[dist + "_version"] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            meta[dist + "_version"] = "unknown"
    return meta


def make(out_dir):
    """Write `<type>.safetensors` for every weight and activation type into out_dir; returns the
    file names written."""
    os.makedirs(out_dir, exist_ok=True)
    g = Ggml()
    common = _versions(g)
    common["format"] = "assay-kernel-vectors/1"
    x = weight_input()
    act = activation_input()
    written = []
    summary = {}

    for name in dict.fromkeys(WEIGHT_TYPES + ACTIVATION_TYPES):
        t = GGML_TYPE[name]
        tensors, meta = {}, dict(common)
        meta.update(type=name.lower(), ggml_type_id=str(t), block_size=str(g.base.ggml_blck_size(t)),
                    type_size=str(g.base.ggml_type_size(t)), n_per_row=str(N))
        info = summary.setdefault(name, {})

        if name in WEIGHT_TYPES:
            q = g.quantize_chunk(t, x)
            deq = _gguf_dequantize(q, name)
            deq_ggml = g.to_float(t, q, N)
            if deq is None:
                raise RuntimeError(f"gguf-py cannot dequantize {name}")
            tensors.update(input=x, quantized=q, dequantized=deq.reshape(ROWS, N))
            meta.update(rows=str(ROWS), row_bytes=str(q.shape[1]), input_formula=WEIGHT_FORMULA,
                        **{"tensor.input": "numpy (see input_formula)",
                           "tensor.quantized": "ggml_quantize_chunk(%s, input, dst, 0, %d, %d, "
                           "imatrix=NULL) [libggml-base]" % (name, ROWS, N),
                           "tensor.dequantized": "gguf.quants.dequantize(quantized, "
                           "GGMLQuantizationType.%s) [gguf-py]" % name})
            if deq_ggml is not None:
                tensors["dequantized_ggml"] = deq_ggml
                exact = _bit_equal(deq.reshape(ROWS, N), deq_ggml)
                meta["tensor.dequantized_ggml"] = "ggml_get_type_traits(%s)->to_float = %s " \
                    "[libggml-base]" % (name, g.symbol(g.to_float_ptr(t)))
                meta["dequantized_ggml_bit_exact"] = str(exact).lower()
                if not exact:
                    meta["dequantized_ggml_max_ulp"] = str(_ulp_diff(deq.reshape(ROWS, N), deq_ggml))
                info["to_float==gguf-py"] = meta["dequantized_ggml_bit_exact"] + \
                    ("" if exact else " (max %s ulp)" % meta["dequantized_ggml_max_ulp"])
            else:
                info["to_float==gguf-py"] = "no to_float"

            tc = g.traits_cpu(t)
            vt = tc.vec_dot_type
            vname = g.base.ggml_type_name(vt).decode()
            aq = g.from_float_cpu(vt, act)
            dot = g.vec_dot(t, q, aq, N) if aq is not None else None
            if dot is None:
                meta["dot"] = "vec_dot not reachable"
                info["dot"] = "skipped"
            else:
                tensors.update(dot=dot, dot_activation_input=act, dot_activation_quantized=aq)
                meta.update(**{
                    "dot_activation_type": vname,
                    "activation_formula": ACTIVATION_FORMULA,
                    "tensor.dot_activation_input": "numpy (see activation_formula)",
                    "tensor.dot_activation_quantized": "ggml_get_type_traits_cpu(%s)->from_float = "
                    "%s, row by row [libggml-cpu]" % (vname.upper(), g.symbol(g.traits_cpu(vt).from_float)),
                    "tensor.dot": "dot[r][a] = ggml_get_type_traits_cpu(%s)->vec_dot = %s (n=%d, "
                    "quantized[r], dot_activation_quantized[a], nrc=1) [libggml-cpu]"
                    % (name, g.symbol(tc.vec_dot), N),
                })
                info["dot"] = "%s x %s" % (g.symbol(tc.vec_dot), vname)
                if vt in g.unwritten:
                    meta["note_q8_k_bsums"] = Q8K_BSUMS_NOTE

        if name in ACTIVATION_TYPES:
            cpu_q = g.from_float_cpu(t, act)
            ref_q = g.from_float_ref(t, act)
            tensors.update(activation_input=act, activation_quantized=cpu_q)
            meta.update(activation_rows=str(act.shape[0]), activation_row_bytes=str(cpu_q.shape[1]),
                        activation_formula=ACTIVATION_FORMULA, **{
                            "tensor.activation_input": "numpy (see activation_formula)",
                            "tensor.activation_quantized": "ggml_get_type_traits_cpu(%s)->from_float"
                            " = %s, row by row [libggml-cpu] (llama.cpp's activation path)"
                            % (name, g.symbol(g.traits_cpu(t).from_float))})
            if ref_q is not None:
                tensors["activation_quantized_ref"] = ref_q
                meta["tensor.activation_quantized_ref"] = "%s = %s, row by row [libggml-base] " \
                    "(reference quantizer)" % ("ggml_get_type_traits(%s)->from_float_ref" % name
                                               if g.traits(t).from_float_ref else "exported symbol",
                                               g.symbol(g.from_float_ref_ptr(t)))
                same = np.array_equal(cpu_q, ref_q)
                meta["activation_cpu_equals_ref"] = str(same).lower()
                if not same:
                    bs, ts = g.base.ggml_blck_size(t), g.base.ggml_type_size(t)
                    blocks = (cpu_q.reshape(-1, ts) != ref_q.reshape(-1, ts)).any(axis=1)
                    meta["activation_cpu_vs_ref_differing_blocks"] = "%d of %d (block = %d elements)" \
                        % (int(blocks.sum()), blocks.size, bs)
                    rows = sorted({int(i) // (N // bs) for i in np.flatnonzero(blocks)})
                    meta["activation_cpu_vs_ref_differing_rows"] = ",".join(map(str, rows))
                info["from_float==ref"] = meta["activation_cpu_equals_ref"] + \
                    ("" if same else " (%s; rows %s)" % (meta["activation_cpu_vs_ref_differing_blocks"],
                                                        meta["activation_cpu_vs_ref_differing_rows"]))
            if t in g.unwritten:
                meta["note_q8_k_bsums"] = Q8K_BSUMS_NOTE
            if name == "Q8_0":
                chunk = g.quantize_chunk(t, act)
                meta["activation_ref_equals_quantize_chunk"] = str(np.array_equal(chunk, ref_q)).lower()
            deq_ggml = g.to_float(t, cpu_q, N)
            if deq_ggml is not None:
                tensors["activation_dequantized_ggml"] = deq_ggml
                meta["tensor.activation_dequantized_ggml"] = "%s = %s (activation_quantized) " \
                    "[libggml-base]" % ("ggml_get_type_traits(%s)->to_float" % name
                                        if g.traits(t).to_float else "exported symbol",
                                        g.symbol(g.to_float_ptr(t)))
            deq = _gguf_dequantize(cpu_q, name)
            if deq is not None:
                tensors["activation_dequantized"] = deq.reshape(act.shape)
                meta["tensor.activation_dequantized"] = "gguf.quants.dequantize(" \
                    "activation_quantized, GGMLQuantizationType.%s) [gguf-py]" % name
                if deq_ggml is not None:
                    meta["activation_dequantized_ggml_bit_exact"] = \
                        str(_bit_equal(deq.reshape(act.shape), deq_ggml)).lower()

        fname = name.lower() + ".safetensors"
        st.save(os.path.join(out_dir, fname), tensors, meta)
        written.append(fname)

    make.summary = summary
    return written


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: kernel_vectors.py OUT_DIR")
    files = make(argv[1])
    total = sum(os.path.getsize(os.path.join(argv[1], f)) for f in files)
    for name, info in make.summary.items():
        print(f"{name:5s} " + "; ".join(f"{k}: {v}" for k, v in info.items()))
    print(f"{len(files)} files, {total} bytes in {argv[1]}")


if __name__ == "__main__":
    main(sys.argv)
