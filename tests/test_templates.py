"""One source for the card templates: the repository-root files. The package's copies are links to them in a
checkout (editable install) and byte-identical files in a built wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hf_minerals.templates import NAMES, template_path

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", NAMES)
def test_package_reads_the_root_template(name):
    path = template_path(name)
    assert path.is_symlink() and path.resolve() == (REPO / name).resolve()  # a link, not a copy that can drift
    assert path.read_bytes() == (REPO / name).read_bytes()


def test_card_modules_use_the_one_lookup():
    from hf_minerals.data.card import template_path as dataset_template
    from hf_minerals.model_card import TEMPLATE_PATH

    assert TEMPLATE_PATH == template_path("model_card.md") and dataset_template() == template_path("dataset_card.md")
    with pytest.raises(ValueError, match="unknown card template"):
        template_path("space_card.md")


def test_wheel_carries_the_root_templates(tmp_path):
    """Build a wheel from a copy of the tree (links kept as links) and compare its templates with the root files."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "hf_minerals", src / "hf_minerals", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", *NAMES):
        shutil.copy2(REPO / name, src / name)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("hf_minerals-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        for name in NAMES:
            assert zf.read(f"hf_minerals/templates/{name}") == (REPO / name).read_bytes(), name
