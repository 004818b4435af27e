"""Single-file tar archives: the form the Docker API takes and gives when copying a file into or out of a
container."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable


def single_file_tar(name: str, content: str) -> bytes:
    data = content.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def first_file(chunks: Iterable[bytes]) -> bytes | None:
    """The content of the archive's first member; None when that member is not a regular file."""
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.next()
        extracted = tar.extractfile(member) if member else None
        return extracted.read() if extracted is not None else None
