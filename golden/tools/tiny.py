"""Tiny real-architecture models: configs, seeded weights, the shared BPE tokenizer.

Every parameter is re-drawn from a seeded generator (HF's init leaves biases at zero and norms at
one, which hides bias and norm bugs), then rounded to bfloat16 so the committed BF16 checkpoint
holds exactly the weights every float64 reference computes with.
"""

import json
import math
import os

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SEED = 20261124
VOCAB = 384  # embedding rows; the tokenizer has a few less, as real checkpoints pad their vocab
TOKENIZER_VOCAB = VOCAB - 8
HIDDEN = 256
LAYERS = 2
CTX = 256

# One entry per architecture: the HF config class and its arguments. Hidden 256 so K-quants apply;
# llama keeps a non-square FFN (512), qwen2/qwen3 a 256-wide one to keep golden/ small.
ARCHS = {
    "llama": (transformers.LlamaConfig, dict(
        intermediate_size=512, num_attention_heads=8, num_key_value_heads=2,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)),
    "qwen2": (transformers.Qwen2Config, dict(
        intermediate_size=256, num_attention_heads=8, num_key_value_heads=2,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)),
    "qwen3": (transformers.Qwen3Config, dict(
        intermediate_size=256, num_attention_heads=8, num_key_value_heads=2, head_dim=64,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)),
    "qwen3_moe": (transformers.Qwen3MoeConfig, dict(
        intermediate_size=512, moe_intermediate_size=64, num_experts=8, num_experts_per_tok=2,
        norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
        num_attention_heads=8, num_key_value_heads=2, head_dim=32,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)),
    # Qwen1.5/Qwen2-MoE: routed experts plus a sigmoid-gated shared expert, top-k weights not
    # renormalized. intermediate_size only sizes dense (mlp_only) layers, of which there are none.
    "qwen2_moe": (transformers.Qwen2MoeConfig, dict(
        intermediate_size=512, moe_intermediate_size=64, shared_expert_intermediate_size=256,
        num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[],
        num_attention_heads=8, num_key_value_heads=2, qkv_bias=True, use_sliding_window=False,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)),
    "gpt2": (transformers.GPT2Config, dict(
        n_embd=HIDDEN, n_layer=LAYERS, n_head=8, n_positions=CTX, n_inner=None,
        activation_function="gelu_new", layer_norm_epsilon=1e-5)),
    "phi2": (transformers.PhiConfig, dict(
        intermediate_size=4 * HIDDEN, num_attention_heads=8, num_key_value_heads=8,
        partial_rotary_factor=0.5, rope_theta=10000.0, layer_norm_eps=1e-5,
        hidden_act="gelu_new", tie_word_embeddings=False)),
}

# Weight seed of each architecture: SEED + offset. Fixed per name (the first six are the
# positions in the sorted list of the original architectures), so adding one never changes
# another's weights. A new architecture takes the next unused offset.
WEIGHT_SEED_OFFSET = {"gpt2": 0, "llama": 1, "phi2": 2, "qwen2": 3, "qwen3": 4, "qwen3_moe": 5, "qwen2_moe": 6}
assert set(WEIGHT_SEED_OFFSET) == set(ARCHS)
assert len(set(WEIGHT_SEED_OFFSET.values())) == len(WEIGHT_SEED_OFFSET)


def weight_seed(arch):
    return SEED + WEIGHT_SEED_OFFSET[arch]


def config(arch):
    cls, kwargs = ARCHS[arch]
    common = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2)
    if arch != "gpt2":
        common.update(hidden_size=HIDDEN, num_hidden_layers=LAYERS, max_position_embeddings=CTX)
    cfg = cls(**common, **kwargs)
    cfg._attn_implementation = "eager"
    return cfg


def redraw(model, seed):
    """Every parameter from a seeded generator, in name order so the draw is reproducible."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("bias"):
                v = torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.1
            elif p.dim() == 1 or "norm" in name or "ln_" in name:
                v = 1.0 + torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.1
            elif "embed" in name or "wte" in name or "wpe" in name:
                v = torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5
            else:
                # Linear weights N(0, 1/fan_in). Conv1D (gpt2) stores [in, out]; experts [E, out, in].
                fan_in = p.shape[0] if ("c_attn" in name or "c_proj" in name or "c_fc" in name) else p.shape[-1]
                v = torch.randn(p.shape, generator=gen, dtype=torch.float64) / math.sqrt(fan_in)
            p.copy_(v.to(torch.bfloat16).to(p.dtype))


def build_model(arch, out_dir, tokenizer_dir):
    """Writes the BF16 HF checkpoint (config.json, model.safetensors, tokenizer) into out_dir."""
    torch.manual_seed(SEED)
    cfg = config(arch)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    redraw(model, weight_seed(arch))
    model = model.to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok = transformers.PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    tok.save_pretrained(out_dir)
    if arch == "gpt2":
        patch_gpt2_config(out_dir)


def patch_gpt2_config(out_dir):
    """llama.cpp's converter reads `n_ctx` for GPT-2, which transformers no longer writes."""
    path = os.path.join(out_dir, "config.json")
    with open(path) as f:
        data = json.load(f)
    data["n_ctx"] = CTX
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


CORPUS_WORDS = (
    "the quick brown fox jumps over the lazy dog while a contract declares every tensor name shape "
    "and hyperparameter of a model architecture so that a harness can verify each stage of the "
    "forward pass against golden captures made by independent reference implementations"
).split()


def corpus():
    """A deterministic corpus: permutations of a fixed word list, enough to fill the vocabulary."""
    gen = torch.Generator().manual_seed(SEED)
    lines = []
    for _ in range(4000):
        idx = torch.randint(len(CORPUS_WORDS), (12,), generator=gen).tolist()
        lines.append(" ".join(CORPUS_WORDS[i] for i in idx) + ".")
    return lines


def build_tokenizer(out_dir):
    """A byte-level BPE shared by every architecture."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(out_dir)
    return fast


PROMPT = "Assay verifies each stage of the forward pass: GGUF, SafeTensors and APR files, 42 tensors per layer, against golden captures made by independent reference implementations."


def prompt_ids(tokenizer_dir, n=24):
    tok = transformers.PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
    ids = tok(PROMPT)["input_ids"]
    assert len(ids) >= n, f"prompt gives {len(ids)} tokens, need {n}"
    return ids[:n]
