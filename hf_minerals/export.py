"""``hf-minerals export --model M --format onnx [--int8]``: a model folder for field laptops without torch.

Route: ``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic batch) + ONNX Runtime - ``optimum``'s
exporter is not used because it is not pinned against transformers 5.24 here. ``--int8`` adds a dynamically
quantised copy (``onnxruntime.quantization.quantize_dynamic``: int8 weights of MatMul/Gemm, activations
quantised on the fly). The folder gets ``model.onnx`` [``model_int8.onnx``], the processor and config (labels,
input size) and ``calibration.json`` of the source model, and ``export.json`` with the check made right after
export: max |logit difference| vs torch on a random batch. :class:`OnnxPredictor` runs it through the same
preprocessing, calibration and decisions as the torch ``Predictor``.

Needs the optional extra: ``pip install 'hf-minerals[onnx]'`` (onnx, onnxruntime).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .predict import Predictor

ONNX_FILE, INT8_FILE = "model.onnx", "model_int8.onnx"
OPSET = 17


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"ONNX export needs the optional extra: pip install 'hf-minerals[onnx]' ({exc})") from None


class _Logits(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def export_onnx(model_id: str | Path, output_dir: str | Path, int8: bool = False) -> dict[str, Any]:
    """Export ``model_id`` to ``output_dir`` (see module docstring); returns the ``export.json`` record."""
    import warnings

    _need_onnx()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = Predictor.from_pretrained(model_id, bf16=False, use_calibration=False)
    model = _Logits(pred.model.to(memory_format=torch.contiguous_format)).eval()
    x = torch.randn(2, 3, *pred.data_config.crop, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():  # tracer notes on shape-dependent Python branches: input size is fixed
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(out / ONNX_FILE), input_names=["pixel_values"], output_names=["logits"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                          dynamo=False)
    pred.model.config.save_pretrained(out)
    from .model_loader import load_model

    load_model(model_id).processor.save_pretrained(out)
    src = Path(str(model_id))
    if (src / "calibration.json").is_file():
        shutil.copy(src / "calibration.json", out / "calibration.json")
    check = torch.randn(4, 3, *pred.data_config.crop, generator=torch.Generator().manual_seed(1))
    ref = pred.logits(check).numpy()
    record: dict[str, Any] = {"source": str(model_id), "format": "onnx", "opset": OPSET, "torch": torch.__version__,
                              "exporter": "torch.onnx.export (TorchScript)", "files": [ONNX_FILE]}
    record["fp32_max_abs_logit_diff"] = float(np.abs(_session(out / ONNX_FILE).run(None, {"pixel_values": check.numpy()})[0]
                                                     - ref).max())
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(out / ONNX_FILE), str(out / INT8_FILE), weight_type=QuantType.QInt8)
        record["files"].append(INT8_FILE)
        record["int8"] = "dynamic quantisation (onnxruntime.quantization.quantize_dynamic, QInt8 weights)"
        record["int8_max_abs_logit_diff"] = float(np.abs(
            _session(out / INT8_FILE).run(None, {"pixel_values": check.numpy()})[0] - ref).max())
    (out / "export.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxPredictor(Predictor):
    """The ``Predictor`` with ONNX Runtime as the model: same preprocessing, calibration and decisions."""

    def __init__(self, folder: str | Path, *, int8: bool = False, batch_size: int = 32, num_threads: int | None = None,
                 temperature: float | None = None, unknown_threshold: float | None = None,
                 use_calibration: bool = True) -> None:
        from transformers import AutoConfig

        from .model_loader import read_calibration
        from .preprocessing import DataConfig

        _need_onnx()
        folder = Path(folder)
        path = folder / (INT8_FILE if int8 else ONNX_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run `hf-minerals export --model M --output_dir {folder}"
                                    f"{' --int8' if int8 else ''}`")
        self.session = _session(path, num_threads)
        self.config = AutoConfig.from_pretrained(str(folder))
        from transformers import AutoImageProcessor

        self.data_config = DataConfig.from_processor(AutoImageProcessor.from_pretrained(str(folder)))
        calib = read_calibration(folder) if use_calibration else None
        self.calibration = calib
        self.temperature = float(temperature if temperature is not None else (calib or {}).get("temperature", 1.0))
        self.unknown_threshold = unknown_threshold if unknown_threshold is not None else (calib or {}).get("unknown_threshold")
        self.batch_size, self.bf16, self.channels_last = batch_size, False, False
        self.device = torch.device("cpu")
        self.model = None  # no torch model: attribution and the open-set score need the torch Predictor
        self.ood, self.ood_threshold, self.provenance = None, None, {"onnx": str(path)}
        self.id2label = {int(k): v for k, v in self.config.id2label.items()}
        self.labels = [self.id2label[i] for i in range(len(self.id2label))]
        self.backend = f"onnxruntime ({path.name})"

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        outs = [torch.from_numpy(self.session.run(None, {"pixel_values": c.contiguous().numpy()})[0])
                for c in pixel_values.split(self.batch_size)]
        return torch.cat(outs).float() if outs else torch.zeros(0, len(self.labels))


@dataclass
class ExportArguments:
    """``hf-minerals export``: an ONNX copy of a model folder (ONNX Runtime, optionally int8)."""

    model: str = field(metadata={"help": "model folder or Hub id"})
    output_dir: str | None = field(default=None, metadata={"help": "default: <model>/onnx"})
    format: str = field(default="onnx", metadata={"help": "export format", "choices": ["onnx"]})
    int8: bool = field(default=False, metadata={"help": "also write a dynamically quantised int8 model"})


def main(argv: list[str] | None = None) -> int:
    from .cli_args import parse_command_line, save_args

    (args,) = parse_command_line([ExportArguments], argv, prog="hf-minerals export")
    out = Path(args.output_dir or Path(args.model) / "onnx")
    record = export_onnx(args.model, out, int8=args.int8)
    save_args(out / "args.yaml", args, command="hf-minerals export")
    print(json.dumps(record, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0
