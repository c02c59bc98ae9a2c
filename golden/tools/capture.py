"""Per-stage float64 captures from HF transformers, keyed by llama.cpp's stage ids.

Forward hooks record every module output we name; a wrapper around each modeling module's
`eager_attention_forward` records post-rope q/k and the softmax. The map from HF module names to
stage ids lives here, in the tool, not in Rust.

Two runs per model: the 24-token prompt in one pass, and the same prompt as a 16-token prefill
followed by 8 single-token decode steps through HF's KV cache. Every stage of the second run is
compared with the rows of the first (they are the same function); the capture keeps all stages
of the one-pass run plus the KV run's `l_out-L` and `result_output`, and the manifest records the
largest difference between the runs.
"""

import contextlib
import importlib

import numpy as np
import torch
import transformers

PREFILL = 16

# HF module paths per architecture. `None`: the architecture has no such module.
LAYOUT = {
    "llama": dict(embed="model.embed_tokens", layers="model.layers", attn_norm="input_layernorm",
                  q="self_attn.q_proj", k="self_attn.k_proj", v="self_attn.v_proj", o="self_attn.o_proj",
                  ffn_norm="post_attention_layernorm", gate="mlp.gate_proj", up="mlp.up_proj",
                  down="mlp.down_proj", mlp="mlp", final_norm="model.norm", module="llama"),
    "gpt2": dict(embed="transformer.wte", pos="transformer.wpe", layers="transformer.h", attn_norm="ln_1",
                 qkv="attn.c_attn", o="attn.c_proj", ffn_norm="ln_2", up="mlp.c_fc", down="mlp.c_proj",
                 mlp="mlp", final_norm="transformer.ln_f", module="gpt2"),
    "phi2": dict(embed="model.embed_tokens", layers="model.layers", attn_norm="input_layernorm",
                 q="self_attn.q_proj", k="self_attn.k_proj", v="self_attn.v_proj", o="self_attn.dense",
                 up="mlp.fc1", down="mlp.fc2", mlp="mlp", final_norm="model.final_layernorm", module="phi"),
}
LAYOUT["qwen2"] = dict(LAYOUT["llama"], module="qwen2")
LAYOUT["qwen3"] = dict(LAYOUT["llama"], q_norm="self_attn.q_norm", k_norm="self_attn.k_norm", module="qwen3")
# MoE: `router` returns (logits, top-k weights, top-k ids); `router_weights` names the top-k
# weights as llama.cpp does (`_norm` when renormalized to sum to one). qwen3_moe's ffn_moe_out is
# the whole block (routed experts only); qwen2_moe adds a sigmoid-gated shared expert to the
# routed `experts`, so its ffn_moe_out is the experts' output and ffn_out the sum.
LAYOUT["qwen3_moe"] = dict(LAYOUT["qwen3"], gate=None, up=None, down=None, router="mlp.gate",
                           router_weights="ffn_moe_weights_norm", module="qwen3_moe")
LAYOUT["qwen2_moe"] = dict(LAYOUT["llama"], gate=None, up=None, down=None, router="mlp.gate",
                           router_weights="ffn_moe_weights", experts="mlp.experts", shexp="mlp.shared_expert",
                           shexp_gate="mlp.shared_expert_gate", module="qwen2_moe")


def _get(root, path):
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _rows(t):
    """[1, s, …] (batch of one) → [s, prod(…)] float64 numpy: heads flattened, as llama.cpp's
    2-D views of the same tensors."""
    assert t.shape[0] == 1, t.shape
    t = t.detach()[0]
    return t.reshape(t.shape[0], -1).to(torch.float64).numpy()


def _tokens(t):
    """[s, n] (the MoE block's flattened tokens) → a float64 copy; `.to(float64)` of a float64
    tensor is the tensor itself and `.numpy()` shares its memory."""
    assert t.dim() == 2, t.shape
    return t.detach().clone().to(torch.float64).numpy()


def _router(out):
    """(logits, top-k weights, top-k ids), copied."""
    return tuple(t.detach().clone() for t in out)


