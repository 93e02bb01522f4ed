"""``hf-minerals export --model M --format onnx [--int8] [--dataset D]``: an ONNX copy of a model folder.

Route: ``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic batch) + ONNX Runtime - ``optimum``'s
exporter is not used because it is not pinned against transformers 5.24 here. The graph has two outputs,
``logits`` and ``features`` (the classifier head's input, for feature-based open-set methods). ``--int8``
adds a dynamically quantised copy (``onnxruntime.quantization.quantize_dynamic``: int8 weights of
MatMul/Gemm, activations quantised on the fly). The folder (default ``<model>/onnx``, where
``Predictor.from_pretrained(backend="auto")`` looks) gets ``model.onnx`` [``model_int8.onnx``], the
processor and config, the source's ``calibration.json`` and ``openset.safetensors``, and ``export.json``:

* ``fp32_max_abs_logit_diff``: the graph vs torch on a random batch (a numerical check only);
* ``agreement``: the ONNX Predictor's answers vs the torch Predictor's (both fp32, same preprocessing,
  photo views and calibration) on held-out images - ``--dataset D``'s validation split - with top-1
  agreement and max probability difference. Without ``--dataset`` it runs on random pixel values and says
  so (``held_out: false``); ``auto`` then keeps torch (``onnx_backend.agreement_verdict``);
* ``source_sha256``: the weights it was made from (a stale export is not used by ``auto``).

Needs the optional extra: ``pip install 'hf-minerals[onnx]'`` (onnx, onnxruntime).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .onnx_backend import (
    INT8_FILE,
    ONNX_DIR,
    ONNX_FILE,
    RECORD_FILE,
    OnnxModel,
    onnx_available,
    weights_sha256,
)
from .predict import Predictor, calibrated_options

OPSET = 17
__all__ = ["INT8_FILE", "ONNX_FILE", "OnnxPredictor", "export_onnx", "held_out_images"]


def _need_onnx() -> None:
    why_not = onnx_available()
    if why_not:
        raise SystemExit(f"ONNX export needs the optional extra: {why_not}")


class _Exported(torch.nn.Module):
    """What the graph computes: logits, and the classifier head's input when the model has one."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.with_features = isinstance(getattr(model, "classifier", None), torch.nn.Module)

    def forward(self, pixel_values: torch.Tensor) -> Any:
        if not self.with_features:
            return self.model(pixel_values=pixel_values).logits
        from .openset import capture_features

        with capture_features(self.model) as feats:
            logits = self.model(pixel_values=pixel_values).logits
        return logits, feats[0]


def held_out_images(dataset: str | Path, split: str = "validation", limit: int | None = None) -> tuple[list, str]:
    """(images, description) of a data set's held-out split for the agreement check."""
    from .data.loading import is_synthetic, load_split

    data, name = load_split(dataset, split)
    n = len(data) if limit is None else min(limit, len(data))
    images = [im.convert("RGB") for im in data.select(range(n))["image"]]
    return images, f"{n} images of the '{split}' split of {name}{' (SYNTHETIC)' if is_synthetic(data) else ''}"


def agreement(torch_pred: Predictor, onnx_pred: Predictor, images: Sequence[Any]) -> dict[str, Any]:
    """Top-1 agreement and max probability difference of two Predictors' answers on the same images."""
    a, b = torch_pred.predict_proba(images), onnx_pred.predict_proba(images)
    return {"top1": float((a.argmax(1) == b.argmax(1)).mean()), "max_prob_diff": float(np.abs(a - b).max()),
            "n": len(images)}


