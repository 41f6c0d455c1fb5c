"""torchvision's published SqueezeNet weights: where torch keeps them and how they are fetched.

The files live in torch's hub cache (``$TORCH_HOME/hub/checkpoints/``, found as torch.hub finds
it) and are downloaded there when missing: bounded in size and time, the SHA-256 checked against
the prefix in the published name, written atomically so a failed transfer leaves nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from pathlib import Path

from autosq.errors import WeightsUnavailable

MAX_FILE_MB = 512  # no SqueezeNet weights file comes near this
# A whole download may take this long (a published SqueezeNet is 5 MB: minutes on the slowest
# link worth waiting for).
DOWNLOAD_SECONDS = 600
TORCHVISION = {  # name -> published file (its name holds its SHA-256's first 8 hex digits)
    "squeezenet1_0": "squeezenet1_0-b66bff10.pth",
    "squeezenet1_1": "squeezenet1_1-b8a52dc0.pth",
}
TORCHVISION_URL = "https://download.pytorch.org/models/"
URL_ENV = "AUTOSQ_TORCHVISION_URL"  # another base URL (a mirror); tests point it at loopback


def hub_dir() -> Path:
    """torch's hub checkpoints folder (``$TORCH_HOME/hub/checkpoints``), as torch.hub finds it."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def download(file: str, path: Path) -> None:
    """Fetch a published torchvision file into torch's hub cache, checking its SHA-256 prefix;
    nothing is left behind when it fails (a broken or refused transfer, Ctrl-C)."""
    import http.client
    import tempfile
    import urllib.error
    import urllib.request

    base = os.environ.get(URL_ENV, TORCHVISION_URL)
    url = base.rstrip("/") + "/" + file
    hint = (f"put {file} (from {TORCHVISION_URL}{file}) in {path.parent}/, or give the weights "
            "file itself")
    digest = hashlib.sha256()
    tmp: str | None = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(url, timeout=60) as answer, tempfile.NamedTemporaryFile(
                    dir=path.parent, prefix=f".{file}.", delete=False) as out:
                tmp = out.name
                size = 0
                deadline = time.monotonic() + DOWNLOAD_SECONDS
                # read1: whatever has arrived, so a server trickling bytes meets the deadline
                # (each read alone only waits for the socket's timeout).
                while chunk := answer.read1(1 << 20):
                    if time.monotonic() > deadline:
                        raise WeightsUnavailable(f"{url} sent {size / 2**20:.1f} MB in "
                                                 f"{DOWNLOAD_SECONDS} s: too slow, stopped; "
                                                 f"{hint}")
                    size += len(chunk)
                    if size > MAX_FILE_MB << 20:
                        raise WeightsUnavailable(f"{url} sent more than {MAX_FILE_MB} MB: "
                                                 f"refused; {hint}")
                    digest.update(chunk)
                    out.write(chunk)
        except ValueError:  # not a URL urllib can open (a bad mirror in the variable)
            raise WeightsUnavailable(f"cannot download torchvision's weights: {URL_ENV}={base!r} "
                                     "is not a URL (expected http(s)://host/folder/); "
                                     f"{hint}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = (f"a broken answer: {type(exc).__name__}"  # a bad status line, say
                      if isinstance(exc, http.client.HTTPException) else
                      getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)
            raise WeightsUnavailable(f"cannot download torchvision's weights ({reason}): "
                                     f"{hint}") from None
        prefix = re.search(r"-([0-9a-f]{8,})\.", file)
        if prefix and not digest.hexdigest().startswith(prefix.group(1)):
            raise WeightsUnavailable(f"the file downloaded from {url} has SHA-256 "
                                     f"{digest.hexdigest()[:16]}..., not {prefix.group(1)}... as "
                                     f"published: refused; {hint}")
        assert tmp is not None
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
