"""llama.cpp as the peer: its logits for a GGUF, and its own intermediate tensors (cb_eval).

Settings for tight comparisons: F32 KV cache (type_k = type_v = 0), flash attention off.
"""

import ctypes

import numpy as np

import llama_cpp

N_CTX = 256


def _llama(path, cb_eval=None):
    kwargs = dict(logits_all=True, n_ctx=N_CTX, type_k=0, type_v=0, flash_attn=False, n_threads=2,
                  n_batch=64, seed=0, verbose=False)
    if cb_eval is None:
        return llama_cpp.Llama(path, **kwargs)
    # cb_eval is a context parameter the high-level class does not expose; set it on the params
    # the class builds, before it creates the context.
    low = llama_cpp.llama_cpp  # the module llama.py calls through
    original = low.llama_context_default_params

    def with_callback():
        params = original()
        params.cb_eval = cb_eval
        params.cb_eval_user_data = None
        return params

    low.llama_context_default_params = with_callback
    try:
        return llama_cpp.Llama(path, **kwargs)
    finally:
        low.llama_context_default_params = original


def logits(path, ids):
    """[len(ids), n_vocab] logits of one pass over the prompt."""
    llm = _llama(path)
    llm.eval(ids)
    out = np.array(llm.scores[: len(ids)], dtype=np.float32)
    llm.close()
    return out


# struct ggml_tensor begins { enum ggml_type type; struct ggml_backend_buffer * buffer;
# int64_t ne[4]; size_t nb[4]; … } (ggml.h): type at 0, ne at 16.
_GGML_TYPE_F32 = 0


def stages(path, ids):
    """llama.cpp's named graph nodes of one pass over the prompt: {name: f32 array}. A name seen
    more than once in a graph (llama.cpp reuses `Qcur-0` before and after rope) gets `#n`."""
    base = ctypes.CDLL(llama_cpp.llama_cpp._lib._name.replace("libllama", "libggml-base"))
    base.ggml_get_name.restype = ctypes.c_char_p
    base.ggml_get_name.argtypes = [ctypes.c_void_p]
    base.ggml_nbytes.restype = ctypes.c_size_t
    base.ggml_nbytes.argtypes = [ctypes.c_void_p]
    base.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    base.ggml_is_contiguous.restype = ctypes.c_bool
    base.ggml_is_contiguous.argtypes = [ctypes.c_void_p]

    seen = {}
    out = {}

    @llama_cpp.ggml_backend_sched_eval_callback
    def callback(t, ask, user_data):
        name = base.ggml_get_name(t).decode()
        if ask:
            return True
        ty = ctypes.c_int32.from_address(t).value
        if ty != _GGML_TYPE_F32 or not base.ggml_is_contiguous(t) or not name:
            return True
        ne = [ctypes.c_int64.from_address(t + 16 + 8 * i).value for i in range(4)]
        buf = np.empty(int(np.prod(ne)), dtype=np.float32)
        base.ggml_backend_tensor_get(t, buf.ctypes.data, 0, base.ggml_nbytes(t))
        n = seen.get(name, 0)
        seen[name] = n + 1
        key = name if n == 0 else f"{name}#{n}"
        # ne0 innermost → row-major reversed.
        out[key] = buf.reshape([d for d in reversed(ne)]).squeeze()
        return True

    llm = _llama(path, cb_eval=callback)
    llm.eval(ids)
    llm.close()
    return out
