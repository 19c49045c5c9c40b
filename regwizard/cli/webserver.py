"""textual-serve's Server, run our way: imported only by ``regwizard serve`` (it pulls in
aiohttp, jinja2 and rich, so it is listed with the UI modules in
tests/test_architecture.py).

The differences from ``Server.serve``: its log and banner go to stderr, not stdout; a
port that cannot be bound raises OSError before anything says "serving"; and
``run`` returns the signal that stopped it (SIGINT, SIGTERM), so the command can exit
130 or 143. Stopping closes every browser session, which tells each wizard to quit; it
then waits up to SHUTDOWN_SECONDS for them to end, and sends SIGTERM to any of its own
children still running (each session's command starts with ``exec``, so a child is
the wizard itself, not a shell above it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from rich.console import Console
from textual_serve.server import Server

SHUTDOWN_SECONDS = 5.0  # how long open sessions get to end on Ctrl-C


def session_pids() -> list[int]:
    """This process's live children (the sessions' wizards), from /proc; [] without it."""
    me, out = os.getpid(), []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 1 and fields[0] != "Z" and fields[1] == str(me):
                out.append(int(name))
    return out


class WizardServer(Server):
    def __init__(self, command: str, *, host: str, port: int, public_url: str) -> None:
        super().__init__(command, host=host, port=port, title="regwizard", public_url=public_url)
        self.console = Console(stderr=True)

    def initialize_logging(self) -> None:
        logging.basicConfig(level="INFO", format="%(message)s", stream=self.console.file)

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: ``run`` says where to browse once the port is bound."""

    def run(self, ready: Callable[[], None]) -> int:
        """Serve until SIGINT or SIGTERM; return that signal's number. OSError when the
        address cannot be bound."""
        self.initialize_logging()
        return asyncio.run(self._serve(ready))

    async def _serve(self, ready: Callable[[], None]) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        got: list[int] = []

        def on_signal(signum: int) -> None:
            got.append(signum)
            stop.set()

        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, on_signal, s)
        runner = web.AppRunner(await self._make_app(), handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, shutdown_timeout=SHUTDOWN_SECONDS)
            await site.start()
            ready()
            await stop.wait()
        finally:
            await runner.cleanup()
            await self._end_sessions()
            for s in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(s)
        return got[0] if got else 0

    async def _end_sessions(self) -> None:
        """Wait for the sessions' wizards to quit; SIGTERM those still running by then."""
        loop = asyncio.get_running_loop()
        end = loop.time() + SHUTDOWN_SECONDS
        while session_pids() and loop.time() < end:
            await asyncio.sleep(0.1)
        for pid in session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
