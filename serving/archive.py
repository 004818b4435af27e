"""Tar archives of a few small text files: the form the Docker API takes and gives when copying files into or
out of a container."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable


def single_file_tar(name: str, content: str) -> bytes:
    return files_tar({name: content})


def files_tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            data = content.encode()
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
