"""The SSH connection shared by the Hosts and Repair screens: the form, and connecting.

Plain functions (no mixin): each screen keeps its own ``@on`` handlers and
calls these for the fields, their checks, the login-dependent visibility,
and reading what was typed.

:class:`ConnectFlow` is what happens after a connecting worker ends, the same on
both screens: success goes to the screen; an unknown host key asks the person
(:class:`~regwizard.screens.dialogs.HostKeyDialog`) and, on Trust, accepts the
fingerprint and runs the attempt again; a changed host key is refused with no
dialog; any other error shows its cause and fix.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Select, Static
from textual.worker import Worker, WorkerState

from regwizard import sshconfig
from regwizard.errors import Cancelled, HostKeyChanged, HostKeyUnknown, RegwizardError
from regwizard.plan import (
    Connection,
    Secrets,
    check_address,
    check_local_path,
    check_port,
    check_ssh_user,
)
from regwizard.screens.base import FormScreen, WizardScreen, form_field, parse_int
from regwizard.screens.dialogs import AUTH_OPTIONS, HostKeyDialog
from regwizard.screens.validation import integer, named

FIELD_IDS = ("host-address", "host-port", "host-user", "host-key-file")
LABELS = {
    "host-address": "Address",
    "host-port": "SSH port",
    "host-user": "SSH user",
    "host-key-file": "Key file",
}


def check_key_file(value: str) -> str | None:
    if not value.strip():
        return "Key file is required for key authentication, e.g. ~/.ssh/id_ed25519"
    return named("Key file", check_local_path)(value)


def connection_checks() -> dict:
    return {
        "host-address": named("Address", check_address),
        "host-port": integer(check_port),
        "host-user": check_ssh_user,
        "host-key-file": check_key_file,
    }


def connection_fields(host: Connection, secrets: Secrets) -> Iterator[Widget]:
    """Address, port, user, login method, key file, password, sudo and its password."""
    yield form_field(
        "Address",
        Input(
            host.address,
            placeholder="IP, host name, ~/.ssh/config Host or local",
            id="host-address",
        ),
    )
    # where an ~/.ssh/config Host entry sends the address (filled by ssh_route_hint)
    yield Static("", id="host-ssh-hint", classes="field-note", markup=False)
    yield form_field("SSH port", Input(str(host.port), id="host-port", type="integer"))
    yield form_field("SSH user", Input(host.user, placeholder="root", id="host-user"))
    yield form_field(
        "Login with", Select(AUTH_OPTIONS, value=host.auth, allow_blank=False, id="host-auth")
    )
    yield form_field(
        "Key file", Input(host.key_file, placeholder="~/.ssh/id_ed25519", id="host-key-file")
    )
    yield form_field(
        "SSH password", _secret_input(secrets.ssh_passwords.get(host.address, ""), "host-password")
    )
    yield form_field("", Checkbox("Use sudo (the SSH user is not root)", host.sudo, id="host-sudo"))
    yield form_field(
        "sudo password",
        _secret_input(secrets.sudo_passwords.get(host.address, ""), "host-sudo-password"),
    )


# ------------------------------------------------------------------- ~/.ssh/config


class SshRouteFound(Message):
    """A worker resolved ``address`` through ~/.ssh/config (see :func:`ssh_route_hint`)."""

    def __init__(self, address: str, hint: str, route: sshconfig.Route | None, fill: bool) -> None:
        super().__init__()
        self.address = address
        self.hint = hint
        self.route = route
        self.fill = fill


def ssh_route_hint(address: str, auth: str) -> tuple[str, sshconfig.Route | None]:
    """(one-line hint, route) for a typed address that an ~/.ssh/config Host entry
    changes; ("", None) when it changes nothing. Reads a local file: call it in a worker."""
    address = address.strip()
    if not address or address == "local" or check_address(address) is not None:
        return "", None
    try:
        route = sshconfig.resolve(Connection(address=address, auth=auth))
    except RegwizardError as e:
        return f"✗ {e.cause}", None
    if not route.from_config:
        return "", None
    return f"~/.ssh/config: {route.target}{route.via}", route


def _home_short(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


def show_ssh_route(
    screen: FormScreen, found: SshRouteFound, filled: dict[str, str]
) -> dict[str, str]:
    """Show the hint; with ``found.fill``, put the config's user, port and key into the
    fields that are empty, hold the default, or hold what an earlier hint put there.
    Returns what is now filled from the config (field id -> value)."""
    now = filled if not found.fill else _fill_from_route(screen, found.route, filled)
    text = found.hint
    route = found.route
    if route is not None:  # what will be used: the fields as they now read
        user = screen.field_value("host-user").strip() or route.user
        port = screen.field_value("host-port").strip() or str(route.port)
        text = f"~/.ssh/config: {user}@{route.hostname}:{port}{route.via}"
    hint = screen.query_one("#host-ssh-hint", Static)
    hint.update(text)
    hint.set_class(bool(text), "-shown")
    return now


def _fill_from_route(
    screen: FormScreen, route: sshconfig.Route | None, filled: dict[str, str]
) -> dict[str, str]:
    defaults = {
        "host-user": sshconfig.DEFAULTS.user,
        "host-port": str(sshconfig.DEFAULTS.port),
        "host-key-file": sshconfig.DEFAULTS.key_file,
    }
    wanted: dict[str, str] = {}
    if route is not None:
        if route.sources.get("user") == "config":
            wanted["host-user"] = route.user
        if route.sources.get("port") == "config":
            wanted["host-port"] = str(route.port)
        if route.identity_files:
            wanted["host-key-file"] = _home_short(route.identity_files[0])
    now: dict[str, str] = {}
    for field_id, default in defaults.items():
        field = screen.query_one(f"#{field_id}", Input)
        current = field.value.strip()
        ours = current in ("", default, filled.get(field_id))
        if field_id in wanted and ours:
            if current != wanted[field_id]:
                field.value = wanted[field_id]
            now[field_id] = wanted[field_id]
        elif field_id in filled and current == filled[field_id]:
            field.value = default  # the hint no longer applies: back to the default
    return now


def _secret_input(value: str, id: str) -> Input:
    """A masked input for a password that is kept in memory only."""
    return Input(value, password=True, placeholder="kept in memory only", id=id)


def sync_login_visibility(screen: FormScreen) -> None:
    """Show the key file, password and sudo password only when they apply."""
    auth = screen.query_one("#host-auth", Select).value
    sudo = screen.query_one("#host-sudo", Checkbox).value
    screen.query_one("#host-key-file-field").display = auth == "key"
    screen.query_one("#host-password-field").display = auth == "password"
    screen.query_one("#host-sudo-password-field").display = sudo


def typed_connection(screen: FormScreen, *, host_key: str, label: str = "") -> Connection:
    """The connection as currently typed."""
    port = parse_int(screen.field_value("host-port"))
    return Connection(
        address=screen.field_value("host-address").strip(),
        port=port if port is not None else 22,
        user=screen.field_value("host-user").strip(),
        auth=str(screen.query_one("#host-auth", Select).value),
        key_file=screen.field_value("host-key-file").strip(),
        sudo=screen.query_one("#host-sudo", Checkbox).value,
        host_key=host_key,
        label=label,
    )


def save_host_secrets(screen: FormScreen, secrets: Secrets, conn: Connection) -> None:
    """Keep the typed SSH / sudo passwords in memory only when the login uses them."""
    pw = screen.field_value("host-password")
    if conn.auth == "password" and pw:
        secrets.ssh_passwords[conn.address] = pw
    else:
        secrets.ssh_passwords.pop(conn.address, None)
    sudo_pw = screen.field_value("host-sudo-password")
    if conn.sudo and sudo_pw:
        secrets.sudo_passwords[conn.address] = sudo_pw
    else:
        secrets.sudo_passwords.pop(conn.address, None)


# --------------------------------------------------------------------------- connecting


def where(conn: Connection) -> str:
    """The machine in words: "this machine" or ``user@address:port``."""
    return "this machine" if conn.is_local else f"{conn.user}@{conn.address}:{conn.port}"


def describe_error(error: BaseException) -> str:
    """An error as status text: ``✗ cause`` and, when known, ``Fix: ...``."""
    if isinstance(error, RegwizardError):
        text = f"✗ {error.cause}"
        if error.fix:
            text += f"\n  Fix: {error.fix}"
        return text
    return f"✗ Unexpected error: {type(error).__name__}: {error}"


WAITING_FOR_KEY = "? Unknown host key: waiting for your answer"
KEY_CHANGED = "✗ SSH HOST KEY CHANGED: refusing to connect.\n"

R = TypeVar("R")
#: Shows a status line: (text, kind) with kind "-ok", "-error" or "-pending".
ShowStatus = Callable[[str, str], None]


def _nothing(*_args: Any) -> None:
    return None


@dataclass
class Attempt(Generic[R]):
    """What a screen does with the outcome of one connecting worker."""

    show: ShowStatus  # the status line of this attempt
    succeeded: Callable[[R], None]  # the worker's result
    retry: Callable[[], None]  # start the same attempt again (after Trust)
    failed: Callable[[BaseException], None] = _nothing  # after the error is shown
    not_trusted: Callable[[], None] = _nothing  # after "not trusted" is shown (Cancel)
    stopped: str = ""  # text for Cancelled; "" = shown like any other error


class ConnectFlow(Generic[R]):
    """One connecting worker at a time on ``screen``, and the host-key talk around it.

    The screen starts its own ``@work(thread=True, ...)`` worker in ``group``, hands it
    to :meth:`follow` with an :class:`Attempt`, and forwards its
    ``on_worker_state_changed`` to :meth:`handle`. Outcomes of older workers are ignored.
    """

    def __init__(self, screen: WizardScreen, group: str) -> None:
        self.screen = screen
        self.group = group
        self.worker: Worker[R] | None = None
        self.attempt: Attempt[R] | None = None
        self.cancel_event = threading.Event()

    def new_cancel(self) -> threading.Event:
        """Ask the running worker to stop (a thread cannot be killed); a fresh event for the next."""
        self.cancel_event.set()
        self.cancel_event = threading.Event()
        return self.cancel_event

    def cancel(self) -> None:
        """Ask the running worker to stop at a safe point."""
        self.cancel_event.set()

    def follow(self, worker: Worker[R], attempt: Attempt[R]) -> None:
        """``worker`` is now the one whose outcome counts."""
        self.worker = worker
        self.attempt = attempt

    def handle(self, event: Worker.StateChanged) -> bool:
        """Call from ``on_worker_state_changed``; True when the event was this flow's."""
        worker = event.worker
        if worker.group != self.group or worker is not self.worker or self.attempt is None:
            return False
        if event.state == WorkerState.SUCCESS:
            self.attempt.succeeded(worker.result)  # type: ignore[arg-type]
        elif event.state == WorkerState.ERROR:
            assert worker.error is not None
            self._failed(worker.error, self.attempt)
        return True

    def _failed(self, error: BaseException, attempt: Attempt[R]) -> None:
        if isinstance(error, HostKeyUnknown):
            self._ask_host_key(error, attempt)
            return
        if isinstance(error, Cancelled) and attempt.stopped:
            attempt.show(attempt.stopped, "-error")
            return
        text = describe_error(error)
        if isinstance(error, HostKeyChanged):
            text = KEY_CHANGED + text.removeprefix("✗ ")
        attempt.show(text, "-error")
        attempt.failed(error)

    def _ask_host_key(self, error: HostKeyUnknown, attempt: Attempt[R]) -> None:
        attempt.show(WAITING_FOR_KEY, "-pending")

        def answered(trust: bool | None) -> None:
            if trust:
                self.screen.state.secrets.accepted_host_keys.add(error.fingerprint)
                attempt.retry()
            else:
                attempt.show(f"✗ Host key of {error.host} not trusted; not connected.", "-error")
                attempt.not_trusted()

        self.screen.app.push_screen(
            HostKeyDialog(error.host, error.fingerprint, error.key_type), answered
        )
