"""
Optional dependencies: import one, or say which extra installs it.

The core package needs only httpx, anyio, attrs and cattrs. The command line,
the FastAPI integration, webhook verification, the aiohttp transport and the
emulator each need an extra (``pyproject.toml``). Code that needs one calls
`require` (or catches its own ``ImportError`` and raises `missing_extra`), so a
missing library reads ``... pip install 'atlas-async[cli]'`` instead of a bare
``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import ConfigurationError

__all__ = ["MissingExtraError", "install_hint", "installed", "missing_extra", "require"]


class MissingExtraError(ConfigurationError, ImportError):
    """
    A feature needs a library from an extra that is not installed.

    An ``ImportError``, so ``except ImportError`` around an optional import
    still works, and a `ConfigurationError` (an ``AtlasError``), so the SDK's
    own handlers report it as a usage problem. ``extra`` names the extra and
    ``module`` (also ``ImportError``'s ``name``) the missing module.
    """

    module: str
    extra: str

    def __init__(self, message: str, *, module: str, extra: str) -> None:
        super().__init__(message)
        # ImportError.__init__ never runs through the MRO here (AtlasError's
        # __init__ does not pass keywords on): set its field by hand.
        self.name = module
        self.module = module
        self.extra = extra


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'atlas-async[extra]'``."""
    return f"pip install 'atlas-async[{extra}]'"


def missing_extra(
    module: str, extra: str, *, feature: str | None = None
) -> MissingExtraError:
    """
    The error for ``feature`` lacking ``module`` (from ``extra``), to raise.

    For ``try: from x import y`` / ``except ImportError as exc: raise
    missing_extra(...) from exc``, where the names are needed at module level
    and `require` would not give them to the type checker.
    """
    what = f"{feature} needs {module}, which is" if feature else f"{module} is"
    return MissingExtraError(
        f"{what} not installed: {install_hint(extra)}", module=module, extra=extra
    )


def installed(*modules: str) -> bool:
    """True when every module in ``modules`` can be imported (none is loaded)."""
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):
            # A submodule whose parent is missing, or a module blocked with
            # ``sys.modules[name] = None``.
            return False
    return True


def require(module: str, extra: str, *, feature: str | None = None) -> ModuleType:
    """
    Import ``module`` and return it; if it is missing, say which extra has it.

    Args:
        module: the module to import, e.g. ``"typer"`` or ``"uvicorn"``.
        extra: the extra of ``atlas-async`` that installs it, e.g. ``"cli"``.
        feature: what needs it, for the message, e.g. ``"the command line"``.

    Raises:
        MissingExtraError: ``module`` (or a library it imports) is not
            installed; the message ends with ``pip install 'atlas-async[extra]'``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only a missing module is an extra's fault; any other ImportError is
        # a broken installation and keeps its own message.
        raise missing_extra(exc.name or module, extra, feature=feature) from exc