class Recorder:
    """Collects stage tensors of one forward call."""

    def __init__(self, model, arch):
        self.arch, self.model, self.lay = arch, model, LAYOUT[arch]
        self.out = {}
        self.handles = []
        if self.lay.get("router"):
            # The weights are renormalized exactly when llama.cpp calls them ffn_moe_weights_norm.
            assert model.config.norm_topk_prob == self.lay["router_weights"].endswith("_norm"), arch

    def put(self, name, value):
        # A name seen twice in one call is a bug in the hooks, not something to overwrite.
        assert name not in self.out, f"stage {name} recorded twice"
        self.out[name] = value

    def hook(self, module, name, fn=_rows, pre=False):
        if pre:
            h = module.register_forward_pre_hook(lambda m, args: self.put(name, fn(args[0])))
        else:
            h = module.register_forward_hook(lambda m, args, out: self.put(name, fn(out)))
        self.handles.append(h)

    @contextlib.contextmanager
    def attached(self):
        lay, m = self.lay, self.model
        self.hook(_get(m, lay["embed"]), "inp_embd")
        layers = _get(m, lay["layers"])
        if "pos" in lay:
            # Token + position embeddings: the input of the first block.
            self.hook(layers[0], "inp_pos_embd", pre=True)
        for i, layer in enumerate(layers):
            self.hook(_get(layer, lay["attn_norm"]), f"attn_norm-{i}")
            if "qkv" in lay:
                n = m.config.n_embd
                for j, s in enumerate(["Qcur", "Kcur", "Vcur"]):
                    self.hook(_get(layer, lay["qkv"]), f"{s}-{i}", fn=lambda t, j=j, n=n: _rows(t[..., j * n:(j + 1) * n]))
            else:
                for s, key in [("Qcur", "q"), ("Kcur", "k"), ("Vcur", "v")]:
                    self.hook(_get(layer, lay[key]), f"{s}-{i}")
            if lay.get("q_norm"):
                self.hook(_get(layer, lay["q_norm"]), f"Qcur_normed-{i}")
                self.hook(_get(layer, lay["k_norm"]), f"Kcur_normed-{i}")
            self.hook(_get(layer, lay["o"]), f"kqv_out-{i}", pre=True)
            self.hook(_get(layer, lay["o"]), f"attn_out-{i}")
            if self.arch != "phi2":
                self.hook(_get(layer, lay["ffn_norm"]), f"ffn_inp-{i}", pre=True)
                self.hook(_get(layer, lay["ffn_norm"]), f"ffn_norm-{i}")
            if lay.get("gate"):
                self.hook(_get(layer, lay["gate"]), f"ffn_gate-{i}")
            if lay.get("up"):
                self.hook(_get(layer, lay["up"]), f"ffn_up-{i}")
            if lay.get("down"):
                self.hook(_get(layer, lay["down"]), f"ffn_act-{i}", pre=True)
            if lay.get("router"):
                self.hook(_get(layer, lay["router"]), f"ffn_moe-{i}", fn=_router)
                if lay.get("experts"):
                    self.hook(_get(layer, lay["experts"]), f"ffn_moe_out-{i}", fn=_tokens)
                    self.hook(_get(layer, lay["shexp"]), f"ffn_shexp-{i}", fn=_tokens)
                    # Input of the sigmoid; combined with ffn_shexp in _moe_stages, then dropped.
                    self.hook(_get(layer, lay["shexp_gate"]), f"ffn_shexp_gate_inp-{i}",
                              fn=lambda t: t.detach().clone())
                else:
                    self.hook(_get(layer, lay["mlp"]), f"ffn_moe_out-{i}")
            self.hook(_get(layer, lay["mlp"]), f"ffn_out-{i}")
            self.hook(layer, f"l_out-{i}", fn=lambda out: _rows(out[0] if isinstance(out, tuple) else out))
        self.hook(_get(m, lay["final_norm"]), "result_norm")
        self.hook(m.lm_head, "result_output")

        # Post-rope q/k and the softmax come from the attention function itself.
        mod = importlib.import_module(f"transformers.models.{lay['module']}.modeling_{lay['module']}")
        original = mod.eager_attention_forward
        attn_modules = {id(getattr(layer, "self_attn", None) or layer.attn): i for i, layer in enumerate(layers)}

        def wrapped(module, query, key, value, attention_mask, **kwargs):
            i = attn_modules[id(module)]
            out, weights = original(module, query, key, value, attention_mask, **kwargs)
            if self.arch != "gpt2":
                # [1, heads, s, head_dim] → [1, s, heads, head_dim]. With a cache, key holds every
                # position so far; the new rows are the last ones.
                self.put(f"Qcur_rope-{i}", _rows(query.transpose(1, 2)))
                self.put(f"Kcur_rope-{i}", _rows(key.transpose(1, 2)[:, -query.shape[2]:]))
            self.put(f"kq_soft_max-{i}", weights[0].detach().to(torch.float64).numpy())
            return out, weights

        mod.eager_attention_forward = wrapped
        try:
            yield self
        finally:
            mod.eager_attention_forward = original
            for h in self.handles:
                h.remove()
            self.handles.clear()


