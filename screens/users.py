"""Manage users of a saved plan: add, change a password, remove; Apply writes htpasswd
only (the registry is not restarted), proves each login, and saves the plan in place."""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Label, Log, Static
from textual.worker import Worker, WorkerState

from regwizard.errors import RegwizardError
from regwizard.events import Event, StepFailed, StepFinished
from regwizard.screens.base import WizardScreen, cell, plain
from regwizard.screens.dialogs import AddUserDialog, ConfirmDialog, ErrorDialog, PasswordDialog
from regwizard.screens.user_password import UserPasswordDialog
from regwizard.users import UserEdit, UsersOutcome, preview

PENDING = {"add": "new: added on Apply", "passwd": "new password on Apply"}
MARKS = {"changed": "~", "unchanged": "="}


class UsersEvent(Message):
    """An engine event, carried from the users thread to the screen."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class UsersScreen(WizardScreen):
    STEP = "users"
    AUTO_FOCUS = "#user-list"
    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.edits: list[UserEdit] = []
        self._cancel: threading.Event | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_steps()
        plan, path = self.state.plan, self.state.plan_path
        with VerticalScroll(id="body"):
            with Vertical(classes="page"):
                yield Label("Manage users", classes="page-title")
                yield Static(
                    f"Registry {plan.registry.address}, plan {path}. Apply changes htpasswd "
                    "only: the registry is not restarted. Each login is then proven, and the "
                    "plan is saved with its comments.",
                    classes="page-intro",
                    markup=False,
                )
                yield DataTable(id="user-list", cursor_type="row", zebra_stripes=True)
                with Horizontal(classes="actions"):
                    yield Button("Add", id="add-user", compact=True)
                    yield Button("Change password", id="passwd-user", compact=True)
                    yield Button("Remove", id="remove-user", compact=True)
                yield Log(id="users-log", auto_scroll=True)
        with Horizontal(id="nav"):
            yield Button("Quit", id="quit", variant="error")
            yield Static(classes="spacer")
            yield Button("Back", id="back")
            yield Button("Apply", id="apply", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#user-list", DataTable)
        table.add_column("User", key="name")
        table.add_column("Status", key="status")
        self.query_one("#users-log", Log).display = False
        self._fill()

    # -- the list --------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.query_one("#user-list", DataTable)
        view = preview(self.state.plan, self.edits)
        pending = {e.name: e.action for e in self.edits}
        table.clear()
        for user in view.users:
            status = PENDING.get(pending.get(user.name, ""), "")
            if not status and user.name == view.verify_user:
                status = "verification logs in as this user"
            table.add_row(cell(user.name), cell(status), key=user.name)
        for name in (n for n, a in pending.items() if a == "remove"):
            table.add_row(cell(name), "removed on Apply", key=f"-{name}")
        self.query_one("#apply", Button).disabled = not self.edits

    def _selected(self) -> str | None:
        table = self.query_one("#user-list", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if key is None or key.startswith("-") else key

    def _edit(self, edit: UserEdit) -> None:
        """Add ``edit`` if the plan (with the pending edits) allows it, else say why."""
        try:
            preview(self.state.plan, [*self.edits, edit])
        except RegwizardError as e:
            self.app.push_screen(ErrorDialog("Cannot do that", e.cause, e.fix))
            return
        self.edits.append(edit)
        self._fill()

    @on(Button.Pressed, "#add-user")
    def add_user(self) -> None:
        names = [u.name for u in preview(self.state.plan, self.edits).users]

        def added(answer: tuple[str, str] | None) -> None:
            if answer:
                self._edit(UserEdit("add", answer[0], answer[1]))

        self.app.push_screen(AddUserDialog(names), added)

    @on(Button.Pressed, "#passwd-user")
    def change_password(self) -> None:
        name = self._selected()
        if name is None:
            self.notify("Choose a user in the list first", severity="warning")
            return

        def chosen(pw: str | None) -> None:
            if pw:
                self._edit(UserEdit("passwd", name, pw))

        self.app.push_screen(UserPasswordDialog(name), chosen)

    @on(Button.Pressed, "#remove-user")
    def remove_user(self) -> None:
        name = self._selected()
        if name is None:
            self.notify("Choose a user in the list first", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._edit(UserEdit("remove", name))

        self.app.push_screen(
            ConfirmDialog(
                f"Remove {name}?",
                f"On Apply, {name} is deleted from htpasswd and listed in the plan's "
                "[policy] remove_users; the registry refuses the login at once.",
                yes_label="Remove",
                danger=True,
            ),
            answered,
        )

    # -- apply -----------------------------------------------------------------------

    @on(Button.Pressed, "#apply")
    def apply_pressed(self) -> None:
        if self.state.running or not self.edits:
            return
        host = self.state.plan.host
        secrets = self.state.secrets
        if host.auth == "password" and host.address not in secrets.ssh_passwords:

            def given(pw: str | None) -> None:
                if pw:
                    secrets.ssh_passwords[host.address] = pw
                    self.apply_pressed()

            self.app.push_screen(
                PasswordDialog(f"SSH password for {host.user}@{host.address}"), given
            )
            return
        log = self.query_one("#users-log", Log)
        log.display = True
        log.clear()
        self._cancel = threading.Event()
        self.state.running = True
        self.state.run_cancel = self._cancel
        self.query_one("#apply", Button).disabled = True
        self.apply_users(list(self.edits), self._cancel)

    def _emit(self, event: Event) -> None:
        """Called from the worker thread: post, nothing else."""
        self.post_message(UsersEvent(event))

    @work(thread=True, exclusive=True, exit_on_error=False, group="users")
    def apply_users(self, edits: list[UserEdit], cancel: threading.Event) -> UsersOutcome:
        return self.wizard.backend.users(
            self.state.plan,
            edits,
            self.state.secrets,
            path=self.state.plan_path,
            emit=self._emit,
            cancel=cancel,
        )

    def on_users_event(self, message: UsersEvent) -> None:
        ev = message.event
        log = self.query_one("#users-log", Log)
        if isinstance(ev, StepFinished):
            mark = MARKS.get(ev.status, "*")
            log.write_line(f"{mark} {ev.step} ({ev.host}) {ev.status}: {plain(ev.detail)}")
        elif isinstance(ev, StepFailed):
            log.write_line(f"✗ {ev.step} ({ev.host}) failed: {plain(ev.cause)}")
            if ev.fix:
                log.write_line(f"  fix: {plain(ev.fix)}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "users" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self.state.running = False
        self.state.run_cancel = None
        log = self.query_one("#users-log", Log)
        if event.state == WorkerState.SUCCESS:
            out: UsersOutcome = event.worker.result
            if out.saved:
                self.state.plan = out.plan
                self.edits.clear()
                log.write_line(f"saved {self.state.plan_path} (comments kept)")
            if out.result.ok:
                log.write_line(f"proved: {plain(out.proof)}; the registry was not restarted")
                self.notify("Users changed and proven", title="Done", markup=False)
            else:
                self.notify("See the log for the cause and the fix", severity="error")
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            if isinstance(err, RegwizardError):
                log.write_line(f"✗ {plain(err.cause)}")
                if err.fix:
                    log.write_line(f"  fix: {plain(err.fix)}")
            else:
                log.write_line(f"✗ {type(err).__name__}: {plain(str(err))}")
        self._fill()

    # -- leaving ---------------------------------------------------------------------

    @on(Button.Pressed, "#back")
    def back_pressed(self) -> None:
        self.action_back()

    def action_back(self) -> None:
        if self.state.running:
            self.notify("Wait for Apply to finish", severity="warning")
            return
        self.wizard.goto("welcome")
