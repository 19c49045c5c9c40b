"""Step 1: the registry host (how to reach it), the registry's name, and the clients."""

from __future__ import annotations

import threading
from dataclasses import replace
from functools import partial

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Label, Select, Static
from textual.worker import Worker

from regwizard.events import HostFacts
from regwizard.plan import (
    RUNTIMES,
    Connection,
    Plan,
    Secrets,
    check_domain,
    check_ip,
)
from regwizard.report import format_bytes
from regwizard.screens.base import FormScreen, cell, form_field, parse_int
from regwizard.screens.connection import (
    FIELD_IDS,
    LABELS,
    Attempt,
    ConnectFlow,
    SshRouteFound,
    connection_checks,
    connection_fields,
    save_host_secrets,
    show_ssh_route,
    ssh_route_hint,
    sync_login_visibility,
    typed_connection,
    where,
)
from regwizard.screens.dialogs import AddClientDialog, runtimes_text
from regwizard.screens.validation import named

HOST = "host"  # probe target: the registry host; an int is a client index
DEFAULT_RUNTIMES = ["docker"]


def copy_connection(conn: Connection) -> Connection:
    """A copy that shares no list with ``conn`` (the form edits its own clients)."""
    return replace(conn, runtimes=list(conn.runtimes))


def detected_runtimes(facts: HostFacts) -> list[str]:
    """The runtimes a probe found, in the plan's order (docker, containerd, podman)."""
    return [r for r in RUNTIMES if r in facts.runtimes]


def describe_facts(facts: HostFacts, conn: Connection, storage: str, runtimes: str = "") -> str:
    """Plain text lines for a successful probe (no secrets); ``runtimes``: a client's line."""
    lines = [f"✓ Connected to {where(conn)}"]

    def row(name: str, value: str) -> None:
        lines.append(f"  {name:<12} {value}")

    if facts.fingerprint:
        row("Host key", facts.key_type or "?")
        row("Fingerprint", facts.fingerprint)
    system = " ".join(p for p in (facts.os, f"({facts.arch})" if facts.arch else "") if p)
    row("System", system or "unknown")
    if facts.docker_version:
        row("Docker", facts.docker_version)
    else:
        row("Docker", "✗ not reachable" + (f": {facts.docker_error}" if facts.docker_error else ""))
    if facts.free_bytes is not None:
        row("Free space", f"{format_bytes(facts.free_bytes)} at {storage}")
    if facts.is_root:
        priv = "root"
    elif facts.sudo_ok:
        priv = "sudo works"
    else:
        priv = "✗ neither root nor sudo: regwizard needs one"
    row("Privilege", priv)
    if runtimes:
        row("Runtimes", runtimes)
    return "\n".join(lines)


def replicas_note(plan: Plan) -> str:
    """The ``[[replicas]]`` this screen shows but does not edit (a save keeps them)."""
    names = ", ".join(
        f"{c.label} ({c.address})" if c.label and not c.is_local else c.name for c in plan.replicas
    )
    return (
        f"+ {len(plan.replicas)} replica(s) from the plan file: {names}. "
        f"{len(plan.replicas) + 1} registry hosts serve {plan.registry.domain} from "
        f"{plan.storage.driver} storage; edit replicas in the plan file."
    )


def short_facts(facts: HostFacts) -> str:
    if facts.docker_version:
        docker = f"Docker {facts.docker_version}"
    else:  # a containerd or podman client need not have Docker
        others = [r for r in detected_runtimes(facts) if r != "docker"]
        docker = ", ".join(others) if others else "✗ no Docker"
    return f"✓ {facts.os or '?'}, {docker}"


class ClientTable(DataTable):
    """The clients: Enter (or a click on the highlighted row) edits the client."""

    BINDINGS = [
        Binding(
            "enter", "select_cursor", "Edit client", tooltip="Change this client (login, runtimes)"
        ),
    ]


