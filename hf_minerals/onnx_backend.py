"""ONNX Runtime as the Predictor's model call, and the rule that picks it (``backend="auto"``).

The Predictor stays one: preprocessing, photo views, calibration, open-set score and decisions are its
own; only the forward pass (logits and, for feature-based open-set methods, the pooled features) runs in
an :class:`OnnxModel` instead of torch. ``hf-minerals export`` writes ``<model>/onnx/model.onnx`` and
``export.json``; ``auto`` uses that file only when

* onnxruntime imports,
* the export was made from the weights now in the folder (``source_sha256`` of ``model.safetensors``),
* the export's agreement check ran on real held-out images (``--dataset``: its validation split) and the
  ONNX Predictor's top-1 answer agreed with the torch Predictor's on >= 99.5 % of them,
* and the run is fp32: bf16 (``--bf16 true``, or its default where the CPU runs it natively and the model's
  own bf16 check passed, ``predict.default_bf16``) runs in torch - on such a CPU it is the faster path for
  large models (``scripts/benchmark.py predict``: Swin-T on 2048x1536 photos, torch bf16 1.4x ONNX fp32).

Otherwise torch, said once on stderr with the reason. An agreement check on random pixel values only
shows the graph computes the same numbers, not that answers on photomicrographs agree: it never enables
``auto``. Attribution (``hf-minerals explain``) needs torch's gradients: it always uses the torch backend.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

ONNX_DIR, ONNX_FILE, INT8_FILE, RECORD_FILE = "onnx", "model.onnx", "model_int8.onnx", "export.json"
#: ``auto`` uses the ONNX export only when its held-out top-1 agreement with torch reaches this.
ONNX_MIN_AGREEMENT = 0.995
BACKENDS = ("auto", "torch", "onnx")


def onnx_available() -> str:
    """'' when onnx and onnxruntime import, else why not."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime is not installed (pip install 'hf-minerals[onnx]'): {exc}"
    return ""


def weights_sha256(model_dir: str | os.PathLike) -> str | None:
    """sha256 of the folder's ``model.safetensors`` (what an export was made from), None without one."""
    path = Path(model_dir) / "model.safetensors"
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def read_record(onnx_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(onnx_dir) / RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def agreement_verdict(record: dict[str, Any] | None) -> tuple[bool, str]:
    """(export good for ``auto``?, why) from ``export.json``'s ``agreement`` block."""
    agree = (record or {}).get("agreement")
    if not agree:
        return False, "its export.json records no agreement check (re-export: `hf-minerals export --dataset D`)"
    if not agree.get("held_out"):
        return False, ("its agreement check ran on random pixel values, not held-out images "
                       "(re-export with `--dataset D`: the check then uses D's validation split)")
    top1 = float(agree["top1"])
    if top1 < ONNX_MIN_AGREEMENT:
        return False, (f"ONNX agreed with torch on only {top1:.1%} of {agree['n']} held-out images "
                       f"(< {ONNX_MIN_AGREEMENT:.1%})")
    return True, f"{top1:.1%} top-1 agreement with torch on {agree['n']} held-out images"


def choose_backend(model_dir: Path | None, backend: str, bf16: bool) -> tuple[str, str]:
    """('torch' | 'onnx', why) for a model folder (None: not local) under the ``auto`` rule (module docstring);
    ``torch`` and ``onnx`` are taken as asked (``onnx`` checked by :class:`OnnxModel` when it loads)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend, "asked for"
    if bf16:
        return "torch", "bf16 is on, and it runs in torch: the ONNX export is fp32"
    if model_dir is None:
        return "torch", "no local model folder to hold an ONNX export"
    onnx_dir = model_dir / ONNX_DIR
    if not (onnx_dir / ONNX_FILE).is_file():
        return "torch", f"no ONNX export in {onnx_dir} (`hf-minerals export --model {model_dir} --dataset D`)"
    why_not = onnx_available()
    if why_not:
        return "torch", why_not
    record = read_record(onnx_dir)
    ok, why = agreement_verdict(record)
    if not ok:
        return "torch", f"{onnx_dir / ONNX_FILE} not used: {why}"
    if (record or {}).get("source_sha256") != weights_sha256(model_dir):
        return "torch", f"{onnx_dir / ONNX_FILE} not used: made from other weights than {model_dir} holds now (re-export)"
    return "onnx", f"{onnx_dir / ONNX_FILE}: {why}"


def session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()  # same thread budget as torch
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """An exported model file run by ONNX Runtime: ``pixel_values`` -> float32 logits [, pooled features]."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        why_not = onnx_available()
        if why_not:
            raise SystemExit(f"the ONNX backend needs onnxruntime: {why_not}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} not found: run `hf-minerals export --model MODEL "
                                    f"--output_dir {self.path.parent}{' --int8' if self.path.name == INT8_FILE else ''}`")
        self.session = session(self.path, threads)
        self.outputs = [o.name for o in self.session.get_outputs()]

    @property
    def has_features(self) -> bool:
        return "features" in self.outputs

    def run(self, pixel_values: torch.Tensor, features: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (and pooled features when asked and exported) of one batch."""
        names = ["logits", "features"] if features and self.has_features else ["logits"]
        out = self.session.run(names, {"pixel_values": pixel_values.float().contiguous().numpy()})
        return torch.from_numpy(out[0]).float(), torch.from_numpy(out[1]).float() if len(out) > 1 else None
