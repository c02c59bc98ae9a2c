"""Prints the fixture matrix and llama.cpp's agreement from the manifests, as markdown.

    python golden/tools/summary.py [golden]
"""

import json
import os
import sys


def main(root):
    rows = []
    for arch in sorted(os.listdir(root)):
        path = os.path.join(root, arch, "manifest.json")
        if not os.path.isfile(path) or arch == "kernels":
            continue
        m = json.load(open(path))
        for e in m["models"]:
            size = sum(v["bytes"] for k, v in m["files"].items() if k == e["file"] or k.startswith(e["file"] + "/"))
            agree = e.get("llamacpp", {}).get("agreement")
            rows.append((arch, e["format"], e["dtype"], size, e["golden"], agree))
    print("| arch | format | dtype | bytes | golden | llama.cpp max abs Δ (rel) | KL max | top-1 |")
    print("|---|---|---|---|---|---|---|---|")
    for arch, fmt, dtype, size, golden, a in rows:
        if a:
            rel = a["max_abs"] / a["max_abs_ref"]
            cells = f"{a['max_abs']:.2e} ({rel:.1e}) | {a['kl_max']:.1e} | {a['top1_agreement']:.3f}"
        else:
            cells = "— | — | —"
        print(f"| {arch} | {fmt} | {dtype} | {size:,} | {golden} | {cells} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