def export_onnx(model_id: str | Path, output_dir: str | Path | None = None, int8: bool = False,
                images: Sequence[Any] | None = None, images_source: str = "") -> dict[str, Any]:
    """Export ``model_id`` (see module docstring); ``images``: held-out images for the agreement check, described
    by ``images_source`` (None: random pixel values, recorded as not held out). Returns the ``export.json`` record."""
    import warnings

    _need_onnx()
    out = Path(output_dir) if output_dir is not None else Path(model_id) / ONNX_DIR
    out.mkdir(parents=True, exist_ok=True)
    pred = Predictor.from_pretrained(model_id, bf16=False, use_calibration=False, backend="torch")
    model = _Exported(pred.model.to(memory_format=torch.contiguous_format)).eval()
    x = torch.randn(2, 3, *pred.data_config.crop, generator=torch.Generator().manual_seed(0))
    outputs = ["logits", "features"] if model.with_features else ["logits"]
    with warnings.catch_warnings():  # tracer notes on shape-dependent Python branches: input size is fixed
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(out / ONNX_FILE), input_names=["pixel_values"], output_names=outputs,
                          dynamic_axes={n: {0: "batch"} for n in ["pixel_values", *outputs]}, opset_version=OPSET,
                          dynamo=False)
    pred.model.config.save_pretrained(out)
    from .model_loader import load_model

    load_model(model_id).processor.save_pretrained(out)
    src = Path(str(model_id))
    for name in ("calibration.json", "openset.safetensors"):
        if (src / name).is_file():
            shutil.copy(src / name, out / name)
    check = torch.randn(4, 3, *pred.data_config.crop, generator=torch.Generator().manual_seed(1))
    ref = pred.logits(check).numpy()
    record: dict[str, Any] = {"source": str(model_id), "source_sha256": weights_sha256(src), "format": "onnx",
                              "opset": OPSET, "torch": torch.__version__, "exporter": "torch.onnx.export (TorchScript)",
                              "outputs": outputs, "files": [ONNX_FILE]}
    record["fp32_max_abs_logit_diff"] = float(np.abs(OnnxModel(out / ONNX_FILE).run(check)[0].numpy() - ref).max())
    # the agreement check: the two Predictors as a user gets them (calibration, photo views), fp32 both
    torch_pred = Predictor.from_pretrained(model_id, bf16=False, backend="torch")
    if images is not None and len(images):
        inputs, held_out, source = list(images), True, images_source or f"{len(images)} given images"
    else:
        inputs = [torch.randint(0, 256, (3, *pred.data_config.crop), dtype=torch.uint8,
                                generator=torch.Generator().manual_seed(2 + i)) for i in range(16)]
        held_out, source = False, "16 random-pixel images (no held-out images given: export with --dataset D)"
    onnx_pred = OnnxPredictor(out)
    record["agreement"] = {**agreement(torch_pred, onnx_pred, inputs), "held_out": held_out, "images": source,
                           "compared": "ONNX Predictor vs torch Predictor, fp32, calibrated, same preprocessing"}
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(out / ONNX_FILE), str(out / INT8_FILE), weight_type=QuantType.QInt8)
        record["files"].append(INT8_FILE)
        record["int8"] = "dynamic quantisation (onnxruntime.quantization.quantize_dynamic, QInt8 weights)"
        record["int8_max_abs_logit_diff"] = float(np.abs(OnnxModel(out / INT8_FILE).run(check)[0].numpy() - ref).max())
        record["int8_agreement"] = {**agreement(torch_pred, OnnxPredictor(out, int8=True), inputs),
                                    "held_out": held_out, "images": source}
    (out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


class OnnxPredictor(Predictor):
    """The ``Predictor`` on an exported folder alone (no torch weights needed): ONNX Runtime runs the forward
    pass; preprocessing, photo views, calibration, open-set score and decisions are the Predictor's own.
    For a model folder with an export, ``Predictor.from_pretrained(model, backend="onnx")`` is the same."""

    def __init__(self, folder: str | Path, *, int8: bool = False, batch_size: int = 32, num_threads: int | None = None,
                 temperature: float | None = None, unknown_threshold: float | None = None,
                 ood_threshold: float | None = None, photo_views: bool | None = None,
                 use_calibration: bool = True, **kwargs: Any) -> None:
        from transformers import AutoConfig, AutoImageProcessor

        from .model_loader import read_calibration
        from .preprocessing import DataConfig

        folder = Path(folder)
        onnx = OnnxModel(folder / (INT8_FILE if int8 else ONNX_FILE), num_threads)
        config = AutoConfig.from_pretrained(str(folder))
        data_config = DataConfig.from_processor(AutoImageProcessor.from_pretrained(str(folder)))
        calib = read_calibration(folder) if use_calibration else None
        opts = calibrated_options(folder, calib, config, temperature, unknown_threshold, ood_threshold, photo_views)
        tile_threshold, envelope = opts.pop("ood_tile_threshold"), opts.pop("imaging_envelope")
        super().__init__(None, data_config, batch_size=batch_size, num_threads=num_threads, onnx=onnx, config=config,
                         **opts, **kwargs)
        self.ood_tile_threshold = tile_threshold
        if envelope is not None:
            self.imaging_envelope = envelope
        self.calibration = calib
        self.provenance = {"onnx": str(onnx.path), "backend": self.backend}


@dataclass
class ExportArguments:
    """``hf-minerals export``: an ONNX copy of a model folder (ONNX Runtime, optionally int8)."""

    model: str = field(metadata={"help": "model folder or Hub id"})
    output_dir: str | None = field(default=None, metadata={"help": "default: <model>/onnx"})
    format: str = field(default="onnx", metadata={"help": "export format", "choices": ["onnx"]})
    int8: bool = field(default=False, metadata={"help": "also write a dynamically quantised int8 model"})
    dataset: str | None = field(default=None, metadata={
        "help": "data set whose held-out split checks ONNX vs torch answers (without it: random pixels, and "
                "`--backend auto` keeps torch)"})
    split: str = field(default="validation", metadata={"help": "held-out split of --dataset for the check"})


def main(argv: list[str] | None = None) -> int:
    from .cli_args import parse_command_line, save_args

    (args,) = parse_command_line([ExportArguments], argv, prog="hf-minerals export")
    out = Path(args.output_dir or Path(args.model) / "onnx")
    images, source = held_out_images(args.dataset, args.split) if args.dataset else (None, "")
    record = export_onnx(args.model, out, int8=args.int8, images=images, images_source=source)
    save_args(out / "args.yaml", args, command="hf-minerals export")
    print(json.dumps(record, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0