class HostsScreen(FormScreen):
    STEP = "hosts"
    previous = "welcome"
    following = "certificate"

    def __init__(self) -> None:
        super().__init__()
        self.clients: list[Connection] = []
        self.ssh_filled: dict[str, str] = {}  # fields the ~/.ssh/config hint filled
        self.ssh_route: SshRouteFound | None = None  # the last lookup for the address
        self.connect: ConnectFlow[HostFacts] = ConnectFlow(self, "probe")
        self.checks = {
            **connection_checks(),
            "domain": named("Domain", check_domain),
            "ip": named("IP", check_ip),
        }
        self.labels = {**LABELS, "domain": "Domain", "ip": "IP address"}

    def compose(self) -> ComposeResult:
        plan = self.state.plan
        secrets = self.state.secrets
        host = plan.host
        reg = plan.registry
        self.clients = [copy_connection(c) for c in plan.clients]
        yield from self.compose_steps()
        with VerticalScroll(id="body", can_focus=False):
            with Vertical(classes="page"):
                yield Label("Where should the registry run?", classes="page-title")
                yield Static(
                    "regwizard connects over SSH as root (or a sudo user), installs the "
                    "registry there, and makes each client trust it.",
                    classes="page-intro",
                )
                with Horizontal(classes="columns"):
                    with Vertical(classes="column"):
                        yield Label("Registry host", classes="section-title")
                        yield from connection_fields(host, secrets)
                        with Horizontal(classes="actions"):
                            yield Button("Test connection", id="test-host", compact=True)
                        yield Static(
                            "Not tested yet.", id="host-facts", classes="facts", markup=False
                        )
                        if plan.replicas:  # kept as the plan file says: not edited here
                            yield Static(replicas_note(plan), id="replicas-note", markup=False)
                    with Vertical(classes="column"):
                        yield Label("Registry name", classes="section-title")
                        yield form_field(
                            "Domain",
                            Input(reg.domain, placeholder="reg.example.test", id="domain"),
                        )
                        yield form_field(
                            "IP address",
                            Input(
                                reg.ip, placeholder="as clients reach it, e.g. 10.0.0.2", id="ip"
                            ),
                        )
                        yield form_field(
                            "",
                            Checkbox(
                                "Manage /etc/hosts (domain → IP on every host)",
                                reg.manage_hosts_file,
                                id="manage-hosts",
                            ),
                        )
                        yield Label(
                            "Clients (machines that push and pull)", classes="section-title"
                        )
                        yield ClientTable(id="clients", cursor_type="row", zebra_stripes=True)
                        with Horizontal(classes="actions"):
                            yield Button("Add client", id="add-client", compact=True)
                            yield Button("Remove", id="remove-client", compact=True)
                            yield Button("Test", id="test-client", compact=True)
                        yield Static("", id="client-facts", classes="facts", markup=False)
        yield self.compose_nav()
        yield Footer()

    def on_mount(self) -> None:
        self._fill_clients()
        self._sync_visibility()
        self.lookup_ssh_route(self.field_value("host-address"), self.state.plan.host.auth, False)
        facts = self.state.host_facts
        if facts is not None:
            self._show_host_facts(
                describe_facts(facts, self._connection(), self.state.plan.registry.storage)
            )
        self.query_one("#client-facts").display = False

    # -- visibility ------------------------------------------------------------------

    def _sync_visibility(self) -> None:
        sync_login_visibility(self)

    @on(Select.Changed, "#host-auth")
    @on(Checkbox.Changed, "#host-sudo")
    def _login_changed(self) -> None:
        self._sync_visibility()
        self.check_field("host-key-file")

    # -- ~/.ssh/config ---------------------------------------------------------------

    @on(Input.Changed, "#host-address")
    def _address_typed(self, event: Input.Changed) -> None:
        auth = str(self.query_one("#host-auth", Select).value)
        self.lookup_ssh_route(event.value, auth, True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ssh-config")
    def lookup_ssh_route(self, address: str, auth: str, fill: bool) -> None:
        hint, route = ssh_route_hint(address, auth)
        self.post_message(SshRouteFound(address, hint, route, fill))

    @on(SshRouteFound)
    def _ssh_route_found(self, found: SshRouteFound) -> None:
        if found.address != self.field_value("host-address"):
            return  # typed on since: a newer lookup follows
        self.ssh_route = found
        self.ssh_filled = show_ssh_route(self, found, self.ssh_filled)

    @on(Input.Changed, "#host-user")
    @on(Input.Changed, "#host-port")
    def _login_typed(self) -> None:
        found = self.ssh_route
        if found is not None and found.route is not None:  # the hint shows what is used
            again = SshRouteFound(found.address, found.hint, found.route, fill=False)
            show_ssh_route(self, again, self.ssh_filled)

    # -- clients ---------------------------------------------------------------------

    @staticmethod
    def _login(conn: Connection) -> str:
        if conn.is_local:
            return "-"
        auth = {"key": "key", "agent": "agent", "password": "password"}.get(conn.auth, conn.auth)
        return f"{conn.user} ({auth}{', sudo' if conn.sudo else ''})"

    def _runtimes_column(self) -> bool:
        """Show a Runtimes column only when a client uses more or other than Docker
        (a Docker-only list looks as it always did)."""
        return any(c.runtimes != DEFAULT_RUNTIMES for c in self.clients)

    def _fill_clients(self, row: int | None = None) -> None:
        """Rebuild the rows (and the columns, when Runtimes comes or goes); the cursor
        stays on ``row`` (default: where it was)."""
        table = self.query_one("#clients", DataTable)
        row = table.cursor_row if row is None else row
        with_runtimes = self._runtimes_column()
        if not table.columns or ("runtimes" in table.columns) != with_runtimes:
            table.clear(columns=True)
            table.add_column("Client", key="name")
            table.add_column("Address", key="address")
            table.add_column("Login", key="login")
            if with_runtimes:
                table.add_column("Runtimes", key="runtimes")
            table.add_column("Status", key="status")
        else:
            table.clear()
        for i, conn in enumerate(self.clients):
            facts = self.state.client_facts.get(conn.address)
            status = short_facts(facts) if facts else "not tested"
            cells = [cell(conn.name), cell(conn.address), cell(self._login(conn))]
            if with_runtimes:
                cells.append(cell(runtimes_text(conn.runtimes)))
            table.add_row(*cells, cell(status), key=str(i))
        row = min(row, len(self.clients) - 1)
        if row > 0 and row != table.cursor_row:
            table.move_cursor(row=row)

    def _set_client_status(self, index: int, text: str) -> None:
        table = self.query_one("#clients", DataTable)
        try:
            table.update_cell(str(index), "status", cell(text), update_width=True)
        except Exception:  # the row went away meanwhile
            pass

    def _selected_client(self) -> int | None:
        table = self.query_one("#clients", DataTable)
        if not self.clients or table.cursor_row < 0:
            return None
        return min(table.cursor_row, len(self.clients) - 1)

    @on(Button.Pressed, "#add-client")
    def add_client(self) -> None:
        def added(answer: tuple[Connection, str, str] | None) -> None:
            if answer is None:
                return
            conn, ssh_pw, sudo_pw = answer
            self.clients.append(conn)
            if ssh_pw:
                self.state.secrets.ssh_passwords[conn.address] = ssh_pw
            if sudo_pw:
                self.state.secrets.sudo_passwords[conn.address] = sudo_pw
            self._fill_clients(row=len(self.clients) - 1)

        self.app.push_screen(AddClientDialog([c.address for c in self.clients]), added)

    @on(DataTable.RowSelected, "#clients")
    def edit_client(self) -> None:
        """The same dialog, filled in: change the login, the name, or the runtimes."""
        index = self._selected_client()
        if index is None:
            return
        old = self.clients[index]
        secrets = self.state.secrets

        def edited(answer: tuple[Connection, str, str] | None) -> None:
            if answer is None:
                return
            conn, ssh_pw, sudo_pw = answer
            at = next((i for i, c in enumerate(self.clients) if c is old), None)
            if at is None:  # removed meanwhile
                return
            self.clients[at] = conn
            if ssh_pw:
                secrets.ssh_passwords[conn.address] = ssh_pw
            if sudo_pw:
                secrets.sudo_passwords[conn.address] = sudo_pw
            self._fill_clients(row=at)

        others = [c.address for c in self.clients if c is not old]
        self.app.push_screen(
            AddClientDialog(
                others,
                old,
                ssh_password=secrets.ssh_passwords.get(old.address, "")
                if old.auth == "password"
                else "",
                sudo_password=secrets.sudo_passwords.get(old.address, "") if old.sudo else "",
            ),
            edited,
        )

    @on(Button.Pressed, "#remove-client")
    def remove_client(self) -> None:
        index = self._selected_client()
        if index is None:
            self.notify("There is no client to remove.", severity="warning")
            return
        del self.clients[index]
        self._fill_clients()

    @on(Button.Pressed, "#test-client")
    def test_client(self) -> None:
        index = self._selected_client()
        if index is None:
            self.notify("Add a client first.", severity="warning")
            return
        self._start_probe(index)

    # -- probing -----------------------------------------------------------------------

    def _connection(self) -> Connection:
        """The registry host connection as currently typed."""
        host = self.state.plan.host
        return typed_connection(self, host_key=host.host_key, label=host.label)

    def _save_host_secrets(self, secrets: Secrets, conn: Connection) -> None:
        save_host_secrets(self, secrets, conn)

    @on(Button.Pressed, "#test-host")
    def test_host(self) -> None:
        bad = [self.labels[i] for i in FIELD_IDS if self.check_field(i)]
        if bad:
            self.notify("Please fix: " + ", ".join(bad), title="Cannot test yet", severity="error")
            return
        self._save_host_secrets(self.state.secrets, self._connection())
        self._start_probe(HOST)

    def _start_probe(self, target: str | int) -> None:
        """Test the connection to the registry host (HOST) or to client ``target``."""
        conn = self._connection() if target == HOST else self.clients[int(target)]
        cancel = self.connect.new_cancel()
        if target == HOST:
            show = self._show_host_facts
        else:
            show = self._show_client_facts
            self._set_client_status(int(target), "testing …")
        show(f"Connecting to {where(conn)} …", "-pending")
        worker = self.probe(conn, self.state.secrets, self.state.plan.registry.storage, cancel)
        self.connect.follow(
            worker,
            Attempt(
                show=show,
                succeeded=partial(self._probed, target, conn),
                retry=partial(self._start_probe, target),
                failed=partial(self._probe_failed, target),
                not_trusted=partial(self._probe_not_trusted, target),
            ),
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="probe")
    def probe(
        self, conn: Connection, secrets: Secrets, storage: str, cancel: threading.Event
    ) -> HostFacts:
        return self.wizard.backend.probe(conn, secrets, storage, cancel)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.connect.handle(event)

    def _probed(self, target: str | int, conn: Connection, facts: HostFacts) -> None:
        storage = self.state.plan.registry.storage
        if target == HOST:
            self.state.host_facts = facts
            self._show_host_facts(describe_facts(facts, conn, storage), "-ok")
            return
        self.state.client_facts[conn.address] = facts
        found = detected_runtimes(facts)
        status = short_facts(facts)
        if found:
            note = f"found {runtimes_text(found)}: ticked"
        else:
            note = f"none found: kept {runtimes_text(conn.runtimes)}"
            status += f"; no runtime found, kept {runtimes_text(conn.runtimes)}"
        at = next((i for i, c in enumerate(self.clients) if c is conn), None)
        if at is None:  # removed or edited meanwhile: what the person chose stays
            note = f"found {runtimes_text(found) or 'none'}"
        elif found and found != conn.runtimes:
            conn.runtimes = found
            if "containerd" not in found:
                conn.manage_containerd_config = False
            self._fill_clients()
        if at is not None:
            self._set_client_status(at, status)
        self._show_client_facts(describe_facts(facts, conn, storage, note), "-ok")

    def _probe_failed(self, target: str | int, error: BaseException) -> None:
        if target == HOST:
            self.state.host_facts = None
        else:
            self._set_client_status(int(target), "✗ " + type(error).__name__.removeprefix("Host"))

    def _probe_not_trusted(self, target: str | int) -> None:
        if target != HOST:
            self._set_client_status(int(target), "✗ key not trusted")

    def _show_host_facts(self, text: str, kind: str = "") -> None:
        self._show(self.query_one("#host-facts", Static), text, kind)

    def _show_client_facts(self, text: str, kind: str = "") -> None:
        self._show(self.query_one("#client-facts", Static), text, kind)

    @staticmethod
    def _show(widget: Static, text: str, kind: str) -> None:
        widget.display = True
        widget.update(text)
        for cls in ("-ok", "-error", "-pending"):
            widget.set_class(cls == kind, cls)

    # -- leaving -------------------------------------------------------------------------

    def save(self) -> None:
        plan = self.state.plan
        conn = self._connection()
        old = plan.host
        if conn.address != old.address:
            conn.host_key = ""  # a pin belongs to the old address
            self.state.secrets.ssh_passwords.pop(old.address, None)
            self.state.secrets.sudo_passwords.pop(old.address, None)
        facts = self.state.host_facts
        if facts is not None and facts.address != conn.address:
            self.state.host_facts = None  # facts of another machine
        if parse_int(self.field_value("host-port")) is None:
            conn.port = old.port
        plan.host = conn
        self._save_host_secrets(self.state.secrets, conn)
        plan.registry.domain = self.field_value("domain").strip()
        plan.registry.ip = self.field_value("ip").strip()
        plan.registry.manage_hosts_file = self.query_one("#manage-hosts", Checkbox).value
        plan.clients = [copy_connection(c) for c in self.clients]
