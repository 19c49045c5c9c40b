"""The Repair flow: connect → discovered setup + findings → choose fixes → Review/Run/Results.

``backend.adopt`` reads the existing registry (read-only) and returns the plan of the
intended setup; ``backend.diagnose`` checks the registry against it (read-only). Fixing
is converging to that plan: the same Review, Run and Results screens as a new setup.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import (
    Button,
    Checkbox,
    Collapsible,
    DataTable,
    Footer,
    Input,
    Label,
    Select,
    SelectionList,
    Static,
)
from textual.worker import Worker, WorkerState

from regwizard.app import RepairState
from regwizard.doctor import DoctorReport, Finding
from regwizard.errors import Cancelled
from regwizard.htpasswd import check_new_password, hash_kind, hash_password, is_bcrypt
from regwizard.plan import (
    Connection,
    Plan,
    Secrets,
    User,
    check_container,
)
from regwizard.screens.base import FormScreen, cell, form_field, parse_int, plain
from regwizard.screens.connection import (
    LABELS,
    Attempt,
    ConnectFlow,
    connection_checks,
    connection_fields,
    describe_error,
    save_host_secrets,
    sync_login_visibility,
    typed_connection,
    where,
)
from regwizard.screens.dialogs import AddUserDialog, PasswordDialog
from regwizard.screens.validation import named, optional

if TYPE_CHECKING:  # adopt is imported by the backend when the search runs
    from regwizard.adopt import Adoption

SEVERITY_MARK = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}
SEVERITY_ORDER = {"fail": 0, "warn": 1, "skip": 2, "ok": 3}

# --------------------------------------------------------------------------- reading adopt's output


def ignored_users(found: Adoption) -> list[tuple[str, str]]:
    """Users the registry ignores (non-bcrypt hash): ``(name, hash kind)``, each once.

    They are users of the plan whose hash is not bcrypt, or users adopt left out of the
    plan. A user who has a bcrypt hash in the plan is done.
    """
    plan = found.plan
    out: dict[str, str] = {}
    for user in plan.users:
        if not is_bcrypt(user.bcrypt):
            out[user.name] = hash_kind(user.bcrypt)
    for name, kind in found.ignored_users:
        out.setdefault(name, kind)
    return [
        (name, kind)
        for name, kind in out.items()
        if not ((u := plan.user(name)) is not None and is_bcrypt(u.bcrypt))
    ]


def storage_text(found: Adoption) -> str:
    storage = found.plan.registry.storage
    data = found.unpersisted_data
    if data is None:
        return storage
    if data.kind == "anonymous-volume":
        where = f"in an anonymous volume ({data.name})"
    elif data.kind == "volume":
        where = f"in volume {data.name}"
    else:
        where = "in the container's writable layer"
    return f"data {where}; the fix moves it to {storage}"


def certificate_text(found: Adoption) -> str:
    if found.plain_http:
        return "none: plain HTTP (the fix issues one with SANs)"
    if found.certificate is not None:
        left = found.certificate.days_left
        expiry = f"expired {-left} days ago" if left < 0 else f"expires in {left} days"
        return f"{found.certificate.details}; {expiry}"
    plan = found.plan
    cert = plan.certificate
    sans = [plan.registry.domain, plan.registry.ip, *cert.extra_sans]
    return f"CN={plan.common_name}, SANs {', '.join(s for s in sans if s)}"


def users_text(found: Adoption) -> str:
    names = [u.name for u in found.plan.users if is_bcrypt(u.bcrypt)]
    ignored = [f"{name} (needs a new password)" for name, _ in ignored_users(found)]
    if not names and not ignored:
        return "none: no auth, anyone can push and pull"
    return ", ".join(names + ignored)


def setup_table(found: Adoption) -> Table:
    plan = found.plan
    reg = plan.registry
    host = plan.host
    where = "this machine" if host.is_local else f"{host.user}@{host.address}:{host.port}"
    rows = [
        ("Host", where),
        ("Registry", reg.address + (f" ({reg.ip})" if reg.ip else "")),
        ("Container", f"{reg.container} ({reg.image})"),
        ("Storage", storage_text(found)),
        ("Certificate", certificate_text(found)),
        ("Users", users_text(found)),
    ]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, Text(plain(value)))
    return table


def fixable(report: DoctorReport | None) -> list[Finding]:
    """Problems the run can fix: a warning or failure with a fix."""
    if report is None:
        return []
    return [f for f in report.problems if f.fix]


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def finding_line(f: Finding) -> str:
    return plain(f"{SEVERITY_MARK.get(f.severity, '?')} {f.check} on {f.host}: {f.message}")


# --------------------------------------------------------------------------- 1. connect


class RepairConnectScreen(FormScreen):
    """How to reach the registry host; "Find registry" reads its setup (read-only)."""

    STEP = "repair"
    previous = "welcome"
    following = "discovered"

    def __init__(self) -> None:
        super().__init__()
        self.connect: ConnectFlow[Adoption] = ConnectFlow(self, "adopt")
        self.checks = {
            **connection_checks(),
            "container": optional(named("Container name", check_container)),
        }
        self.labels = {**LABELS, "container": "Container name"}

    def compose(self) -> ComposeResult:
        host = self.state.plan.host
        secrets = self.state.secrets
        repair = self.state.repair
        yield from self.compose_steps()
        with VerticalScroll(id="body", can_focus=False):
            with Vertical(classes="page"):
                yield Label("Repair a registry", classes="page-title")
                yield Static(
                    "regwizard connects over SSH, finds the registry container and reads its "
                    "setup. Nothing changes until you choose fixes and press Run.",
                    classes="page-intro",
                )
                yield from connection_fields(host, secrets)
                yield form_field(
                    "Container",
                    Input(
                        repair.container if repair else "",
                        placeholder="optional: found by its image",
                        id="container",
                    ),
                    hint="Empty: the container running registry or distribution.",
                )
                yield Static("", id="adopt-status", classes="facts", markup=False)
        yield self.compose_nav(next_label="Find registry")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#adopt-status").display = False
        self._sync_visibility()

    # -- visibility ------------------------------------------------------------------

    def _sync_visibility(self) -> None:
        sync_login_visibility(self)

    @on(Select.Changed, "#host-auth")
    @on(Checkbox.Changed, "#host-sudo")
    def _login_changed(self) -> None:
        self._sync_visibility()
        self.check_field("host-key-file")

    # -- values ----------------------------------------------------------------------

    def _connection(self) -> Connection:
        """The registry host connection as currently typed."""
        old = self.state.plan.host
        address = self.field_value("host-address").strip()
        return typed_connection(self, host_key=old.host_key if old.address == address else "")

    def _save_host_secrets(self, secrets: Secrets, conn: Connection) -> None:
        save_host_secrets(self, secrets, conn)

    def _show_status(self, text: str, kind: str) -> None:
        widget = self.query_one("#adopt-status", Static)
        widget.display = True
        widget.update(text)
        for cls in ("-ok", "-error", "-pending"):
            widget.set_class(cls == kind, cls)
        self.call_after_refresh(widget.scroll_visible, animate=False)

    # -- finding the registry ----------------------------------------------------------

    def action_back(self) -> None:
        self.connect.cancel()  # a thread worker cannot be killed: ask it to stop
        super().action_back()

    def action_next(self) -> None:
        bad = self.validate_all()
        if bad:
            self.notify(
                "Please fix: " + ", ".join(bad), title="Cannot search yet", severity="error"
            )
            return
        self._start_adopt()

    def _start_adopt(self) -> None:
        conn = self._connection()
        self._save_host_secrets(self.state.secrets, conn)
        cancel = self.connect.new_cancel()
        self._show_status(f"Connecting to {where(conn)} and looking for the registry …", "-pending")
        container = self.field_value("container").strip() or None
        worker = self.find_registry(conn, self.state.secrets, container, cancel)
        self.connect.follow(
            worker,
            Attempt(
                show=self._show_status,
                succeeded=self._found,
                retry=self._start_adopt,
                stopped="Search stopped.",
            ),
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="adopt")
    def find_registry(
        self,
        conn: Connection,
        secrets: Secrets,
        container: str | None,
        cancel: threading.Event,
    ) -> Adoption:
        return self.wizard.backend.adopt(conn, secrets, container, cancel)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.connect.handle(event)

    def _found(self, adoption: Adoption) -> None:
        plan = adoption.plan
        container = self.field_value("container").strip()
        self.state.repair = RepairState(adoption=adoption, container=container)
        self.state.plan.host = plan.host  # the connection (and pinned key) as typed
        self._show_status(f"✓ Found {plan.registry.container} ({plan.registry.image})", "-ok")
        self.wizard.goto(self.following)

    def save(self) -> None:
        conn = self._connection()
        if parse_int(self.field_value("host-port")) is None:
            conn.port = self.state.plan.host.port
        self._save_host_secrets(self.state.secrets, conn)
        self.state.plan.host = conn


# --------------------------------------------------------------------------- 2. discovered


class _AfterConnect(FormScreen):
    """A Repair step after the connect screen: adopt's result is in the wizard state."""

    @property
    def repair(self) -> RepairState:
        repair = self.state.repair
        assert repair is not None, "the Repair flow starts on the connect screen"
        return repair


