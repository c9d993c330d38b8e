"""
The emulator's extra, checked before anything of the emulator is imported.

Importing `atlas_async.emulator` without ``pip install 'atlas-async[emulator]'``
raises one `ModuleNotFoundError` that names the command, not a bare one from
deep inside. This program shares no code with the SDK, so it does not use the
SDK's ``_core.extras``. cryptography (the webhook signing key) is what every
part needs; uvicorn is checked when the emulator is served on a socket.
"""

from __future__ import annotations

import importlib

INSTALL = "pip install 'atlas-async[emulator]'"

try:
    importlib.import_module("cryptography")
except ImportError as missing:
    raise ModuleNotFoundError(
        f"atlas_async.emulator needs cryptography, which is not installed: {INSTALL}",
        name="cryptography",
    ) from missing
