"""Tables for docs/numerics.md from `harness verify --json` (stdin): worst NMSE per stage x weight
dtype x backend over every fixture, and llama.cpp logits KL per GGUF file. Python stdlib only."""
import collections
import json
import re
import sys

report = json.load(sys.stdin)
DTYPES = ["f32", "f16", "bf16", "q8_0", "q5_0", "q5_1", "q4_0", "q4_1", "q6_K", "q5_K", "q4_K", "q3_K", "q2_K", "apr_q8", "apr_q4"]
worst = collections.defaultdict(float)  # (backend, stage, dtype) -> nmse
stages = []
kl = []
for m in report["results"]:
    for run in m["numeric"]:
        d = run["weight_dtype"]
        for s in run["stages"] + run["kv_stages"]:
            base = re.sub(r"-\d+$", "", s["stage"])
            if base not in stages:
                stages.append(base)
            k = (run["backend"], base, d)
            worst[k] = max(worst[k], s["nmse"])
        for lg in run["logits"]:
            if lg["against"] == "llama.cpp":
                kl.append((m["model"], run["backend"], lg["kl_max"], lg["top1_agreement"]))

ORDER = ["inp_embd", "inp_pos_embd", "attn_norm", "Qcur", "Kcur", "Vcur", "Qcur_normed", "Kcur_normed",
         "Qcur_rope", "Kcur_rope", "kq_soft_max", "kqv_out", "attn_out", "ffn_inp", "ffn_norm", "ffn_gate",
         "ffn_up", "ffn_act", "ffn_moe_logits", "ffn_moe_probs", "ffn_moe_topk", "ffn_moe_weights",
         "ffn_moe_weights_norm", "ffn_moe_out", "ffn_shexp", "ffn_shexp_out", "ffn_out", "l_out", "result_norm",
         "result_output", "kv.l_out", "kv.result_output"]
stages.sort(key=lambda s: ORDER.index(s) if s in ORDER else len(ORDER))
for backend in ("reference", "cpu"):
    used = [d for d in DTYPES if any(k[0] == backend and k[2] == d for k in worst)]
    print(f"\n### {backend}: worst NMSE per stage and weight dtype\n")
    print("| stage | " + " | ".join(used) + " |")
    print("|---|" + "---|" * len(used))
    for s in stages:
        cells = [f"{worst[(backend, s, d)]:.1e}" if (backend, s, d) in worst else "—" for d in used]
        print(f"| {s} | " + " | ".join(cells) + " |")

print("\n### llama.cpp logits, KL(llama.cpp ‖ ours) max per token\n")
print("| GGUF file | reference | top-1 | cpu | top-1 |")
print("|---|---|---|---|---|")
files = sorted({f for f, *_ in kl})
for f in files:
    row = {b: (k, t) for ff, b, k, t in kl if ff == f}
    r, c = row.get("reference"), row.get("cpu")
    print(f"| {f.removeprefix('golden/')} | {r[0]:.1e} | {r[1]:.0%} | {c[0]:.1e} | {c[1]:.0%} |")
