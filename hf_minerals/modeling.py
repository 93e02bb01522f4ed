"""Model loading: safetensors only, no remote code, and a loud, fast error when weights are missing."""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import huggingface_hub
import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    PretrainedConfig,
    PreTrainedModel,
)

from .hub_access import hub_reachable
from .preprocessing import aspect_preserving_processor

logger = logging.getLogger(__name__)


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


def normal_file_modes(folder: str | os.PathLike) -> int:
    """Give the files of a saved model the user's normal permissions; return how many changed.

    safetensors writes through a private temporary file renamed into place, so ``model.safetensors``
    ends up mode 0600 while config.json is 0644 (umask 022): a model folder shared with a group, a web
    server or a container user would then hold weights nobody else can read.
    """
    umask = os.umask(0)
    os.umask(umask)
    want = 0o666 & ~umask
    changed = 0
    for path in Path(folder).glob("*"):
        if path.is_file() and not path.is_symlink() and (path.stat().st_mode & 0o777) != want \
                and (path.stat().st_mode & 0o777) == 0o600:
            path.chmod(want)
            changed += 1
    return changed


# -- building a classifier for training -----------------------------------------------------------

COMPACT_PREFIX = "compact:"
BUNDLED_DIR = Path(__file__).parent / "model_configs"
# Hub ids whose architecture (config + preprocessor, no weights) ships in hf_minerals/model_configs/,
# so `init: scratch` works offline with the true architecture of the paper's three models.
BUNDLED_HUB_IDS = (
    "microsoft/swin-tiny-patch4-window7-224",
    "google/mobilenet_v2_1.0_224",
    "microsoft/resnet-50",
)
COMPACT_MODELS = ("swin", "mobilenet_v2", "resnet")
# transformers' MobileNetV2 copies TF's BatchNorm *decay* 0.997 into torch's `momentum`, which weights the
# *new* batch: running statistics become those of the last batch and eval after fine-tuning collapses.
TF_MOMENTUM_THRESHOLD = 0.5


def bundled_config_dir(name: str) -> Path | None:
    """The shipped config folder of ``compact:<arch>`` or of one of the three paper Hub ids, else None."""
    if name.startswith(COMPACT_PREFIX):
        arch = name[len(COMPACT_PREFIX) :]
        if arch not in COMPACT_MODELS:
            raise ValueError(f"unknown compact model '{name}'; choose one of " + ", ".join(f"compact:{a}" for a in COMPACT_MODELS))
        return BUNDLED_DIR / f"compact-{arch}"
    if name in BUNDLED_HUB_IDS:
        return BUNDLED_DIR / name.replace("/", "--")
    return None


def parse_overrides(overrides: str | dict[str, Any] | None) -> dict[str, Any]:
    """``config_overrides`` as a mapping: a dict, or a YAML/JSON flow mapping string ``{embed_dim: 32}``."""
    if not overrides:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    import yaml

    value = yaml.safe_load(overrides)
    if not isinstance(value, dict):
        raise ValueError(f"config_overrides must be a mapping like '{{embed_dim: 32, depths: [1, 1, 2, 1]}}', got {overrides!r}")
    return value


def _check_override_keys(config: PretrainedConfig, overrides: dict[str, Any]) -> None:
    known = set(config.to_dict())
    for key in sorted(set(overrides) - known):
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"config_overrides: '{key}' is not a field of {type(config).__name__}{hint}")


def label_config(labels: Sequence[str]) -> dict[str, Any]:
    """``num_labels``, ``id2label``, ``label2id`` for a model config: the one label <-> class-id mapping of a model."""
    id2label = {i: name for i, name in enumerate(labels)}
    return {"num_labels": len(labels), "id2label": id2label, "label2id": {n: i for i, n in id2label.items()}}


