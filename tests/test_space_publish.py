"""Publishing the Space to the loopback Hub: the repo gets app, pins, card, synthetic examples and the
library, and the published copy runs on its own (vendored library, model id from model_id.txt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import DEFAULT_LABELS

REPO = Path(__file__).resolve().parents[1]
SPACE = REPO / "space"


def test_space_front_matter_is_valid():
    import gradio
    from huggingface_hub import SpaceCard

    data = SpaceCard.load(SPACE / "README.md").data.to_dict()
    for key in ("title", "emoji", "colorFrom", "colorTo", "license", "models"):
        assert data.get(key), key
    assert data["sdk"] == "gradio" and data["sdk_version"] == gradio.__version__  # the Space runs the tested Gradio
    assert (SPACE / data["app_file"]).is_file()
    colours = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}  # what the Hub accepts
    assert data["colorFrom"] in colours and data["colorTo"] in colours
    assert len(data.get("short_description", "")) <= 60
    examples = sorted((SPACE / "examples").glob("*.png"))
    assert examples and all(p.name.startswith("synthetic_") for p in examples)
    meta = [json.loads(line) for line in (SPACE / "examples" / "metadata.jsonl").read_text().splitlines()]
    assert {m["file_name"] for m in meta} == {p.name for p in examples} and all(m["synthetic"] for m in meta)


def _imports_reachable_from(path: Path) -> set[str]:
    """Top-level modules imported (also lazily, inside functions) by ``path`` and the hf_minerals modules it reaches."""
    import ast

    seen, todo, found = set(), [path], set()
    while todo:
        file = todo.pop()
        if file in seen or not file.exists():
            continue
        seen.add(file)
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside hf_minerals
                    base = file.parent
                    for _ in range(node.level - 1):
                        base = base.parent
                    mod = base.joinpath(*(node.module or "").split(".")) if node.module else base
                    todo += [mod.with_suffix(".py"), mod / "__init__.py"]
                    todo += [mod / f"{a.name}.py" for a in node.names]
                    todo += [mod / a.name / "__init__.py" for a in node.names]  # a sub-package
                    continue
                names = [node.module or ""]
            for name in names:
                if name.startswith("hf_minerals"):
                    mod = REPO.joinpath(*name.split("."))
                    todo += [mod.with_suffix(".py"), mod / "__init__.py"]
                    if name == "hf_minerals":
                        todo += [REPO / "hf_minerals" / f"{a.name}.py" for a in node.names]
                        todo += [REPO / "hf_minerals" / a.name / "__init__.py" for a in node.names]
                else:
                    found.add(name.split(".")[0])
    return {m for m in found if m and m not in sys.stdlib_module_names}


def test_requirements_pin_what_the_library_needs():
    """Every third-party import the app can reach is pinned (gradio comes from sdk_version), as in pyproject.toml."""
    import importlib.metadata as md

    lines = [line.strip() for line in (SPACE / "requirements.txt").read_text().splitlines()]
    pins = {line.split("==")[0].lower() for line in lines if "==" in line}
    pyproject = (REPO / "pyproject.toml").read_text()
    assert all(f'"{line}"' in pyproject for line in lines if "==" in line), "requirements.txt differs from pyproject.toml"
    dists = md.packages_distributions()
    modules = _imports_reachable_from(SPACE / "app.py")
    assert {"torch", "transformers", "captum", "matplotlib", "PIL"} <= modules  # the walk did reach the library
    # the [onnx] extra: reached only through hf_minerals.onnx_backend, which checks that it imports and
    # otherwise keeps the torch backend, saying so (tests/test_export.py); the Space does not install it
    optional = {"onnx", "onnxruntime"}
    assert 'onnx = ["onnx==' in pyproject
    for module in sorted(modules - {"gradio"} - optional):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        assert names & pins, f"space/requirements.txt lacks {module} ({names or 'not installed'})"
    assert "gradio" not in pins


@pytest.fixture()
def hub_model(hub_server, tiny_model_factory):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("tester/tiny-minerals", exist_ok=True)
    api.upload_folder(folder_path=str(tiny_model_factory("swin")), repo_id="tester/tiny-minerals")
    return "tester/tiny-minerals"


def test_publish_space_and_run_the_published_copy(hub_model, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, SpaceCard, snapshot_download

    from hf_minerals.hub import main, publish_space

    url = publish_space(SPACE, "tester/minerals-space", hub_model)
    assert "tester/minerals-space" in url
    files = set(HfApi().list_repo_files("tester/minerals-space", repo_type="space"))
    assert {"app.py", "requirements.txt", "README.md", "model_id.txt", "examples/metadata.jsonl",
            "hf_minerals/predict.py", "hf_minerals/explain/__init__.py", "hf_minerals/imageio.py",
            "hf_minerals/service.py", "hf_minerals/templates/model_card.md"} <= files
    assert any(f.startswith("examples/synthetic_") for f in files)
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    local = Path(snapshot_download("tester/minerals-space", repo_type="space", local_dir=tmp_path / "space"))
    assert SpaceCard.load(local / "README.md").data.models == [hub_model]
    assert (local / "model_id.txt").read_text().strip() == hub_model
    for name in ("model_card.md", "dataset_card.md"):  # the templates' bytes, not the links
        assert (local / "hf_minerals" / "templates" / name).read_bytes() == (REPO / name).read_bytes()

    # the published Space on its own: vendored hf_minerals first on sys.path, model from the (loopback) Hub
    example = sorted((local / "examples").glob("synthetic_*.png"))[0]
    code = ("import app, hf_minerals, json; demo = app.build_app(); s = demo.service;"
            f"print(json.dumps([hf_minerals.__file__, s.model_id, s.predict({str(example)!r}, 0.0)['label']]))")
    env = {k: v for k, v in os.environ.items() if k != "HF_MINERALS_MODEL"}
    out = subprocess.run([sys.executable, "-c", code], cwd=local, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lib_file, model_id, label = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(lib_file).resolve().is_relative_to(local.resolve()) and model_id == hub_model
    assert label in DEFAULT_LABELS  # threshold 0: always a mineral

    # the CLI sub-command
    monkeypatch.chdir(tmp_path)
    main(["space", "--repo_id", "tester/minerals-space-2", "--model", hub_model, "--space_dir", str(SPACE)])


def test_publish_space_refuses_local_or_missing_models(hub_server, tiny_model_factory):
    from hf_minerals.hub import publish_space

    with pytest.raises(ValueError, match="local folder"):
        publish_space(SPACE, "tester/s", str(tiny_model_factory("swin")))
    with pytest.raises(ValueError, match="not on the Hub"):
        publish_space(SPACE, "tester/s", "tester/no-such-model")