class DiscoveredScreen(_AfterConnect):
    """The setup adopt found, and the doctor's findings with evidence and fix."""

    STEP = "discovered"
    AUTO_FOCUS = "#findings"
    previous = "repair"
    following = "fixes"

    def __init__(self) -> None:
        super().__init__()
        self._findings: list[Finding] = []
        self._diagnose_worker: Worker | None = None
        self._diagnose_cancel = threading.Event()

    def compose(self) -> ComposeResult:
        repair = self.repair
        yield from self.compose_steps()
        with VerticalScroll(id="body", can_focus=False):
            with Vertical(classes="page"):
                yield Label("What regwizard found", classes="page-title")
                yield Static(
                    "Read-only so far: nothing has been changed.",
                    classes="page-intro",
                )
                with Horizontal(classes="columns"):
                    with Vertical(classes="column"):
                        yield Label("Discovered setup", classes="section-title")
                        yield Static(setup_table(repair.adoption), id="setup")
                        with Collapsible(
                            title=f"Notes ({len(repair.notes)})", collapsed=True, id="notes-box"
                        ):
                            yield Static(
                                "\n".join(f"• {plain(n)}" for n in repair.notes),
                                id="notes",
                                markup=False,
                            )
                    with Vertical(classes="column"):
                        yield Label("Findings", id="findings-title", classes="section-title")
                        yield Static("", id="doctor-status", markup=False)
                        yield DataTable(id="findings", cursor_type="row", zebra_stripes=True)
                        with Vertical(id="finding-detail"):
                            yield Static("", id="finding-message", markup=False)
                            yield Static(
                                "", id="finding-evidence", classes="evidence", markup=False
                            )
                            yield Static("", id="finding-fix", markup=False)
        yield self.compose_nav(
            next_label="Choose fixes",
            extra=(Button("Check again", id="recheck"),),
        )
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#findings", DataTable)
        table.add_column(" ", key="severity", width=1)
        table.add_column("Check", key="check")
        table.add_column("Host", key="host")
        table.add_column("Message", key="message")
        self.query_one("#finding-detail").display = False
        if self.repair.report is not None:
            self._show_report(self.repair.report)
        else:
            self.start_checks()

    # -- the doctor ----------------------------------------------------------------------

    def start_checks(self) -> None:
        self._diagnose_cancel.set()
        self._diagnose_cancel = threading.Event()
        self.repair.report = None
        self._findings = []
        self.query_one("#findings", DataTable).clear()
        self.query_one("#finding-detail").display = False
        self._status("Checking the registry (read-only) …")
        self._diagnose_worker = self.check_registry(
            self.repair.plan, self.state.secrets, self._diagnose_cancel
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="diagnose")
    def check_registry(self, plan: Plan, secrets: Secrets, cancel: threading.Event) -> DoctorReport:
        return self.wizard.backend.diagnose(plan, secrets, cancel)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "diagnose" or worker is not self._diagnose_worker:
            return
        if event.state == WorkerState.SUCCESS:
            report = worker.result
            assert isinstance(report, DoctorReport)
            self.repair.report = report
            self._show_report(report)
        elif event.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, Cancelled):
                self._status("Checks stopped.")
            else:
                assert error is not None
                self._status(describe_error(error))

    def _status(self, text: str) -> None:
        self.query_one("#doctor-status", Static).update(text)

    def _show_report(self, report: DoctorReport) -> None:
        fails = sum(f.severity == "fail" for f in report.findings)
        warns = sum(f.severity == "warn" for f in report.findings)
        oks = sum(f.severity == "ok" for f in report.findings)
        if report.healthy:
            text = f"✓ Healthy: {oks} checks passed."
        else:
            text = (
                f"✗ {plural(fails, 'failure')}, ! {plural(warns, 'warning')}, ✓ {oks} ok. "
                "Select a finding to see its evidence and fix."
            )
        if report.incomplete:
            text += f" Could not check: {'; '.join(plain(i) for i in report.incomplete[:3])}"
        self._status(text)
        self._findings = sorted(report.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))
        table = self.query_one("#findings", DataTable)
        table.clear()
        for i, f in enumerate(self._findings):
            table.add_row(
                SEVERITY_MARK.get(f.severity, "?"),
                cell(plain(f.check)),
                cell(plain(f.host)),
                cell(plain(f.message)),
                key=str(i),
            )
        if self._findings:
            table.move_cursor(row=0)
            self._show_finding(0)
        if self.screen.focused is None or self.screen.focused is table:
            table.focus()
        self.call_after_refresh(self._scroll_to_findings)

    def _scroll_to_findings(self) -> None:
        """On a small terminal the findings are below the setup: show them first."""
        body = self.query_one("#body", VerticalScroll)
        body.scroll_to_widget(self.query_one("#findings-title"), top=True, animate=False)

    @on(DataTable.RowHighlighted, "#findings")
    def finding_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_finding(int(event.row_key.value))

    def _show_finding(self, index: int) -> None:
        if not 0 <= index < len(self._findings):
            return
        f = self._findings[index]
        self.query_one("#finding-detail").display = True
        self.query_one("#finding-message", Static).update(finding_line(f))
        evidence = self.query_one("#finding-evidence", Static)
        evidence.update(plain(f.evidence))
        evidence.display = bool(f.evidence)
        fix = self.query_one("#finding-fix", Static)
        fix.update(f"Fix: {plain(f.fix)}" if f.fix else "")
        fix.display = bool(f.fix)

    @on(Button.Pressed, "#recheck")
    def check_again(self) -> None:
        self.start_checks()

    # -- leaving ----------------------------------------------------------------------------

    def action_back(self) -> None:
        self._diagnose_cancel.set()
        super().action_back()

    def action_next(self) -> None:
        if self.repair.report is None:
            self.notify(
                "Wait for the checks to finish.", title="Still checking", severity="warning"
            )
            return
        self.prepare_users_then_continue()

    @work(exclusive=True, group="ask", exit_on_error=False)
    async def prepare_users_then_continue(self) -> None:
        """Ignored (non-bcrypt) users get new passwords; a registry without users gets one."""
        plan = self.repair.plan
        secrets = self.state.secrets
        for name, kind in ignored_users(self.repair.adoption):
            password = await self.app.push_screen_wait(
                PasswordDialog(
                    f"New password for {name}",
                    f"{name}'s password is stored as {article(kind)} {kind} hash, which the "
                    "registry ignores "
                    f"(login gets 401). Choose a new password for {name}: it is hashed with "
                    "bcrypt and replaces the old line.",
                    check=check_new_password,
                )
            )
            if not password:
                self.notify(
                    f"{name} needs a new password before the registry can be fixed.",
                    title="Not continued",
                    severity="warning",
                    markup=False,
                )
                return
            hashed = await asyncio.to_thread(hash_password, password)
            self._set_user(plan, name, hashed)
            if not secrets.verify_password or plan.verify_user == name:
                # prove the fix by logging in as a user whose password is known
                plan.verify.user = name
                secrets.verify_password = password
        if not plan.users:
            answer = await self.app.push_screen_wait(AddUserDialog())
            if answer is None:
                self.notify(
                    "The registry has no users: add one so that only people with a password "
                    "can push and pull.",
                    title="Not continued",
                    severity="warning",
                )
                return
            name, password = answer
            hashed = await asyncio.to_thread(hash_password, password)
            self._set_user(plan, name, hashed)
            plan.verify.user = name
            secrets.verify_password = password
        self.wizard.goto(self.following)

    @staticmethod
    def _set_user(plan: Plan, name: str, bcrypt_hash: str) -> None:
        user = plan.user(name)
        if user is None:
            plan.users.append(User(name, bcrypt_hash))
        else:
            user.bcrypt = bcrypt_hash


