"""Deterministic, atomic safetensors writes."""

import json
import os
import struct

import numpy as np


def save(path, tensors, metadata=None):
    """Writes `tensors` ({name: array}) to `path` through a temp file and a rename.

    safetensors' serializer writes `__metadata__` in hash-map order, which changes from run to
    run; the header is re-emitted with sorted keys (tensor data and offsets are untouched), so
    regenerating a golden gives the same bytes.
    """
    from safetensors.numpy import save as st_save
    blob = st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode())
    canon = {}
    if "__metadata__" in header:
        canon["__metadata__"] = dict(sorted(header.pop("__metadata__").items()))
    canon.update(sorted(header.items()))
    text = json.dumps(canon, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * (-(8 + len(text)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + hlen:])
    os.replace(tmp, path)