def _moe_stages(raw, lay):
    """Router outputs → ffn_moe_logits / _probs / _topk and the top-k weights (`router_weights`:
    ffn_moe_weights_norm or ffn_moe_weights) per layer; the shared expert's gate input →
    ffn_shexp_out = sigmoid(gate_inp) * ffn_shexp, the same float64 ops as transformers."""
    out = {}
    for name, value in raw.items():
        if name.startswith("ffn_shexp_gate_inp-"):
            i = name.split("-")[1]
            shexp = torch.from_numpy(raw[f"ffn_shexp-{i}"])
            out[f"ffn_shexp_out-{i}"] = (torch.nn.functional.sigmoid(value) * shexp).to(torch.float64).numpy()
            continue
        if not name.startswith("ffn_moe-"):
            out[name] = value
            continue
        i = name.split("-")[1]
        logits, weights, ids = value
        logits64 = logits.to(torch.float64)
        out[f"ffn_moe_logits-{i}"] = logits64.numpy()
        out[f"ffn_moe_probs-{i}"] = torch.softmax(logits64, dim=-1).numpy()
        out[f"ffn_moe_topk-{i}"] = ids.to(torch.int32).numpy()
        out[f"{lay['router_weights']}-{i}"] = weights.to(torch.float64).numpy()
    return out


def run(model, arch, ids):
    """One forward over `ids` (list of int) with every stage recorded."""
    rec = Recorder(model, arch)
    with rec.attached(), torch.no_grad():
        model(torch.tensor([ids]), use_cache=False)
    return _moe_stages(rec.out, rec.lay)


def run_kv(model, arch, ids):
    """Prefill ids[:PREFILL], then decode the rest one token at a time through the KV cache.
    Returns one dict of stages per call."""
    steps = []
    cache = transformers.DynamicCache(config=model.config)
    with torch.no_grad():
        for start, end in [(0, PREFILL)] + [(t, t + 1) for t in range(PREFILL, len(ids))]:
            rec = Recorder(model, arch)
            with rec.attached():
                out = model(torch.tensor([ids[start:end]]), cache=cache, use_cache=True,
                            position_ids=torch.arange(start, end)[None])
                cache = out.past_key_values if out.past_key_values is not None else cache
            steps.append(_moe_stages(rec.out, rec.lay))
    return steps


def kv_deviation(one_pass, steps):
    """Largest |Δ| between the KV run and the rows of the one-pass run, over every stage."""
    worst = 0.0
    for name, full in one_pass.items():
        if name.startswith("kq_soft_max"):
            row = 0
            for st in steps:
                w = st[name]  # [h, q, kv]
                for r in range(w.shape[1]):
                    q = row + r
                    # Causal: columns past q are masked (zero) in both.
                    worst = max(worst, float(np.abs(w[:, r, :q + 1] - full[:, q, :q + 1]).max()),
                                float(np.abs(w[:, r, q + 1:]).max(initial=0.0)))
                row += w.shape[1]
            continue
        got = np.concatenate([st[name] for st in steps], axis=0)
        assert got.shape == full.shape, (name, got.shape, full.shape)
        if name.startswith("ffn_moe_topk"):
            # Expert ids must agree exactly.
            assert (got == full).all(), f"{name}: the KV run routes differently"
            continue
        worst = max(worst, float(np.abs(got - full).max()))
    return worst


def capture(model, arch, ids):
    """Both runs; returns (tensors to store as f32/i32, kv deviation)."""
    model = model.to(torch.float64).eval()
    one = run(model, arch, ids)
    steps = run_kv(model, arch, ids)
    dev = kv_deviation(one, steps)
    # The same function two ways: anything beyond float64 rounding is a bug in the capture.
    assert dev < 1e-9, f"KV-cache run differs from the one-pass run by {dev}"
    tensors = {k: (v.astype(np.int32) if v.dtype.kind == "i" else v.astype(np.float32)) for k, v in one.items()}
    n_layer = sum(1 for k in one if k.startswith("l_out-"))
    for i in range(n_layer):
        tensors[f"kv.l_out-{i}"] = np.concatenate([st[f"l_out-{i}"] for st in steps]).astype(np.float32)
    tensors["kv.result_output"] = np.concatenate([st["result_output"] for st in steps]).astype(np.float32)
    tensors["input_ids"] = np.array(ids, dtype=np.int32)
    tensors["positions"] = np.arange(len(ids), dtype=np.int32)
    return tensors, dev
