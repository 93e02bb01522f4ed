"""Can the Hugging Face Hub be used right now, and if not, why: one answer for every command.

Offline mode (``HF_HUB_OFFLINE=1``) and an unreachable endpoint are different causes with different
ways out, and both used to surface as raw ``OfflineModeIsEnabled`` / ``ConnectError`` tracebacks.
"""

from __future__ import annotations

import os


class HubUnavailableError(RuntimeError):
    """Publishing needs the Hub and it cannot be used (offline mode set, or unreachable)."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can a TCP connection to the Hub endpoint be opened within ``timeout`` seconds?

    Without this, an unreachable Hub (no network, firewall) costs ~25 s of client retries per call
    before the clear error; with it, a command knows within seconds.
    """
    import socket
    from urllib.parse import urlparse

    import huggingface_hub

    url = urlparse(huggingface_hub.constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(timeout: float = 5.0) -> None:
    """Fail in seconds, with the cause, before any upload: offline mode set, or the endpoint unreachable."""
    import huggingface_hub

    endpoint = huggingface_hub.constants.ENDPOINT
    if huggingface_hub.is_offline_mode():
        raise HubUnavailableError("publishing needs the Hugging Face Hub, but offline mode is set (HF_HUB_OFFLINE=1); "
                                  "unset it and retry")
    if not hub_reachable(timeout):
        raise HubUnavailableError(f"cannot reach the Hugging Face Hub at {endpoint} (no network, firewall or wrong "
                                  "HF_ENDPOINT); nothing was uploaded")


def describe_hub_problem(exc: BaseException) -> str | None:
    """The Hub cannot be used at all: offline mode set, or its endpoint unreachable."""
    names: set[str] = set()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # the cause is often wrapped (RepositoryNotFound <- ConnectError)
        seen.add(id(exc))
        names.add(type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if "OfflineModeIsEnabled" in names:
        return "the Hugging Face Hub cannot be used: offline mode is set (HF_HUB_OFFLINE=1); unset it, or work from local folders"
    if names & {"ConnectError", "ConnectTimeout", "ConnectionError", "NewConnectionError", "ConnectionRefusedError"}:
        return f"cannot reach the Hugging Face Hub at {endpoint} (no network, firewall or wrong HF_ENDPOINT)"
    return None
