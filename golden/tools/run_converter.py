"""Runs llama.cpp's convert_hf_to_gguf.py from its vendored tree.

usage: run_converter.py LLAMA_CPP_DIR HF_DIR [converter args…]

Our tokenizer was trained here, so the converter does not know its pre-tokenizer hash; it is a
plain byte-level BPE, which llama.cpp calls `gpt-2`. Everything else is the converter's own.
"""

import sys

llama_cpp_dir = sys.argv[1]
sys.path.insert(0, f"{llama_cpp_dir}/gguf-py")
sys.path.insert(0, llama_cpp_dir)

import conversion.base  # noqa: E402
import convert_hf_to_gguf  # noqa: E402

original = conversion.base.TextModel.get_vocab_base_pre


def get_vocab_base_pre(self, tokenizer):
    try:
        return original(self, tokenizer)
    except NotImplementedError:
        return "gpt-2"


conversion.base.TextModel.get_vocab_base_pre = get_vocab_base_pre
sys.argv = ["convert_hf_to_gguf.py", sys.argv[2], *sys.argv[3:]]
convert_hf_to_gguf.main()
