"""A loopback Hugging Face Hub for tests: the stock ``huggingface_hub`` client talks to it over HTTP.

Nothing can reach the real Hub here, yet ``push_to_hub``, ``load_dataset(repo_id)`` and
``pipeline(model=repo_id)`` must be tested for real. This server implements the slice of the Hub API
those clients use (repo create/info, preupload, NDJSON commits, LFS batch uploads, tree, paths-info,
refs, commits, resolve downloads with HEAD and Range) with in-memory storage. Point a client at it with
``HubServer.env()`` or the ``hub_server`` pytest fixture, which also patches ``huggingface_hub.constants``
(read at import time).

Usage::

    def test_roundtrip(hub_server):          # fixture: server started, env + constants patched
        HfApi().create_repo("tester/x", repo_type="dataset")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

USER = "tester"
FAKE_TOKEN = "hf_loopbackFakeTokenForTests0000000000"
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


#: Binary files go through LFS, like the Hub's default .gitattributes. ``datasets.push_to_hub`` needs this:
#: it pre-uploads parquet shards from temp files and deletes them before the commit, so it relies on LFS.
_LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".onnx", ".npz", ".zip", ".tar.gz",
                 ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pkl", ".msgpack", ".h5")
_LFS_MIN_SIZE = 10 * 1024 * 1024


def _upload_mode(path: str, size: int) -> str:
    return "lfs" if size > 0 and (path.lower().endswith(_LFS_SUFFIXES) or size >= _LFS_MIN_SIZE) else "regular"


def _git_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    """One repository: a linear history of snapshots on ``main``."""

    repo_type: str
    repo_id: str
    private: bool = False
    sdk: str | None = None
    commits: list[dict] = field(default_factory=list)  # {"oid", "title", "date", "files": {path: bytes}}

    @property
    def head(self) -> dict:
        return self.commits[-1]

    def snapshot(self, revision: str) -> dict | None:
        if revision in ("main", "refs/heads/main", "HEAD"):
            return self.head
        return next((c for c in self.commits if c["oid"].startswith(revision) and len(revision) >= 7), None)


class HubState:
    """Thread-safe storage shared by the handler threads."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.lock = threading.RLock()
        self.log: list[str] = []  # "METHOD path -> status", for debugging failed tests

    def commit(self, repo: Repo, files: dict[str, bytes], title: str) -> dict:
        oid = hashlib.sha1(f"{repo.repo_id}{len(repo.commits)}{time.time_ns()}{title}".encode()).hexdigest()
        entry = {"oid": oid, "title": title, "date": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "files": files}
        repo.commits.append(entry)
        return entry


