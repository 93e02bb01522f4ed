"""Model loading: safetensors only, no remote code, and a loud, fast error when weights are missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import AutoImageProcessor, AutoModelForImageClassification, PreTrainedModel


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but cannot be had (offline, no cache, wrong id)."""


def _unavailable(model_id: str, exc: Exception) -> WeightsUnavailableError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    why = "the Hub is offline (HF_HUB_OFFLINE=1) and they are not in the local cache" if offline else str(exc).splitlines()[0]
    return WeightsUnavailableError(
        f"Cannot load pretrained weights for '{model_id}': {why}.\n"
        "Ways out: (1) pass a local folder holding config.json + model.safetensors + preprocessor_config.json "
        "(e.g. one you downloaded with `hf download {id}` on a machine with internet); "
        "(2) connect to the Hub (unset HF_HUB_OFFLINE); "
        "(3) train from random weights on purpose with `--init scratch`.".replace("{id}", model_id)
    )


def load_processor(model_id: str | os.PathLike, **kwargs: Any) -> Any:
    """The image processor saved with a model (PIL backend here: no torchvision)."""
    try:
        return AutoImageProcessor.from_pretrained(str(model_id), **kwargs)
    except OSError as exc:
        raise _unavailable(str(model_id), exc) from exc


def load_classifier(model_id: str | os.PathLike, **kwargs: Any) -> PreTrainedModel:
    """An image classifier from a Hub id or local folder, from safetensors only, never remote code."""
    kwargs.setdefault("use_safetensors", True)
    kwargs["trust_remote_code"] = False
    local = Path(str(model_id))
    if local.is_dir() and not any(local.glob("*.safetensors")):
        raise WeightsUnavailableError(
            f"'{model_id}' has no *.safetensors weights; hf-minerals loads safetensors only "
            "(pickle-based .bin files can run arbitrary code). Convert with `model.save_pretrained(dir)`."
        )
    try:
        return AutoModelForImageClassification.from_pretrained(str(model_id), **kwargs)
    except OSError as exc:
        raise _unavailable(str(model_id), exc) from exc
