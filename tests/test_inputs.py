"""The shared input policy (hf_minerals.inputs) and the one pixel conversion every reader uses."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from hf_minerals.imageio import ImageLoadError, array_to_rgb8, load_image
from hf_minerals.inputs import InputLimits, limits, path_problem, scan_paths
from hf_minerals.mapping.sources import ArraySource, open_section


def test_limits_come_from_one_place_and_the_environment(monkeypatch):
    assert (limits().min_side, limits().max_pixels, limits().max_upload_mb) == (32, 50_000_000, 100)
    monkeypatch.setenv("HF_MINERALS_MIN_SIDE", "64")
    monkeypatch.setenv("HF_MINERALS_MAX_UPLOAD_MB", "0.5")
    assert InputLimits().min_side == 64 and InputLimits().max_bytes == 512 * 1024
    with pytest.raises(ImageLoadError, match="at least 64 px"):
        load_image(_png_bytes(np.zeros((40, 40, 3), np.uint8)))
    from hf_minerals.service import Limits

    assert Limits().min_side == 64  # the Space reads the same policy


def _png_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_path_reasons(tmp_path):
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "empty.png").write_bytes(b"")
    assert path_problem(tmp_path / "dir.png") == "a folder, not an image file"
    assert path_problem(tmp_path / "dangling.png").startswith("broken symbolic link")
    assert path_problem(tmp_path / "a.png") == "symbolic link loop"
    assert "named pipe" in path_problem(tmp_path / "pipe.png")
    assert path_problem(tmp_path / "empty.png") == "empty file (0 bytes)"
    assert path_problem(tmp_path / "nope.png") == "file not found"
    for name in ("dir.png", "dangling.png", "a.png", "pipe.png"):
        with pytest.raises(ImageLoadError):  # never blocks on the pipe, never a bare OSError
            load_image(tmp_path / name)
    scan = scan_paths([tmp_path])
    assert scan.files == [] and {os.path.basename(p) for p, _ in scan.skipped} >= {"dir.png", "dangling.png", "a.png",
                                                                                 "b.png", "pipe.png", "empty.png"}


def test_wrong_source_types_are_image_errors():
    for bad in (12345, 1.5, ["a.png"], {"path": 1}, None, object()):
        with pytest.raises(ImageLoadError, match="not an image or a file path"):
            load_image(bad)


def test_multi_frame_files_say_first_frame_used(tmp_path):
    frames = [Image.fromarray(np.full((40, 40, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "m.tif", save_all=True, append_images=frames[1:])
    notes: list[str] = []
    img = load_image(tmp_path / "m.tif", notes=notes)
    assert np.asarray(img)[0, 0, 0] == 10 and notes == ["multi-frame file (2 frames): first frame used"]


def test_mapper_and_loader_convert_16_bit_and_alpha_identically(tmp_path):
    """The mapper used ``>> 8`` and dropped alpha where the loader scaled and composited: now one conversion."""
    rng = np.random.default_rng(0)
    rgba16 = rng.integers(0, 65536, (48, 40, 4), dtype=np.uint16)
    grey16 = rng.integers(0, 65536, (48, 40), dtype=np.uint16)
    for arr in (rgba16, grey16):
        np.save(tmp_path / "s.npy", arr)
        with open_section(tmp_path / "s.npy") as src:
            streamed = src.read_rows(0, src.height)
        assert np.array_equal(streamed, np.asarray(load_image(arr)))
        assert np.array_equal(ArraySource(arr).read_rows(0, arr.shape[0]), streamed)
    Image.fromarray(grey16).save(tmp_path / "g16.png")  # a 16-bit PNG decoded by PIL: the same pixels again
    assert np.array_equal(np.asarray(load_image(tmp_path / "g16.png")), array_to_rgb8(grey16))
    top = np.array([[65535, 256, 255]], np.uint16)
    assert array_to_rgb8(top)[0, :, 0].tolist() == [255, 0, 0]  # scaled (x*255/65535), not >> 8 (which gives 1)


@pytest.mark.parametrize("side", [1, 2, 31])
def test_sections_under_the_smallest_side_are_refused(tmp_path, side):
    Image.fromarray(np.full((side, side, 3), 200, np.uint8)).save(tmp_path / "s.png")
    with pytest.raises(ImageLoadError, match="too small"):
        open_section(tmp_path / "s.png")
    np.save(tmp_path / "s.npy", np.full((side, 64, 3), 200, np.uint8))
    with pytest.raises(ImageLoadError, match="too small"):
        open_section(tmp_path / "s.npy")


def test_describe_error_names_the_real_cause():
    from huggingface_hub.errors import OfflineModeIsEnabled

    from hf_minerals.cli import describe_error

    assert describe_error(PermissionError(13, "Permission denied", "/m/model.safetensors")) == \
        "permission denied: /m/model.safetensors"
    assert describe_error(FileNotFoundError(2, "No such file", "x.png")) == "not found: x.png"
    assert describe_error(KeyError("data set d has no split 'test'")) == "data set d has no split 'test'"
    assert describe_error(TypeError("bad")) == "TypeError: bad"
    try:
        try:
            raise OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/repos/create: offline mode is enabled.")
        except OfflineModeIsEnabled as inner:
            raise RuntimeError("upload failed") from inner
    except RuntimeError as outer:
        assert "offline mode is set (HF_HUB_OFFLINE=1)" in describe_error(outer)
