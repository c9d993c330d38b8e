"""Run a command on a real pseudo-terminal and read the screen a person sees.

`Terminal` starts the command with its stdout and stderr on a pty (stdout can
be a pipe instead, for the "stdout piped, stderr a terminal" case), reads what
it writes, and `screen` replays those bytes through pyte, a VT100 emulator:
cursor moves, line erases and carriage returns act as they would in a real
terminal, so a progress bar that erases itself leaves nothing behind, and a line
written into the middle of the bar shows up tangled.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

import pyte

COLUMNS = 160
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """One command on a pty (``stdout_piped``: its stdout on a pipe instead)."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str | None = None,
        stdout_piped: bool = False,
    ) -> None:
        master, slave = pty.openpty()
        size = struct.pack("HHHH", 40, COLUMNS, 0, 0)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        self.master = master
        self.raw = b""
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_piped else slave,
            stderr=slave,
            env={**env, "COLUMNS": str(COLUMNS), "TERM": "xterm-256color"},
            cwd=cwd,
        )
        os.close(slave)

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the other side closed: everything is read
            return False
        self.raw += data
        return bool(data)

    def wait_for(self, pattern: bytes, timeout: float = 60) -> re.Match[bytes]:
        """Read until the text (escape sequences left out) matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if not self._read(0.1) and self.process.poll() is not None:
                break
        raise AssertionError(f"no {pattern!r} within {timeout} s in {self.text()!r}")

    def interrupt(self) -> None:
        """Ctrl-C, as the terminal sends it: SIGINT."""
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 120) -> tuple[int, bytes]:
        """Read to the end; return the exit code and the piped stdout (if any)."""
        piped = b""
        pipe = self.process.stdout
        sources = [self.master] + ([pipe.fileno()] if pipe is not None else [])
        deadline = time.monotonic() + timeout
        while sources and time.monotonic() < deadline:
            ready, _, _ = select.select(sources, [], [], 0.2)
            if not ready and self.process.poll() is not None:
                break  # exited, and nothing more came for a while
            for source in ready:
                try:
                    data = os.read(source, 65536)
                except OSError:  # the pty's other side closed: all read
                    data = b""
                if not data:
                    sources.remove(source)
                elif source == self.master:
                    self.raw += data
                else:
                    piped += data
        code = self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        if pipe is not None:
            pipe.close()
        return code, piped

    def text(self) -> bytes:
        """Everything written so far, escape sequences left out."""
        return _ANSI.sub(b"", self.raw)

    def screen(self) -> list[str]:
        """The non-blank lines a terminal shows now, in order."""
        screen = pyte.Screen(COLUMNS, 2000)
        pyte.ByteStream(screen).feed(self.raw)
        return [line.rstrip() for line in screen.display if line.strip()]
