"""Shared fixtures. Everything offline: HF_HUB_OFFLINE=1 is set before any HF import."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("WANDB_DISABLED", "true")

import pytest  # noqa: E402

TESTS_DIR = Path(__file__).parent
REPO_ROOT = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))

from tiny_models import make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory):
    """Callable ``(arch, labels=..., image_size=64, init="default"|"kaiming") -> folder`` of a saved random-init
    tiny model (cached)."""
    cache: dict = {}

    def factory(arch: str = "swin", labels=None, image_size: int = 64, init: str = "default") -> Path:
        from tiny_models import DEFAULT_LABELS

        labels = tuple(labels or DEFAULT_LABELS)
        key = (arch, labels, image_size, init)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"tiny-{arch}")
            cache[key] = make_tiny_model(arch, out, labels=labels, image_size=image_size, init=init)
        return cache[key]

    return factory


@pytest.fixture
def hub_server(tmp_path_factory):
    """A loopback Hub (tests/hub_server.py) with HF_ENDPOINT etc. and huggingface_hub/datasets constants
    pointed at it for the test (HF_HUB_OFFLINE=0, HF_HUB_DISABLE_XET=1, fake token, temp HF_HOME); restored after."""
    from hub_server import hub_server_fixture

    yield from hub_server_fixture(tmp_path_factory)
