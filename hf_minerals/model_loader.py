"""The one model loader: model, processor, calibration and provenance together, from a folder or a Hub id.

Every command that uses a trained model (evaluate, calibrate, predict, map, explain, the Space and the
benchmarks) loads it here, through ``Predictor.from_pretrained``, so they share one policy:

* a path that exists is a local folder; anything else shaped like ``owner/name`` is a Hub id; anything
  else is "model folder not found";
* a Hub that cannot be reached switches this process to the local cache (``HF_HUB_OFFLINE``) within
  seconds, instead of retrying for half a minute; what is not cached then fails with "offline";
* every failure names its cause: missing folder, no config, no safetensors, permission denied,
  corrupt or truncated weights, offline Hub, no such repository;
* ``calibration.json`` that is not there means "uncalibrated" (temperature 1.0, no threshold); one that is
  there but cannot be read is an error for a local folder and a loud warning for a Hub model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import huggingface_hub

from .inputs import os_reason
from .modeling import (
    WeightsUnavailableError,
    _unavailable,
    load_classifier,
    load_processor,
    use_offline_mode_if_unreachable,
)

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


class ModelLoadError(WeightsUnavailableError):
    """A model that cannot be loaded; the message names the cause and the way out."""


class CalibrationWarning(UserWarning):
    """A Hub model's calibration.json exists but could not be read: answers are uncalibrated."""


@dataclass
class LoadedModel:
    """What a command needs to classify: the model, its processor, its calibration and where all came from."""

    model: Any
    processor: Any
    calibration: dict[str, Any] | None
    provenance: dict[str, Any] = field(default_factory=dict)


def _check_local(folder: Path) -> None:
    """Fail with the real cause before transformers turns it into a vague OSError."""
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ModelLoadError(f"cannot read model folder '{folder}': permission denied")
    config = folder / "config.json"
    if not config.exists():
        raise ModelLoadError(f"'{folder}' is not a model folder: it has no config.json "
                             "(a trained model folder holds config.json, model.safetensors, preprocessor_config.json)")
    weights = [folder / n for n in WEIGHTS_FILES if (folder / n).exists()] or sorted(folder.glob("*.safetensors"))
    if not weights:
        try:
            load_classifier(folder)  # raises the safetensors-only error with its advice
        except WeightsUnavailableError as exc:
            raise ModelLoadError(str(exc)) from None
    for path in [config, folder / "preprocessor_config.json", *weights]:
        if not path.exists():
            continue
        try:
            with path.open("rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise ModelLoadError(f"cannot read '{path}': {os_reason(exc)}") from exc
    for path in weights:
        if path.suffix == ".safetensors":
            check_safetensors(path)


def check_safetensors(path: str | os.PathLike) -> None:
    """Raise ``ModelLoadError`` when a safetensors file is truncated or corrupt (header and length checked)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            fh.keys()
    except OSError as exc:
        raise ModelLoadError(f"cannot read '{path}': {os_reason(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - SafetensorError is not exported as a stable type
        raise ModelLoadError(f"corrupt or truncated weights in '{path}' ({str(exc).splitlines()[0]}); "
                             "save the model again or re-download it") from exc


def read_calibration(model_id: str | os.PathLike, revision: str | None = None) -> dict[str, Any] | None:
    """``calibration.json`` of a local folder or Hub repo; None when there is none (see module docstring)."""
    local = Path(str(model_id))
    if local.is_dir():
        path = local / CALIBRATION_FILE
        if not path.exists():
            return None
        try:
            return _calibration_record(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else f"not valid calibration JSON ({exc})"
            raise ModelLoadError(f"cannot read '{path}': {reason}; fix it, delete it, or run `hf-minerals calibrate`") from exc
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        path = hf_hub_download(str(model_id), CALIBRATION_FILE, revision=revision)
    except LocalEntryNotFoundError as exc:  # offline / unreachable and not cached: we cannot tell
        why = f"not in the local cache and the Hub cannot be asked ({str(exc).splitlines()[0]})"
    except EntryNotFoundError:
        return None  # the repo has no calibration: uncalibrated, nothing to warn about
    except Exception as exc:  # noqa: BLE001 - any other failure must be said, not read as T = 1
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    else:
        try:
            return _calibration_record(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            why = f"unreadable ({exc})"
    warnings.warn(f"calibration.json of '{model_id}' could not be read: {why}. Answers are UNCALIBRATED "
                  "(temperature 1.0, no unknown threshold unless given).", CalibrationWarning, stacklevel=2)
    logger.warning("calibration.json of '%s' could not be read: %s", model_id, why)
    return None


def _calibration_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    t = record.get("temperature", 1.0)
    if not isinstance(t, (int, float)) or not t > 0:
        raise ValueError(f"temperature must be a number > 0, got {t!r}")
    return record


def load_model(model_id: str | os.PathLike, *, revision: str | None = None, use_calibration: bool = True) -> LoadedModel:
    """Model + processor + calibration + provenance from a local folder or a Hub id (see module docstring)."""
    name = str(model_id)
    local = Path(name).expanduser()
    if local.exists() or not _HUB_ID.match(name) or name.startswith((".", "/", "~")):
        if not local.exists():
            raise ModelLoadError(f"model folder not found: '{name}' (give a trained model folder or a Hub id owner/name)")
        if not local.is_dir():
            raise ModelLoadError(f"'{name}' is a file, not a model folder (give the folder holding config.json)")
        _check_local(local)
        model, processor = load_classifier(local), load_processor(local)
        provenance = {"model": name, "source": "local folder", "path": str(local.resolve())}
    else:
        use_offline_mode_if_unreachable()
        try:
            model = load_classifier(name, revision=revision)
            processor = load_processor(name, revision=revision)
        except WeightsUnavailableError as exc:
            raise ModelLoadError(f"no local folder '{name}', and as a Hub id: {exc}") from exc
        except OSError as exc:
            raise ModelLoadError(f"no local folder '{name}', and as a Hub id: {_unavailable(name, exc)}") from exc
        except Exception as exc:  # noqa: BLE001 - a cached file that is corrupt: say so
            raise ModelLoadError(f"cannot load '{name}' from the Hub cache: {str(exc).splitlines()[0]} "
                                 "(corrupt download? delete it from the cache and retry)") from exc
        provenance = {"model": name, "source": "hub", "revision": revision or "main",
                      "offline": bool(huggingface_hub.constants.HF_HUB_OFFLINE)}
    calibration = read_calibration(local if local.is_dir() else name, revision) if use_calibration else None
    provenance["calibration"] = CALIBRATION_FILE if calibration else None
    return LoadedModel(model, processor, calibration, provenance)
