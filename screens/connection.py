"""The SSH connection form shared by the Hosts and Repair screens.

Plain functions (no mixin): each screen keeps its own ``@on`` handlers and
calls these for the fields, their checks, the login-dependent visibility,
and reading what was typed.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.widget import Widget
from textual.widgets import Checkbox, Input, Select

from regwizard.plan import (
    Connection,
    Secrets,
    check_address,
    check_local_path,
    check_port,
    check_ssh_user,
)
from regwizard.screens.base import FormScreen, form_field, parse_int
from regwizard.screens.dialogs import AUTH_OPTIONS
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
        "Address", Input(host.address, placeholder="IP, host name or local", id="host-address")
    )
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
