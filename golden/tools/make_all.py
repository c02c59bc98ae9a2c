"""Regenerates every golden fixture from nothing.

    LLAMA_CPP_DIR=…/vendor/llama.cpp python golden/tools/make_all.py [--out golden] [--only ARCH…]

For each architecture: a seeded BF16 HF checkpoint; GGUF files through llama.cpp's converter and
quantizer; APR files through our Python writer; float64 per-stage captures from transformers for
the float model and for every distinct set of dequantized weights; llama.cpp's logits for every
GGUF (and its own stages for a few); a manifest with versions, seeds, token ids, sha256 of every
file and which golden belongs to which model file. Kernel test vectors go to golden/kernels.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import apr_write  # noqa: E402
import capture  # noqa: E402
import gguf_files  # noqa: E402
import peer  # noqa: E402
import st  # noqa: E402
import tiny  # noqa: E402

# Which files each architecture gets. GGUF: llama.cpp ftype names (F32/F16/BF16 from the
# converter). APR: F16, APR_Q8, APR_Q4, Q4_K (raw Q4_K/Q6_K blocks of the Q4_K_M file).
EVERY_ARCH = ["Q8_0", "Q4_0", "Q4_K_M", "Q6_K"]
MATRIX = {
    "llama": dict(gguf=["F32", *EVERY_ARCH], apr=["F16", "APR_Q8", "APR_Q4", "Q4_K"], peer_stages=["F32", "Q4_K_M"]),
    "qwen2": dict(gguf=["F16", "BF16", *EVERY_ARCH, "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q5_K_M"]),
    "qwen3": dict(gguf=EVERY_ARCH, apr=["F16", "APR_Q8", "APR_Q4", "Q4_K"]),
    "qwen3_moe": dict(gguf=["F32", *EVERY_ARCH], apr=["F16", "APR_Q8", "APR_Q4", "Q4_K"]),
    "qwen2_moe": dict(gguf=["F32", *EVERY_ARCH]),
    "gpt2": dict(gguf=EVERY_ARCH),
    "phi2": dict(gguf=EVERY_ARCH),
}
CONTRACT = {a: a for a in MATRIX}
# Mixture-of-experts architectures: loaded with the eager (per-expert loop) experts.
MOE = {"qwen3_moe", "qwen2_moe"}

# APR metadata keys (formats.md) from the HF config.
APR_KEYS = dict(hidden_size="hidden_size", num_layers="num_hidden_layers", num_heads="num_attention_heads",
                num_kv_heads="num_key_value_heads", vocab_size="vocab_size", intermediate_size="intermediate_size",
                max_position_embeddings="max_position_embeddings", rms_norm_eps="rms_norm_eps", head_dim="head_dim",
                num_experts="num_experts", num_experts_per_tok="num_experts_per_tok",
                moe_intermediate_size="moe_intermediate_size")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_atomic(tensors, path, metadata=None):
    st.save(path, tensors, metadata)


def load_hf64(hf_dir, arch):
    kwargs = dict(experts_implementation="eager") if arch in MOE else {}
    return transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float64, attn_implementation="eager",
                                                             **kwargs)


def weights_hash(state):
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].numpy().tobytes())
    return h.hexdigest()


class Arch:
    """Everything made for one architecture."""

    def __init__(self, arch, out, tmp, ids, tokenizer_dir):
        self.arch, self.ids, self.tokenizer_dir = arch, ids, tokenizer_dir
        self.dir = os.path.join(out, arch)
        self.tmp = os.path.join(tmp, arch)
        self.hf = os.path.join(self.dir, "hf")
        self.captures = {}  # weights hash → capture file (relative)
        self.models = []  # manifest entries
        for d in (self.dir, self.tmp, os.path.join(self.dir, "captures"), os.path.join(self.dir, "llamacpp")):
            os.makedirs(d, exist_ok=True)

    def rel(self, path):
        return os.path.relpath(path, self.dir)

    def capture_for(self, state, label):
        """The capture of the model on `state` (float64 HF parameters), made once per distinct
        set of weights."""
        key = weights_hash(state)
        if key not in self.captures:
            model = load_hf64(self.hf, self.arch)
            missing = set(dict(model.named_parameters())) - set(state)
            assert not missing, f"{label}: no weights for {sorted(missing)}"
            model.load_state_dict(state, strict=False)
            tensors, dev = capture.capture(model, self.arch, self.ids)
            path = os.path.join(self.dir, "captures", f"{label}.safetensors")
            save_atomic(tensors, path, metadata={"weights": label, "kv_max_abs_diff": repr(dev)})
            self.captures[key] = (self.rel(path), dev)
            print(f"  capture {label}: kv-path max |Δ| {dev:.2e}", flush=True)
        return self.captures[key]

    def run(self):
        arch = self.arch
        print(f"{arch}:", flush=True)
        tiny.build_model(arch, self.hf, self.tokenizer_dir)
        hf_model = load_hf64(self.hf, arch)
        float_state = {n: p.detach().clone() for n, p in hf_model.named_parameters()}
        float_capture, _ = self.capture_for(float_state, "float")
        self.models.append(self.entry(self.hf, "safetensors", "bf16", float_capture))

        index, layout, total = gguf_files.build_index_model(arch, os.path.join(self.tmp, "index"), self.tokenizer_dir)
        f32 = os.path.join(self.tmp, f"{arch}-f32.gguf")
        gguf_files.convert(self.hf, f32, "f32")
        # Round trip: the F32 GGUF mapped back must be the HF weights exactly, or the index
        # mapping (and every dequantized golden) is wrong.
        state, missing = gguf_files.hf_state_from_gguf(f32, index, layout, total)
        assert not missing or set(missing) <= TIED, missing
        for n, t in state.items():
            if n in float_state:
                assert torch.equal(t, float_state[n]), f"F32 round trip differs at {n}"

        spec = MATRIX[arch]
        for q in spec["gguf"]:
            path = os.path.join(self.dir, f"{arch}-{q.lower()}.gguf")
            if q == "F32":
                shutil.copyfile(f32, path)
            elif q in ("F16", "BF16"):
                gguf_files.convert(self.hf, path, q.lower())
            else:
                gguf_files.quantize(f32, path, q)
            state, _ = gguf_files.hf_state_from_gguf(path, index, layout, total)
            cap, _ = self.capture_for(complete(state, float_state), q.lower())
            entry = self.entry(path, "gguf", q.lower(), cap)
            entry["llamacpp"] = self.llamacpp(path, cap, stages=q in spec.get("peer_stages", []))
            self.models.append(entry)

        for q in spec.get("apr", []):
            path = os.path.join(self.dir, f"{arch}-{q.lower()}.apr")
            tensors = self.write_apr(path, q, f32, os.path.join(self.dir, f"{arch}-q4_k_m.gguf"))
            state, _ = gguf_files.hf_state_from_tensors(tensors, index, layout, total)
            cap, _ = self.capture_for(complete(state, float_state), f"apr-{q.lower()}")
            self.models.append(self.entry(path, "apr", q.lower(), cap))
        shutil.rmtree(self.tmp)

    def entry(self, path, fmt, dtype, golden):
        return dict(file=self.rel(path), format=fmt, dtype=dtype, contract=CONTRACT[self.arch], golden=golden)

    def llamacpp(self, path, golden_rel, stages):
        """llama.cpp's logits (and, for some files, its stages), with the agreement against the
        transformers golden computed on the same (dequantized) weights."""
        logits = peer.logits(path, self.ids)
        name = os.path.basename(path).removesuffix(".gguf")
        out = os.path.join(self.dir, "llamacpp", f"{name}.logits.safetensors")
        save_atomic({"logits": logits, "input_ids": np.array(self.ids, dtype=np.int32)}, out)
        ref = load_tensor(os.path.join(self.dir, golden_rel), "result_output")
        agreement = compare_logits(logits, ref)
        info = dict(logits=self.rel(out), agreement=agreement)
        if stages:
            raw = peer.stages(path, self.ids)
            # Named stages only: views, cache slots, unnamed nodes, the pre-softmax kq and the
            # pure reshapes (`Qcur-0#1` is `Qcur-0` viewed per head) are left out.
            keep = {k: v for k, v in raw.items()
                    if " (" not in k and not k.startswith(("cache_", "node_", "kq-", "norm"))
                    and not (k.endswith("#1") and k.split("-")[0] in ("Qcur", "Kcur", "Vcur"))}
            # The KV cache is n_ctx long; columns past the prompt are masked.
            keep = {k: (v[..., : len(self.ids)] if k.startswith("kq_soft_max") else v) for k, v in keep.items()}
            spath = os.path.join(self.dir, "llamacpp", f"{name}.stages.safetensors")
            save_atomic(keep, spath)
            info["stages"] = self.rel(spath)
        print(f"  {os.path.basename(path)}: llama.cpp vs transformers max |Δ| {agreement['max_abs']:.2e}, "
              f"top-1 {agreement['top1_agreement']:.3f}", flush=True)
        return info

    def write_apr(self, path, q, f32_gguf, q4km_gguf):
        """An APR file with GGUF tensor names ([out, in] dims). Returns its dequantized tensors
        by name (float64), for the golden."""
        import gguf
        cfg = json.load(open(os.path.join(self.hf, "config.json")))
        cfg.update({k.replace("rope_parameters.", ""): v for k, v in cfg.get("rope_parameters", {}).items()})
        meta = {k: cfg[v] for k, v in APR_KEYS.items() if v in cfg and cfg[v] is not None}
        meta.update(architecture=self.arch, model_type=self.arch, name=f"assay-tiny-{self.arch}",
                    hf_architecture=cfg["architectures"][0], rope_theta=cfg["rope_theta"],
                    rope_type=0 if self.arch == "llama" else 2)
        if "num_local_experts" in cfg:
            meta["num_experts"] = cfg["num_local_experts"]
        source = gguf_files.read_tensors(f32_gguf)
        raw = {t.name: t for t in gguf.GGUFReader(q4km_gguf).tensors} if q == "Q4_K" else {}
        tensors, dequant = [], {}
        for name, (_, values) in sorted(source.items()):
            dims = list(values.shape)
            x = values.astype(np.float32)
            if q == "F16" or (values.ndim < 2):
                dt = "F16" if q == "F16" else "F32"
                data = x.astype(np.float16 if dt == "F16" else np.float32).tobytes()
                dq = np.frombuffer(data, dtype=np.float16 if dt == "F16" else np.float32).astype(np.float64)
            elif q == "APR_Q8":
                dt, data = "APR_Q8", apr_write.quantize_apr_q8(x)
                dq = apr_write.dequantize_apr_q8(data, x.size).astype(np.float64)
            elif q == "APR_Q4":
                dt, data = "APR_Q4", apr_write.quantize_apr_q4(x)
                dq = apr_write.dequantize_apr_q4(data, x.size).astype(np.float64)
            else:  # Q4_K: the Q4_K_M file's K-quant blocks, everything else as F32
                t = raw[name]
                if t.tensor_type.name in ("Q4_K", "Q6_K"):
                    dt, data = t.tensor_type.name, t.data.tobytes()
                    dq = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
                else:
                    # Not K-quantizable (rows not a multiple of 256: llama.cpp fell back to
                    # another type) or a norm: F16 keeps the file small.
                    dt = "F16" if values.ndim >= 2 else "F32"
                    dq = gguf.quants.dequantize(t.data, t.tensor_type)
                    data = dq.astype(np.float16 if dt == "F16" else np.float32).tobytes()
                    dq = np.frombuffer(data, dtype=np.float16 if dt == "F16" else np.float32).astype(np.float64)
            tensors.append((name, dt, dims, data))
            dequant[name] = dq.reshape(dims)
        apr_write.write_apr(path, meta, tensors)
        return dequant


# Parameters a GGUF may lack because the output is tied to the embeddings.
TIED = {"lm_head.weight"}


def complete(state, float_state):
    """Tied parameters absent from the GGUF keep their HF identity (lm_head = embeddings)."""
    return {n: state.get(n, float_state[n]) for n in float_state}


def load_tensor(path, name):
    from safetensors import safe_open
    with safe_open(path, "np") as f:
        return f.get_tensor(name)


def compare_logits(a, ref):
    a64, r64 = a.astype(np.float64), ref.astype(np.float64)
    lp = r64 - np.logaddexp.reduce(r64, axis=-1, keepdims=True)
    lq = a64 - np.logaddexp.reduce(a64, axis=-1, keepdims=True)
    kl = (np.exp(lp) * (lp - lq)).sum(-1)
    return dict(max_abs=float(np.abs(a64 - r64).max()), max_abs_ref=float(np.abs(r64).max()), kl_max=float(kl.max()), kl_mean=float(kl.mean()),
                top1_agreement=float((a64.argmax(-1) == r64.argmax(-1)).mean()))


def versions():
    import gguf
    import llama_cpp
    import safetensors
    import tokenizers
    return dict(python=platform.python_version(), torch=torch.__version__, transformers=transformers.__version__,
                tokenizers=tokenizers.__version__, safetensors=safetensors.__version__, gguf=gguf.__version__
                if hasattr(gguf, "__version__") else "0.19.0", numpy=np.__version__,
                llama_cpp_python=llama_cpp.__version__)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, ".."))
    ap.add_argument("--only", nargs="*", default=list(MATRIX), help="architectures to make (default: all)")
    ap.add_argument("--no-kernels", action="store_true", help="skip the kernel test vectors")
    args = ap.parse_args()
    gguf_files.llama_cpp_tree()
    torch.set_num_threads(1)  # one summation order: byte-identical captures on every run
    out = os.path.abspath(args.out)
    tokenizer_dir = os.path.join(out, "tokenizer")
    tiny.build_tokenizer(tokenizer_dir)
    ids = tiny.prompt_ids(tokenizer_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.only:
            a = Arch(arch, out, tmp, ids, tokenizer_dir)
            a.run()
            write_manifest(a, ids)
    if args.no_kernels:
        return
    import kernel_vectors
    kdir = os.path.join(out, "kernels")
    os.makedirs(kdir, exist_ok=True)
    files = kernel_vectors.make(kdir)
    manifest = dict(schema="assay.golden/1", kind="kernel-vectors", versions=versions(),
                    files={f: dict(sha256=sha256(os.path.join(kdir, f)), bytes=os.path.getsize(os.path.join(kdir, f)))
                           for f in sorted(files)})
    write_json(os.path.join(kdir, "manifest.json"), manifest)


def write_manifest(a, ids):
    files = {}
    for root, _, names in os.walk(a.dir):
        for n in sorted(names):
            if n == "manifest.json":
                continue
            p = os.path.join(root, n)
            files[a.rel(p)] = dict(sha256=sha256(p), bytes=os.path.getsize(p))
    captures = {rel: dict(kv_max_abs_diff=dev) for rel, dev in a.captures.values()}
    manifest = dict(
        schema="assay.golden/1", arch=a.arch, contract=CONTRACT[a.arch], versions=versions(),
        seed=tiny.SEED, weight_seed=tiny.weight_seed(a.arch), prompt=tiny.PROMPT, token_ids=ids,
        kv_run=dict(prefill=capture.PREFILL, decode_steps=len(ids) - capture.PREFILL),
        llamacpp_settings=dict(n_ctx=peer.N_CTX, type_k="f32", type_v="f32", flash_attn=False, n_threads=2),
        models=a.models, captures=captures, files=dict(sorted(files.items())))
    write_json(os.path.join(a.dir, "manifest.json"), manifest)


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
