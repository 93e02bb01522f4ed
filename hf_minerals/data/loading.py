"""Reading a built data set back: the ONE loader of splits (training, evaluation, calibration, comparison
and benchmarks all come through here), whether it is synthetic, and data-set labels as model ids.

A data set is a ``save_to_disk`` folder (``hf-minerals build-dataset``), a Hub data-set id, or an
in-memory ``Dataset``/``DatasetDict``. Every failure says which data set and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

IN_MEMORY = "<in-memory dataset>"


class DatasetLoadError(FileNotFoundError):
    """The data set cannot be found or read as given (not a saved folder, unknown Hub id, offline...)."""


def _from_hub(name: str, config_name: str | None, revision: str | None, split: str | None) -> Any:
    import datasets

    try:
        return datasets.load_dataset(name, config_name, split=split, revision=revision)
    except Exception as exc:  # offline, unknown id, no such split: say which and what to do
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        what = f"'{name}'" + (f" split '{split}'" if split else "")
        raise DatasetLoadError(
            f"cannot load data set {what}: not a local folder, and from the Hub: {first}. "
            "Build one locally with `python scripts/build_dataset.py` and pass its folder."
        ) from exc


def load_dataset_dict(name: str | Path, config_name: str | None = None, revision: str | None = None) -> Any:
    """A ``DatasetDict`` (or a single ``Dataset``) from a ``save_to_disk`` folder or a Hub data-set id."""
    import datasets

    path = Path(name)
    if path.is_dir():
        if not ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            raise DatasetLoadError(
                f"{path} is not a saved data set (no dataset_dict.json / state.json). Build one with "
                "`python scripts/build_dataset.py` or pass a Hub data-set id."
            )
        return datasets.load_from_disk(str(path))
    if path.exists():
        raise DatasetLoadError(f"{path} is a file; expected a data-set folder (save_to_disk) or a Hub id")
    return _from_hub(str(name), config_name, revision, None)


def saved_folder(ds: Any) -> str | None:
    """The ``save_to_disk`` folder an in-memory split was loaded from (to name it in a report), if any."""
    for cache in getattr(ds, "cache_files", None) or []:
        root = Path(cache.get("filename", "")).parent.parent
        if (root / "dataset_dict.json").exists():
            return str(root)
    return None


def load_split(dataset_or_dir: Any, split: str = "test", *, config_name: str | None = None,
               revision: str | None = None) -> tuple[Any, str]:
    """(``datasets.Dataset`` for ``split``, the data set's name) from a Dataset/DatasetDict, a folder or a Hub id.

    A single ``Dataset`` is taken as the split; a Hub id loads only that split.
    """
    import datasets

    if isinstance(dataset_or_dir, datasets.Dataset):
        return dataset_or_dir, saved_folder(dataset_or_dir) or IN_MEMORY
    if isinstance(dataset_or_dir, datasets.DatasetDict):
        ds = dataset_or_dir
        name = next((f for f in map(saved_folder, ds.values()) if f), None) or IN_MEMORY
    else:
        name = str(dataset_or_dir)
        if not Path(name).exists():
            return _from_hub(name, config_name, revision, split), name
        ds = load_dataset_dict(name)
    if isinstance(ds, datasets.Dataset):
        return ds, name
    if split not in ds:
        raise KeyError(f"data set {name} has no split '{split}'; it has: {', '.join(ds.keys())}")
    return ds[split], name


def is_synthetic(ds: Any) -> bool:
    """Whether the data are synthetic (column ``synthetic`` or the data-set description says so)."""
    if "synthetic" in ds.column_names:
        return bool(any(ds["synthetic"]))
    return "synthetic" in (ds.info.description or "").lower()


def model_ids(names: Sequence[str], model_labels: Sequence[str]) -> np.ndarray:
    """Data-set class names as the model's class ids, matched by mineral name (the orders may differ).
    A class the model does not know is an error, never a silent wrong id."""
    labels = list(model_labels)
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise ValueError(f"the data set has classes the model does not know: {unknown}; model classes: {labels}")
    index = {n: i for i, n in enumerate(labels)}
    return np.array([index[n] for n in names], dtype=np.int64)
