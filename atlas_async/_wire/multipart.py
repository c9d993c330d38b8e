"""
``multipart/form-data`` request bodies (the upload's ``file`` field).

Encoded here, as bytes, so every HTTP backend sends the same body. Field names
and file names are quoted as browsers quote them (WHATWG HTML, "multipart/
form-data encoding algorithm"): ``"``, CR and LF become ``%22``, ``%0D`` and
``%0A``, so no name can end its header line or its quoted string early.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["encode_multipart"]

_QUOTED = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})


def encode_multipart(
    files: Mapping[str, tuple[str, bytes, str]], *, boundary: str | None = None
) -> tuple[bytes, str]:
    """
    Encode file fields as one ``multipart/form-data`` body.

    Example::

        body, content_type = encode_multipart(
            {"file": ("cat.png", b"\\x89PNG...", "image/png")}
        )
        # content_type == "multipart/form-data; boundary=..."

    Args:
        files: field name -> ``(filename, data, content_type)``.
        boundary: the part separator (default: 32 random hex digits, which no
            body contains by chance).

    Returns:
        The body and its ``Content-Type`` header value.
    """
    boundary = boundary or os.urandom(16).hex()
    parts: list[bytes] = []
    for name, (filename, data, content_type) in files.items():
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name.translate(_QUOTED)}";'
            f' filename="{filename.translate(_QUOTED)}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts += (head.encode("utf-8"), data, b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
