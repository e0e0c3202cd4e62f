"""Where dataset files live, and downloading them safely (checksums, atomic rename)."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ember._core.errors import EmberError

_CHUNK = 1 << 20


def data_folder(root, name: str) -> Path:
    """`root` if given, else $EMBER_DATA/<name>, else ~/.ember/data/<name>."""
    if root is not None:
        return Path(root).expanduser()
    base = os.environ.get("EMBER_DATA")
    if base:
        return Path(base).expanduser() / name
    return Path.home() / ".ember" / "data" / name


def file_digests(path: Path) -> tuple[str, str]:
    """(md5, sha256) hex digests of a file, read in chunks."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def _mismatch(path: Path, md5: str | None, sha256: str | None) -> str | None:
    """None when the file matches the expected digests, else what differed."""
    got_md5, got_sha256 = file_digests(path)
    if sha256 is not None and got_sha256 != sha256.lower():
        return f"sha256 mismatch: expected {sha256}, got {got_sha256}"
    if md5 is not None and got_md5 != md5.lower():
        return f"md5 mismatch: expected {md5}, got {got_md5}"
    return None


def download(urls: list[str], destination: Path, md5: str | None = None,
             sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch the first of `urls` whose content matches the checksums into `destination`.

    The bytes go to a temporary file beside `destination`, are verified, then renamed into
    place, so an interrupted or corrupted download never leaves a file that looks complete.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.",
                                             suffix=".part", dir=destination.parent)
        try:
            with os.fdopen(handle, "wb") as out, \
                    urllib.request.urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            problem = _mismatch(Path(temporary), md5, sha256)
            if problem is None:
                os.replace(temporary, destination)
                return destination
            failures.append(f"{url}: checksum {problem}")
        except (urllib.error.URLError, OSError, ValueError) as error:
            failures.append(f"{url}: {error}")
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    details = "\n  ".join(failures)
    raise EmberError(f"could not download {destination.name} into {destination.parent}; "
                     f"tried:\n  {details}")