def _scratch_source(name: str, revision: str | None) -> tuple[str, PretrainedConfig]:
    """Where the architecture of a scratch model comes from: local folder, Hub (or cache), or the bundled copy."""
    bundled = bundled_config_dir(name)
    if name.startswith(COMPACT_PREFIX) or Path(name).is_dir():
        src = str(bundled or name)
        return src, AutoConfig.from_pretrained(src)
    try:
        return name, AutoConfig.from_pretrained(name, revision=revision)
    except OSError as exc:
        if bundled is None:
            raise WeightsUnavailableError(
                f"Cannot load the config of '{name}' for `init: scratch`: {str(exc).splitlines()[0]}.\n"
                "Ways out: pass a local folder holding its config.json + preprocessor_config.json, connect to the Hub, "
                f"or use a built-in architecture: {', '.join(BUNDLED_HUB_IDS)} or compact:{{{','.join(COMPACT_MODELS)}}}."
            ) from exc
        logger.warning("Hub config of '%s' unavailable; using the bundled copy in %s (same architecture)", name, bundled)
        return str(bundled), AutoConfig.from_pretrained(str(bundled))


def use_offline_mode_if_unreachable(timeout: float = 3.0) -> bool:
    """Switch this process to HF offline mode (cache only) when the Hub cannot be reached; return True if switched.

    Only the transport changes: what is cached is still used, and what is missing fails loudly.
    """
    if huggingface_hub.is_offline_mode() or hub_reachable(timeout):
        return False
    logger.warning(
        "The Hub (%s) is unreachable: working offline from the local cache (set HF_HUB_OFFLINE=1 to skip this check).",
        huggingface_hub.constants.ENDPOINT,
    )
    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True  # transformers and datasets ask huggingface_hub
    return True


def check_pretrained_available(name: str, revision: str | None = None) -> None:
    """Fail in seconds, before any data is loaded, when pretrained weights of ``name`` cannot be had."""
    if name.startswith(COMPACT_PREFIX):
        raise WeightsUnavailableError(
            f"'{name}' is a compact architecture built from a config: it has no pretrained weights. "
            "Use `--init scratch` with it, or a Hub id / local folder for `--init pretrained`."
        )
    if Path(name).is_dir():
        if not any(Path(name).glob("*.safetensors")):
            load_classifier(name)  # raises the safetensors-only error
        return
    try:
        AutoConfig.from_pretrained(name, revision=revision)
    except OSError as exc:
        raise _unavailable(name, exc) from exc
    if huggingface_hub.is_offline_mode():
        cached = [huggingface_hub.try_to_load_from_cache(name, f, revision=revision) for f in SAFETENSORS_FILES]
        if not any(isinstance(c, str) for c in cached):
            raise _unavailable(name, OSError("offline and no safetensors weights in the cache"))


SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")


def fix_batchnorm_momentum(model: torch.nn.Module, momentum: float = 0.1) -> int:
    """Set TF-style BatchNorm momenta (> 0.5, i.e. a *decay*) to a PyTorch momentum; return how many changed.

    torch's running stat update is ``(1 - momentum) * running + momentum * batch``; MobileNetV2 in
    transformers passes TF's decay 0.997 here, so running stats follow the last batch. The literal
    translation is 0.003, but then stats barely move in a short fine-tune (1 - 0.997^300 = 0.6) and
    lag far behind fast-changing weights when training from scratch; PyTorch's default 0.1 tracks
    the weights within a few dozen steps, which is what a few-epoch fine-tune needs.
    """
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and (module.momentum or 0) > TF_MOMENTUM_THRESHOLD:
            module.momentum = momentum
            changed += 1
    return changed


# -- pretrained means pretrained ------------------------------------------------------------------

#: Parameter-name prefixes of the classification head of transformers' image classifiers (Swin, ViT,
#: ResNet ``classifier.1``, MobileNetV2, ConvNext...): the only tensors a fine-tune may start fresh.
HEAD_PREFIXES = ("classifier.",)


class NotPretrainedError(WeightsUnavailableError):
    """``init: pretrained`` would re-initialise backbone tensors: the run would not be the pretrained model."""


def is_head(key: str) -> bool:
    return key.startswith(HEAD_PREFIXES)


