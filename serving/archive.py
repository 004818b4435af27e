"""Single-file tar archives: the form the Docker API takes for copying a file into a container."""

from __future__ import annotations

import io
import tarfile


def single_file_tar(name: str, content: str) -> bytes:
    data = content.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