# --------------------------------------------------------------------------- 3. choose fixes


PARTIAL_TEXT = (
    "regwizard fixes by converging the whole plan: it cannot leave one problem as it is. "
    "Check every fix to continue, or go Back (nothing has been changed)."
)


class FixesScreen(_AfterConnect):
    """The fixable findings, all checked; Fix → the same Review → Run → Results."""

    STEP = "fixes"
    AUTO_FOCUS = "#fixes"
    previous = "discovered"
    following = "review"

    def compose(self) -> ComposeResult:
        fixes = fixable(self.repair.report)
        yield from self.compose_steps()
        with VerticalScroll(id="body", can_focus=False):
            with Vertical(classes="page"):
                yield Label("Choose fixes", classes="page-title")
                yield Static(
                    "Fixing means converging the registry to the discovered plan (what "
                    "regwizard apply does): each step checks first and changes only what "
                    "differs. Data is never deleted: images are copied out of a volume before "
                    "the container is replaced, the old volume is kept, and every file that is "
                    "replaced is backed up first.",
                    classes="page-intro",
                )
                if fixes:
                    yield SelectionList[int](
                        *[(Content(finding_line(f)), i, True) for i, f in enumerate(fixes)],
                        id="fixes",
                    )
                else:
                    yield Static(
                        "Nothing to fix: every check passed. Fix still runs the plan once and "
                        "proves the registry works (login, push, pull).",
                        id="no-fixes",
                        markup=False,
                    )
                yield Static(PARTIAL_TEXT, id="partial", classes="warnings", markup=False)
                yield Static(
                    f"Users after the fix: {', '.join(u.name for u in self.repair.plan.users)}",
                    id="fix-users",
                    classes="field-note",
                    markup=False,
                )
        yield self.compose_nav(next_label="Fix")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self._sync_partial()

    def _unchecked(self) -> int:
        for selection in self.query("#fixes").results(SelectionList):
            return selection.option_count - len(selection.selected)
        return 0

    @on(SelectionList.SelectedChanged, "#fixes")
    def _sync_partial(self) -> None:
        partial = self._unchecked() > 0
        self.query_one("#partial").display = partial
        self.query_one("#next", Button).disabled = partial

    def action_next(self) -> None:
        if self._unchecked():
            self.notify(PARTIAL_TEXT, title="Cannot fix only some", severity="error")
            return
        self.wizard.adopt_plan(self.repair.plan)
        self.wizard.goto(self.following)