def _meta_shapes(config: PretrainedConfig) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the model a config builds, on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = AutoModelForImageClassification.from_config(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def override_shape_changes(config: PretrainedConfig, overrides: dict[str, Any]) -> list[str]:
    """Backbone tensors whose shape (or existence) ``overrides`` change: pretrained weights cannot fill them."""
    if not overrides:
        return []
    changed = config.__class__.from_dict({**config.to_dict(), **overrides})
    before, after = _meta_shapes(config), _meta_shapes(changed)
    keys = sorted(k for k in set(before) | set(after) if not is_head(k) and before.get(k) != after.get(k))
    return keys


def _name_tensors(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")


def check_overrides_keep_shapes(name: str, overrides: str | dict[str, Any] | None, revision: str | None = None) -> None:
    """Up front, before any data or weights: a ``config_overrides`` that reshapes backbone tensors is an error."""
    overrides = parse_overrides(overrides)
    if not overrides:
        return
    config = AutoConfig.from_pretrained(name, revision=revision)
    _check_override_keys(config, overrides)
    keys = override_shape_changes(config, overrides)
    if keys:
        raise NotPretrainedError(
            f"config_overrides {overrides} change the shape of {len(keys)} pretrained tensor(s) of '{name}': "
            f"{_name_tensors(keys)}. Under `init: pretrained` they would start from random weights. "
            "Drop the shape-changing overrides (dropout / drop_path_rate are fine), or train with `--init scratch`."
        )


def new_tensors(loading_info: dict[str, Any]) -> list[str]:
    """Tensors ``from_pretrained`` did not fill from the checkpoint: missing ones and size-mismatched ones."""
    missing = set(loading_info.get("missing_keys") or ())
    mismatched = {item[0] if isinstance(item, (tuple, list)) else item for item in loading_info.get("mismatched_keys") or ()}
    return sorted(missing | mismatched)


def check_only_head_is_new(name: str, loading_info: dict[str, Any]) -> list[str]:
    """Raise naming every non-head tensor that was newly initialised; return the new (head) tensors."""
    fresh = new_tensors(loading_info)
    backbone = [k for k in fresh if not is_head(k)]
    if backbone:
        raise NotPretrainedError(
            f"'{name}' does not hold pretrained weights for {len(backbone)} backbone tensor(s): {_name_tensors(backbone)}. "
            "They would be randomly initialised while the run says `init: pretrained`. Check that the id / folder is "
            "the architecture you meant (and any config_overrides), or train from random weights on purpose with "
            "`--init scratch`."
        )
    unexpected = sorted(loading_info.get("unexpected_keys") or ())
    if unexpected:
        logger.warning("'%s': %d checkpoint tensor(s) unused by the model: %s", name, len(unexpected), _name_tensors(unexpected))
    return fresh


def build_classifier(
    name: str,
    labels: list[str],
    init: str = "pretrained",
    config_overrides: str | dict[str, Any] | None = None,
    bn_momentum: float = 0.1,
    revision: str | None = None,
) -> tuple[PreTrainedModel, Any]:
    """A classifier for ``labels`` and its image processor.

    ``init="pretrained"``: weights from the Hub id / local folder (safetensors only), the head replaced
    for the mineral labels (``ignore_mismatched_sizes``); any other tensor left newly initialised, or a
    shape-changing ``config_overrides``, is a ``NotPretrainedError`` naming the tensors. ``init="scratch"``: the same architecture
    from its config, randomly initialised (seed first). Never falls back from one to the other.
    """
    overrides = parse_overrides(config_overrides)
    if init == "pretrained":
        check_pretrained_available(name, revision)
        check_overrides_keep_shapes(name, overrides, revision)
        model, info = load_classifier(
            name, revision=revision, ignore_mismatched_sizes=True, output_loading_info=True, **label_config(labels), **overrides
        )
        model.hf_minerals_new_tensors = check_only_head_is_new(name, info)
        logger.info("'%s': pretrained backbone loaded; newly initialised (head): %s", name, ", ".join(model.hf_minerals_new_tensors))
        processor = load_processor(name, revision=revision)
    elif init == "scratch":
        src, config = _scratch_source(name, revision)
        _check_override_keys(config, overrides)
        for key, value in {**overrides, **label_config(labels)}.items():
            setattr(config, key, value)
        model = AutoModelForImageClassification.from_config(config)
        processor = load_processor(src) if src != name else load_processor(name, revision=revision)
    else:
        raise ValueError(f"init must be 'pretrained' or 'scratch', got {init!r}")
    processor = aspect_preserving_processor(processor)  # one geometry for every architecture (saved with the model)
    n = fix_batchnorm_momentum(model, bn_momentum)
    if n:
        logger.info("set the momentum of %d TF-style BatchNorm layers to %s", n, bn_momentum)
    return model, processor
