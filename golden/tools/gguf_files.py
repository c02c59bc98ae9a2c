"""GGUF files through llama.cpp's own converter and quantizer, and their dequantized weights
mapped back onto HF parameters with the index-model trick (no per-architecture code)."""

import ctypes
import os
import subprocess
import sys

import numpy as np
import torch
import transformers

import tiny

HERE = os.path.dirname(os.path.abspath(__file__))

# Quantization types by name → llama_ftype.
FTYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"]


def llama_cpp_tree():
    """The vendored llama.cpp of the llama-cpp-python sdist (LLAMA_CPP_DIR)."""
    path = os.environ.get("LLAMA_CPP_DIR")
    if not path or not os.path.isfile(os.path.join(path, "convert_hf_to_gguf.py")):
        sys.exit("set LLAMA_CPP_DIR to llama-cpp-python's vendor/llama.cpp (see golden/README.md)")
    return path


def convert(hf_dir, out_path, outtype):
    """`convert_hf_to_gguf.py hf_dir --outtype outtype`, in a child process (the converter keeps
    global state), with our tokenizer's unknown pre-tokenizer hash mapped to `gpt-2`."""
    tmp = out_path + ".tmp"
    subprocess.run([sys.executable, os.path.join(HERE, "run_converter.py"), llama_cpp_tree(), hf_dir,
                    "--outtype", outtype, "--outfile", tmp], check=True, stdout=subprocess.DEVNULL)
    os.replace(tmp, out_path)


def quantize(src, dst, ftype_name):
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype_name}")
    params.nthread = 1  # one thread: byte-identical output on every run
    tmp = dst + ".tmp"
    rc = llama_cpp.llama_model_quantize(src.encode(), tmp.encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src} → {ftype_name}) returned {rc}")
    os.replace(tmp, dst)


def read_tensors(path):
    """{name: (ggml type name, row-major float64 array)} of a GGUF, dequantized by gguf-py."""
    import gguf
    out = {}
    for t in gguf.GGUFReader(path).tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = [int(d) for d in reversed(t.shape.tolist())]
        out[t.name] = (t.tensor_type.name, np.asarray(values, dtype=np.float64).reshape(shape))
    return out


def build_index_model(arch, out_dir, tokenizer_dir):
    """An F32 checkpoint of `arch` whose every parameter element holds its global flat index
    (exact in f32 below 2^24), converted to an F32 GGUF: where each index lands in the GGUF is
    where that HF element goes — q/k permutation, expert stacking and transposes included."""
    cfg = tiny.config(arch)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    names = sorted(n for n, _ in model.named_parameters())
    offset = 0
    layout = {}
    with torch.no_grad():
        params = dict(model.named_parameters())
        for n in names:
            p = params[n]
            assert offset + p.numel() < 2 ** 24, "index model too large for exact f32 indices"
            p.copy_(torch.arange(offset, offset + p.numel(), dtype=torch.float64).reshape(p.shape))
            layout[n] = (offset, tuple(p.shape))
            offset += p.numel()
    model.save_pretrained(out_dir, safe_serialization=True)
    transformers.PreTrainedTokenizerFast.from_pretrained(tokenizer_dir).save_pretrained(out_dir)
    if arch == "gpt2":
        tiny.patch_gpt2_config(out_dir)
    gguf_path = os.path.join(out_dir, "index.gguf")
    convert(out_dir, gguf_path, "f32")
    index = {name: values.astype(np.int64) for name, (_, values) in read_tensors(gguf_path).items()}
    return index, layout, offset


def hf_state_from_gguf(gguf_path, index, layout, total):
    """The HF state dict (float64) holding the GGUF's dequantized weights."""
    return hf_state_from_tensors({n: v for n, (_, v) in read_tensors(gguf_path).items()}, index, layout, total)


def hf_state_from_tensors(tensors, index, layout, total):
    """The HF state dict (float64) holding `tensors` ({GGUF name: row-major values})."""
    flat = np.full(total, np.nan)
    for name, values in tensors.items():
        idx = index[name]
        if idx.shape != values.shape and tuple(d for d in idx.shape if d != 1) == tuple(d for d in values.shape if d != 1):
            # llama.cpp's quantizer writes ggml_n_dims dims, dropping trailing ones the converter
            # kept: qwen2_moe's ffn_gate_inp_shexp is [1, 256] from the converter, [256] after.
            values = values.reshape(idx.shape)
        assert idx.shape == values.shape, (name, idx.shape, values.shape)
        flat[idx.reshape(-1)] = values.reshape(-1)
    return flat_to_state(flat, layout)


def flat_to_state(flat, layout):
    state = {}
    for name, (offset, shape) in layout.items():
        n = int(np.prod(shape))
        state[name] = torch.from_numpy(flat[offset:offset + n].reshape(shape).copy())
    missing = [n for n, t in state.items() if torch.isnan(t).any()]
    # Tied output: lm_head shares the embedding and has no tensor of its own in the GGUF.
    return state, missing
