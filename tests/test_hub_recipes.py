"""The paper's path through the Hub protocol: the three shipped recipes fine-tune their real Hub ids.

Tiny random stand-ins are published on the loopback Hub under ``microsoft/swin-tiny-patch4-window7-224``,
``google/mobilenet_v2_1.0_224`` and ``microsoft/resnet-50`` (real architecture class and processor config,
shrunk width); the recipes run unmodified except data set, output folder, step limit and push target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import MINERALS, make_dataset
from tiny_models import HUB_IDS, RECIPE_OF, serve_tiny_hub_model

REPO = Path(__file__).resolve().parent.parent
ARCHS = ["swin", "mobilenet_v2", "resnet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("hub-recipe-data") / "ds")


def _recipe_argv(arch: str, data: Path, out: Path, repo_id: str) -> list[str]:
    return ["--config", str(REPO / "recipes" / f"{RECIPE_OF[arch]}.yaml"), "--dataset_name", str(data),
            "--output_dir", str(out), "--max_steps", "2", "--disable_tqdm", "true",
            "--push_to_hub", "true", "--hub_model_id", repo_id]


@pytest.mark.parametrize("arch", ARCHS)
def test_recipe_fine_tunes_the_hub_id_then_pushes(hub_server, arch, data, tmp_path):
    from transformers import pipeline

    from hf_minerals.modeling import build_classifier, is_head
    from hf_minerals.training import main as train_main

    served = serve_tiny_hub_model(arch, tmp_path).state_dict()
    assert os.environ["HF_HUB_OFFLINE"] == "0"  # this test really downloads, through huggingface_hub

    # 1. loading: every backbone tensor is the served one; only the classifier head is new
    model, _ = build_classifier(HUB_IDS[arch], list(MINERALS), init="pretrained")
    loaded = model.state_dict()
    assert set(loaded) == set(served)
    head = [k for k in loaded if is_head(k)]
    assert head and all(loaded[k].shape != served[k].shape for k in head if k.endswith("weight"))
    for key, value in loaded.items():
        if not is_head(key):
            assert torch.equal(value, served[key]), f"{key} differs from the served checkpoint"
    assert sorted(model.hf_minerals_new_tensors) == sorted(head)
    assert any("resolve" in line and HUB_IDS[arch] in line for line in hub_server.state.log)  # served over HTTP

    # 2. the shipped recipe, unmodified but for data, output, steps and push target
    out = tmp_path / "run"
    train_main(_recipe_argv(arch, data, out, f"tester/{arch}-minerals"))
    files = hub_server.files(f"tester/{arch}-minerals")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert f"base_model: {HUB_IDS[arch]}" in card and "newly initialised: classifier" in card
    # the real processor config was served; the pushed one keeps its size, statistics and filter, in one geometry
    served_proc = json.loads(hub_server.files(HUB_IDS[arch])["preprocessor_config.json"])
    pushed_proc = json.loads(files["preprocessor_config.json"])
    assert pushed_proc["size"] == {"shortest_edge": 224} and pushed_proc["crop_size"] == {"height": 224, "width": 224}
    assert pushed_proc["image_mean"] == served_proc["image_mean"] and pushed_proc["resample"] == served_proc["resample"]

    # 3. the pushed model answers mineral names through the stock pipeline
    clf = pipeline("image-classification", model=f"tester/{arch}-minerals", top_k=None)
    from PIL import Image

    answer = clf(Image.new("RGB", (80, 60), (188, 176, 143)))
    assert {a["label"] for a in answer} == set(MINERALS)


def test_recipe_under_accelerate_two_processes_over_the_hub(hub_server, data, tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2`` (gloo on CPU): both processes download the Hub id."""
    arch = "resnet"
    serve_tiny_hub_model(arch, tmp_path)
    out = tmp_path / "run"
    env = {**os.environ, **hub_server.env(os.environ["HF_HOME"]), "OMP_NUM_THREADS": "1",
           "ACCELERATE_LOG_LEVEL": "error", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           str(REPO / "scripts/train.py"), *_recipe_argv(arch, data, out, "tester/resnet-ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| processes | 2 |" in hub_server.files("tester/resnet-ddp")["README.md"].decode()
    config = json.loads(hub_server.files("tester/resnet-ddp")["config.json"])
    assert config["id2label"] == {str(i): n for i, n in enumerate(MINERALS)}