class _Handler(BaseHTTPRequestHandler):
    server_version = "LoopbackHub/1.0"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> HubState:
        return self.server.state  # type: ignore[attr-defined]

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]  # type: ignore[index]
        return f"http://{host}:{port}"

    def log_message(self, fmt: str, *args) -> None:  # keep pytest output clean
        pass

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.state.log.append(f"{self.command} {self.path} -> {status}")

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str) -> None:
        self._json({"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message})

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        return repo

    def _snapshot(self, repo: Repo, revision: str) -> dict | None:
        snap = repo.snapshot(unquote(revision))
        if snap is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return snap

    # ------------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    _ROUTES: list[tuple[str, str, str]] = [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("DELETE", r"/api/repos/delete", "delete_repo"),
        ("POST", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", "commit"),
        ("GET", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<path>/.*)?", "tree"),
        ("POST", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)", "paths_info"),
        ("GET", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/refs", "refs"),
        ("GET", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/commits/(?P<rev>[^/]+)", "commits"),
        ("POST", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/branch/(?P<rev>[^/]+)", "branch"),
        ("GET", r"/api/(?P<t>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
        ("POST", r"/(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", "lfs_put"),
        ("POST", r"/lfs-verify/(?P<oid>[0-9a-f]{64})", "lfs_verify"),
        ("GET", r"/(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", r"/(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    def _dispatch(self) -> None:
        url = urlparse(self.path)
        self.query = parse_qs(url.query)
        path = url.path
        try:
            for method, pattern, name in self._ROUTES:
                if method == self.command and (m := re.fullmatch(pattern, path)):
                    with self.state.lock:
                        getattr(self, f"_h_{name}")(**{k: v for k, v in m.groupdict().items()})
                    return
            self._error(404, "NotFound", f"loopback hub: no route for {self.command} {path}")
        except Exception as exc:  # noqa: BLE001 - report server bugs to the client, not a hung socket
            self._error(500, "ServerError", f"loopback hub error: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ handlers
    def _h_whoami(self) -> None:
        self._json({"type": "user", "name": USER, "fullname": "Loopback Tester", "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})

    def _h_validate_yaml(self) -> None:
        """Like the Hub: README front matter must be a YAML mapping (400 with ``errors`` otherwise)."""
        import yaml

        content = json.loads(self._body()).get("content", "")
        m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
        try:
            meta = yaml.safe_load(m.group(1)) if m else {}
            if m and not isinstance(meta, dict):
                raise ValueError("front matter is not a mapping")
        except Exception as exc:  # noqa: BLE001
            self._json({"errors": [{"message": f"invalid YAML: {exc}"}]}, 400)
            return
        self._json({"warnings": [] if meta else [{"message": "empty or missing YAML metadata"}]})

    def _h_create_repo(self) -> None:
        payload = json.loads(self._body() or b"{}")
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        url = f"{self.endpoint}/{_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.state.repos:
            self._json({"error": "You already created this repo", "url": url}, 409)
            return
        repo = Repo(repo_type, repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")),
                    sdk=payload.get("sdk"))
        files = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
        self.state.commit(repo, files, "initial commit")
        self.state.repos[(repo_type, repo_id)] = repo
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _h_delete_repo(self) -> None:
        payload = json.loads(self._body() or b"{}")
        key = (payload.get("type") or "model", f"{payload.get('organization') or USER}/{payload['name']}")
        if self.state.repos.pop(key, None) is None:
            self._error(404, "RepoNotFound", "not found")
        else:
            self._json({})

    def _h_repo_info(self, t: str, repo: str, rev: str | None = None) -> None:
        r = self._repo(_TYPES[t], repo)
        if r is None:
            return
        snap = self._snapshot(r, rev or "main")
        if snap is None:
            return
        info = {
            "_id": hashlib.md5(repo.encode()).hexdigest()[:24], "id": repo, "author": repo.split("/")[0],
            "sha": snap["oid"], "lastModified": snap["date"], "createdAt": r.commits[0]["date"],
            "private": r.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "siblings": [{"rfilename": p, "size": len(b)} for p, b in sorted(snap["files"].items())],
        }
        if r.repo_type == "model":
            info["modelId"] = repo
        if r.repo_type == "space":
            info.update(sdk=r.sdk, runtime={"stage": "RUNNING", "hardware": {"current": "cpu-basic"}})
        self._json(info)

    def _h_preupload(self, t: str, repo: str, rev: str) -> None:
        if self._repo(_TYPES[t], repo) is None:
            return
        files = json.loads(self._body())["files"]
        self._json({"files": [{"path": f["path"], "uploadMode": _upload_mode(f["path"], f["size"]), "shouldIgnore": False}
                              for f in files]})

    def _h_commit(self, t: str, repo: str, rev: str) -> None:
        r = self._repo(_TYPES[t], repo)
        if r is None:
            return
        snap = self._snapshot(r, rev)
        if snap is None:
            return
        files = dict(snap["files"])
        title = "commit"
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                title = value.get("summary") or title
            elif key == "file":
                content = value["content"]
                files[value["path"]] = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
            elif key == "lfsFile":
                if value["oid"] not in self.state.lfs:
                    self._error(422, "LfsObjectMissing", f"LFS object {value['oid']} was never uploaded")
                    return
                files[value["path"]] = self.state.lfs[value["oid"]]
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(prefix)}
        entry = self.state.commit(r, files, title)
        url = f"{self.endpoint}/{_PREFIX[r.repo_type]}{repo}/commit/{entry['oid']}"
        self._json({"success": True, "commitOid": entry["oid"], "commitUrl": url, "pullRequestUrl": None})

    def _h_branch(self, t: str, repo: str, rev: str) -> None:
        if self._repo(_TYPES[t], repo) is None:
            return
        if unquote(rev) == "main":
            self._error(409, "Conflict", "Reference already exists")
        else:
            self._error(400, "Unsupported", "loopback hub: only the main branch is supported")

    @staticmethod
    def _entry(path: str, data: bytes | None, expand: bool, commit: dict) -> dict:
        if data is None:
            entry = {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        else:
            entry = {"type": "file", "oid": _git_sha(data), "size": len(data), "path": path}
        if expand:
            entry["lastCommit"] = {"id": commit["oid"], "title": commit["title"], "date": commit["date"]}
        return entry

    def _listing(self, files: dict[str, bytes], base: str, recursive: bool, expand: bool, commit: dict) -> list[dict]:
        base = base.strip("/")
        prefix = base + "/" if base else ""
        out: dict[str, dict] = {}
        for p, data in sorted(files.items()):
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix):].split("/")
            for depth in range(1, len(parts)):  # folders on the way
                if depth > 1 and not recursive:
                    break
                d = prefix + "/".join(parts[:depth])
                out.setdefault(d, self._entry(d, None, expand, commit))
            if recursive or len(parts) == 1:
                out[p] = self._entry(p, data, expand, commit)
        return list(out.values())

    def _h_tree(self, t: str, repo: str, rev: str, path: str | None = None) -> None:
        r = self._repo(_TYPES[t], repo)
        if r is None or (snap := self._snapshot(r, rev)) is None:
            return
        base = unquote(path or "").strip("/")
        files = snap["files"]
        if base and base in files:
            self._error(400, "NotADirectory", f"{base} is a file")
            return
        if base and not any(p.startswith(base + "/") for p in files):
            self._error(404, "EntryNotFound", f"{base} does not exist on main")
            return
        flag = lambda k: self.query.get(k, ["false"])[0].lower() in ("1", "true")  # noqa: E731
        self._json(self._listing(files, base, flag("recursive"), flag("expand"), snap))

    def _h_paths_info(self, t: str, repo: str, rev: str) -> None:
        r = self._repo(_TYPES[t], repo)
        if r is None or (snap := self._snapshot(r, rev)) is None:
            return
        body = self._body()
        if "json" in self.headers.get("Content-Type", ""):
            form = json.loads(body)
            paths, expand = form.get("paths", []), bool(form.get("expand"))
        else:
            form = parse_qs(body.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["False"])[0].lower() == "true"
        out = []
        for p in paths:
            p = p.strip("/")
            if p in snap["files"]:
                out.append(self._entry(p, snap["files"][p], expand, snap))
            elif any(f.startswith(p + "/") for f in snap["files"]) or p == "":
                out.append(self._entry(p, None, expand, snap))
        self._json(out)

    def _h_refs(self, t: str, repo: str) -> None:
        r = self._repo(_TYPES[t], repo)
        if r is None:
            return
        self._json({"branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": r.head["oid"]}],
                    "tags": [], "converts": []})

    def _h_commits(self, t: str, repo: str, rev: str) -> None:
        r = self._repo(_TYPES[t], repo)
        if r is None:
            return
        self._json([{"id": c["oid"], "title": c["title"], "message": "", "authors": [{"user": USER}], "date": c["date"]}
                    for c in reversed(r.commits)])

    def _h_lfs_batch(self, repo: str, prefix: str | None = None) -> None:
        payload = json.loads(self._body())
        objects = []
        for obj in payload.get("objects", []):
            oid = obj["oid"]
            entry = {"oid": oid, "size": obj["size"]}
            if oid not in self.state.lfs:
                entry["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{oid}"},
                                    "verify": {"href": f"{self.endpoint}/lfs-verify/{oid}"}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   ctype="application/vnd.git-lfs+json")

    def _h_lfs_put(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            self._error(400, "BadOid", "sha256 mismatch")
            return
        self.state.lfs[oid] = data
        self._json({})

    def _h_lfs_verify(self, oid: str) -> None:
        self._body()
        if oid in self.state.lfs:
            self._json({})
        else:
            self._error(404, "EntryNotFound", "LFS object not found")

    def _h_resolve(self, repo: str, rev: str, path: str, prefix: str | None = None) -> None:
        repo_type = {"datasets/": "dataset", "spaces/": "space"}.get(prefix or "", "model")
        r = self._repo(repo_type, repo)
        if r is None or (snap := self._snapshot(r, rev)) is None:
            return
        path = unquote(path)
        data = snap["files"].get(path)
        if data is None:
            self._json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": snap["oid"],
                                                             "X-Error-Message": f"{path} not found"})
            return
        headers = {"X-Repo-Commit": snap["oid"], "ETag": f'"{_git_sha(data)}"', "Accept-Ranges": "bytes"}
        rng = self.headers.get("Range")
        if rng and (m := re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())):
            start, end = m.group(1), m.group(2)
            if start == "":  # suffix range
                first, last = max(0, len(data) - int(end)), len(data) - 1
            else:
                first, last = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            self._send(206, data[first:last + 1], headers, "application/octet-stream")
            return
        self._send(200, data, headers, "application/octet-stream")


class HubServer:
    """The loopback Hub on 127.0.0.1 (random free port), served from a daemon thread."""

    def __init__(self) -> None:
        self.state = HubState()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.state = self.state  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def files(self, repo_id: str, repo_type: str = "model") -> dict[str, bytes]:
        """Files at the head of ``repo_id`` (for assertions)."""
        return dict(self.state.repos[(repo_type, repo_id)].head["files"])

    def env(self, hf_home: str) -> dict[str, str]:
        """Environment variables that point the stock clients at this server."""
        return {"HF_ENDPOINT": self.endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": FAKE_TOKEN,
                "HF_HOME": hf_home, "HF_HUB_CACHE": f"{hf_home}/hub", "HF_DATASETS_CACHE": f"{hf_home}/datasets",
                "HF_DATASETS_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}


@contextmanager
def pointed_at(server: HubServer, hf_home: str):
    """Point env vars and the import-time constants of huggingface_hub/datasets at ``server``; restore after."""
    import os

    env = server.env(hf_home)
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    patches: list[tuple[object, str, object]] = []

    def patch(obj: object, name: str, value: object) -> None:
        if hasattr(obj, name):
            patches.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)

    from huggingface_hub import constants as hc

    patch(hc, "ENDPOINT", server.endpoint)
    patch(hc, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    patch(hc, "HF_HUB_OFFLINE", False)
    patch(hc, "HF_HUB_DISABLE_XET", True)
    patch(hc, "HF_HOME", hf_home)
    patch(hc, "HF_HUB_CACHE", env["HF_HUB_CACHE"])
    patch(hc, "HUGGINGFACE_HUB_CACHE", env["HF_HUB_CACHE"])
    patch(hc, "HF_TOKEN_PATH", f"{hf_home}/token")
    patch(hc, "HF_STORED_TOKENS_PATH", f"{hf_home}/stored_tokens")
    try:
        import datasets.config as dc

        patch(dc, "HF_ENDPOINT", server.endpoint)
        patch(dc, "HF_HUB_OFFLINE", False)
        patch(dc, "HF_DATASETS_OFFLINE", False)
        patch(dc, "HF_CACHE_HOME", hf_home)
        patch(dc, "HF_DATASETS_CACHE", Path(env["HF_DATASETS_CACHE"]))
        patch(dc, "HUGGINGFACE_HUB_CACHE", env["HF_HUB_CACHE"])
        patch(dc, "HF_MODULES_CACHE", Path(hf_home) / "modules")
        patch(dc, "DOWNLOADED_DATASETS_PATH", Path(env["HF_DATASETS_CACHE"]) / "downloads")
        patch(dc, "EXTRACTED_DATASETS_PATH", Path(env["HF_DATASETS_CACHE"]) / "downloads" / "extracted")
        patch(dc, "HF_UPDATE_DOWNLOAD_COUNTS", False)
        patch(dc, "HUB_DATASETS_URL", server.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
        patch(dc, "HUB_DATASETS_HFFS_URL", "hf://datasets/{repo_id}@{revision}/{path}")
    except ImportError:
        pass
    try:
        from huggingface_hub import HfFileSystem

        HfFileSystem.clear_instance_cache()  # cached instances remember the old endpoint
    except (ImportError, AttributeError):
        pass
    try:
        yield server
    finally:
        for obj, name, value in reversed(patches):
            setattr(obj, name, value)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            from huggingface_hub import HfFileSystem

            HfFileSystem.clear_instance_cache()
        except (ImportError, AttributeError):
            pass


def hub_server_fixture(tmp_path_factory):
    """Body of the ``hub_server`` pytest fixture (registered in conftest.py)."""
    with HubServer() as server, pointed_at(server, str(tmp_path_factory.mktemp("hf_home"))):
        yield server
