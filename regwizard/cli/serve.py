"""``regwizard serve [--host H] [--port P] [--public-url URL] [PLAN]``: the wizard in a
web browser, through textual-serve.

textual-serve runs one command per browser session (a shell command line): here this
same Python running ``-m regwizard [PLAN]``. It talks to each session over a WebSocket
in plain HTTP, so it listens on loopback unless told otherwise, and says loudly what a
wider address exposes.

textual_serve (and aiohttp, jinja2 and rich under it) is imported only inside
:func:`serve_cli`, so other commands never pay for it and the engine never sees it.
This module is listed with the UI modules in tests/test_architecture.py, since
textual_serve imports rich.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from regwizard.errors import RegwizardError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARDS = frozenset({"0.0.0.0", "::"})
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names of loopback."""
    ip = _ip(host)
    return ip.is_loopback if ip is not None else host.lower().rstrip(".") in LOOPBACK_NAMES


def check_host(host: str) -> str:
    """The address to listen on (an IPv6 address without brackets); one clear error for
    anything that is neither an IP address nor a host name."""
    text = host.strip()
    ip = _ip(text)
    if ip is not None:
        return str(ip)
    if not HOST_NAME.fullmatch(text):
        raise RegwizardError(
            f"serve: {host!r} is not an address to listen on",
            "give an IP address or a host name, e.g. --host 127.0.0.1 (the default)",
        )
    return text


def url_for(host: str, port: int) -> str:
    """http://HOST:PORT, with an IPv6 address in brackets."""
    ip = _ip(host)
    shown = f"[{ip}]" if ip is not None and ip.version == 6 else host
    return f"http://{shown}:{port}"


def check_public_url(url: str) -> str:
    u = url.strip().rstrip("/")
    if not u.startswith(("http://", "https://")) or any(c.isspace() for c in u) or "?" in u:
        raise RegwizardError(
            f"serve: --public-url {url!r} is not a web address",
            "give the address browsers open, e.g. --public-url http://10.0.0.5:8000",
        )
    return u


def check_plan(plan: str | None) -> Path | None:
    """The plan as an absolute path, after checking that it exists and parses (each
    browser session opens it, so a bad plan is refused once, here)."""
    if plan is None:
        return None
    from regwizard.plan import load_plan

    path = Path(plan).expanduser().absolute()
    if path.suffix != ".toml":
        raise RegwizardError(
            f"serve: the wizard opens only .toml plans, not {plan!r}",
            "give a plan file whose name ends in .toml (regwizard plan new -o my-plan.toml)",
        )
    load_plan(path)  # PlanError (a RegwizardError): not found, unreadable, invalid
    return path


def wizard_command(plan: Path | None, python: str | None = None) -> str:
    """The shell command line textual-serve runs per browser session: this Python, this
    regwizard, the wizard on ``plan`` (absolute), every word quoted; ``exec``, so the
    session's process is the wizard itself (the server can end it by its PID)."""
    words = [python or sys.executable, "-m", "regwizard"]
    if plan is not None:
        words.append(str(plan))
    return "exec " + shlex.join(words)


def exposure_warning(host: str, port: int) -> str:
    """What listening beyond loopback means, and the safe alternative."""
    return (
        f"regwizard: warning: serving on {host}, not on loopback: anyone who can reach port "
        f"{port} there gets the wizard, and the SSH, sudo and registry passwords typed into "
        "it cross the network as plain HTTP, readable on the way.\n"
        f"  safer: keep the default --host {DEFAULT_HOST} and have each person open an SSH "
        f"tunnel: ssh -L {port}:127.0.0.1:{port} user@vm, then browse "
        f"http://127.0.0.1:{port}"
    )


def run_server(
    command: str, host: str, port: int, public_url: str, ready: Callable[[], None]
) -> int:
    """Serve ``command`` per browser session until SIGINT/SIGTERM; return that signal.
    OSError when the address cannot be bound. (The CLI sandbox replaces this.)"""
    from regwizard.cli.webserver import WizardServer

    server = WizardServer(command, host=host, port=port, public_url=public_url)
    return server.run(ready)


def serve_cli(args) -> int:  # noqa: ANN001
    host = check_host(args.host)
    port: int = args.port
    plan = check_plan(args.plan)
    if args.public_url is not None:
        public = check_public_url(args.public_url)
    elif host in WILDCARDS:
        raise RegwizardError(
            f"serve: --host {host} listens on every address, but each browser needs the "
            "one address it can reach the wizard at",
            f"add --public-url http://ADDRESS:{port} (the address people type), or give "
            "that address as --host",
        )
    else:
        public = url_for(host, port)
    if not is_loopback(host):
        print(exposure_warning(host, port), file=sys.stderr, flush=True)

    def ready() -> None:
        print(
            f"regwizard: the wizard is served at {public}/ (a wizard per browser tab; "
            "Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )

    try:
        signum = run_server(wizard_command(plan), host, port, public, ready)
    except OSError as e:
        raise RegwizardError(
            f"serve: cannot listen on {host} port {port}: {e.strerror or e}",
            "choose another --port, or stop what listens there"
            if e.errno == errno.EADDRINUSE
            else "check --host: it must be an address of this machine",
        ) from None
    if signum:
        print("regwizard: stopped", file=sys.stderr, flush=True)
        return 128 + signum
    return 0
