"""The one input policy: what every door (build-dataset, predict, evaluate, map, explain, calibrate, publish,
the Space) accepts, the limits it applies and the one-line reason it gives for anything else.

Limits are the same everywhere and can be set once from the environment:

* ``HF_MINERALS_MIN_SIDE`` (default 32 px): the smallest side an image may have; smaller images carry too
  little texture to classify and would otherwise be stretched into a whole tile or a "100 %" answer.
* ``HF_MINERALS_MAX_PIXELS`` (default 50 MP): the most pixels one image decoded whole may have (a
  3396x2547 photomicrograph is 8.6 MP); stitched mosaics go through the mapper's streamed formats.
* ``HF_MINERALS_MAX_UPLOAD_MB`` (default 100 MB): the largest image file read whole (the Space's upload
  bound too).

Paths are checked before they are opened, so an unreadable file, a broken link, a named pipe (which would
block a reader for ever), a folder called ``x.png`` or a link loop is reported with its reason and the rest
of the batch goes on.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
MIN_SIDE = 32
MAX_PIXELS = 50_000_000
MAX_UPLOAD_MB = 100


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name}={raw!r} is not a number") from None
    if value <= 0:
        raise SystemExit(f"environment variable {name}={raw!r} must be > 0")
    return value


@dataclass(frozen=True)
class InputLimits:
    """The limits every door applies (defaults from the environment, see the module docstring)."""

    min_side: int = field(default_factory=lambda: int(_env_number("HF_MINERALS_MIN_SIDE", MIN_SIDE)))
    max_pixels: int = field(default_factory=lambda: int(_env_number("HF_MINERALS_MAX_PIXELS", MAX_PIXELS)))
    max_upload_mb: float = field(default_factory=lambda: _env_number("HF_MINERALS_MAX_UPLOAD_MB", MAX_UPLOAD_MB))

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def describe(self) -> str:
        """One line for help texts and the Space's header."""
        return (f"at least {self.min_side} px per side, at most {self.max_pixels / 1e6:g} MP, "
                f"files up to {self.max_upload_mb:g} MB")


def limits() -> InputLimits:
    """The limits in force now (environment read at call time)."""
    return InputLimits()


def is_image_file(path: str | os.PathLike) -> bool:
    """True for file names with an image extension (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# -- the one-line reasons ---------------------------------------------------------------------------
def too_small(width: int, height: int, min_side: int) -> str:
    return f"image too small ({width}x{height}; at least {min_side} px per side)"


def too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    return f"too many pixels ({width}x{height} > {max_pixels:,} limit)"


def too_large(size: int, max_bytes: int) -> str:
    return f"file too large ({size / 2**20:.1f} MB > {max_bytes / 2**20:g} MB limit)"


def os_reason(exc: OSError) -> str:
    """A short reason for an operating-system error met while reading a path."""
    code = exc.errno
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a file"
    return f"cannot read ({os.strerror(code) if code else exc})"


def path_problem(path: str | os.PathLike, max_bytes: int | None = None) -> str | None:
    """Why ``path`` cannot be read as an image file, in a few words; None when it can be opened."""
    p = Path(path)
    try:
        is_link = p.is_symlink()
        st = p.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if isinstance(exc, FileNotFoundError):
            return "broken symbolic link (target missing)" if is_link_safe(p) else "file not found"
        return os_reason(exc)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a folder, not an image file"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a file"
    if stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device or socket, not a file"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    if max_bytes is not None and st.st_size > max_bytes:
        return too_large(st.st_size, max_bytes)
    if not os.access(p, os.R_OK):
        return "permission denied" + (" (link target)" if is_link else "")
    return None


def is_link_safe(p: Path) -> bool:
    try:
        return p.is_symlink()
    except OSError:
        return False


# -- batches of paths -------------------------------------------------------------------------------
@dataclass
class Scan:
    """Files to read, in a stable order, and every path left out with its reason."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: str | os.PathLike, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def check(self, path: Path, max_bytes: int | None) -> None:
        """Keep ``path`` if the policy accepts it, else list it with the reason."""
        problem = path_problem(path, max_bytes)
        if problem:
            self.skip(path, problem)
        else:
            self.files.append(path)


def _walk(folder: Path, scan: Scan, max_bytes: int | None) -> None:
    """Image files under ``folder`` (links to folders are not followed: no loops, no escapes)."""

    def onerror(exc: OSError) -> None:
        scan.skip(exc.filename or folder, f"folder not readable: {os_reason(exc)}")

    for top, dirs, names in os.walk(folder, onerror=onerror):
        base = Path(top)
        for d in sorted(dirs):
            sub = base / d
            if sub.is_symlink():
                scan.skip(sub, "symbolic link to a folder (not followed)")
            elif d.startswith("."):
                scan.skip(sub, "hidden folder (not searched)")
            elif is_image_file(d):
                scan.skip(sub, "a folder, not an image file")
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink() and not d.startswith("."))
        for name in sorted(names):
            p = base / name
            if name.startswith("."):
                scan.skip(p, "hidden/system file")  # .DS_Store, ._x.jpg: not photographs
                continue
            if not is_image_file(name):
                problem = path_problem(p)
                scan.skip(p, problem or f"unsupported file type '{p.suffix}' "
                          f"(images: {', '.join(sorted(IMAGE_EXTENSIONS))})")
                continue
            scan.check(p, max_bytes)


def scan_paths(paths: Iterable[str | os.PathLike], max_bytes: int | None = None) -> Scan:
    """Files as given (any extension: the content decides), folders searched recursively for image files.

    Nothing here raises for a bad path: each one is listed in ``Scan.skipped`` with its reason.
    """
    scan = Scan()
    for raw in paths:
        p = Path(raw)
        try:
            is_dir = p.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not os.access(p, os.R_OK | os.X_OK):
                scan.skip(p, "folder not readable: permission denied")
                continue
            _walk(p, scan, max_bytes)
            continue
        scan.check(p, max_bytes)
    return scan
