"""Modal dialogs. Each returns its answer through ``dismiss()``; Esc cancels."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import WorkerCancelled, WorkerFailed

from regwizard import settings
from regwizard.htpasswd import check_new_password, generate_password
from regwizard.plan import (
    RUNTIMES,
    Connection,
    check_address,
    check_label,
    check_port,
    check_runtimes,
    check_ssh_user,
    check_username,
)
from regwizard.screens.base import form_field, show_field_error

AUTH_OPTIONS = [("SSH key file", "key"), ("SSH agent", "agent"), ("Password", "password")]


T = TypeVar("T")


class Dialog(ModalScreen[T]):
    """Base: a centred box, Esc = cancel, app widget preferences applied."""

    DEFAULT_CLASSES = "dialog"
    AUTO_FOCUS = "Input, Select, Checkbox, Button"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def on_mount(self) -> None:
        freeze = getattr(self.app, "freeze_widgets", None)
        if freeze is not None:
            freeze(self)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _buttons(*buttons: Button) -> Horizontal:
    return Horizontal(*buttons, classes="dialog-buttons")


class ConfirmDialog(Dialog[bool]):
    """Yes / No. The safe answer (No) has the focus."""

    def __init__(
        self,
        title: str,
        message: str,
        *,
        yes_label: str = "Yes",
        no_label: str = "No",
        danger: bool = False,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.yes_label = yes_label
        self.no_label = no_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.message, classes="dialog-text", markup=False)
            yield _buttons(
                Button(self.yes_label, id="yes", variant="error" if self.danger else "primary"),
                Button(self.no_label, id="no"),
            )

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def no(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


class HostKeyDialog(Dialog[bool]):
    """An unknown SSH host key: show it and let the person decide."""

    def __init__(self, host: str, fingerprint: str, key_type: str) -> None:
        super().__init__()
        self.host = host
        self.fingerprint = fingerprint
        self.key_type = key_type

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box -warning"):
            yield Label("Unknown SSH host key", classes="dialog-title")
            yield Static(
                f"regwizard has never seen {self.host} before. Make sure this is the right "
                "machine before trusting it.",
                classes="dialog-text",
                markup=False,
            )
            with Vertical(id="hostkey-facts"):
                yield Label(f"Host         {self.host}", markup=False)
                yield Label(f"Key type     {self.key_type}", markup=False)
                yield Label(f"Fingerprint  {self.fingerprint}", id="fingerprint", markup=False)
            yield Static(
                "To check, run on the host itself: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub",
                classes="dialog-hint",
                markup=False,
            )
            yield _buttons(
                Button("Trust this key", id="trust", variant="warning"),
                Button("Cancel", id="cancel"),
            )

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#trust")
    def trust(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


class PathDialog(Dialog[str | None]):
    """Ask for a file path (open or save); ``recent`` paths are listed to pick from."""

    def __init__(
        self,
        title: str,
        default: str = "",
        *,
        must_exist: bool = False,
        message: str = "",
        ok_label: str = "OK",
        recent: list[str] | tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.title_text = title
        self.default = default
        self.must_exist = must_exist
        self.message = message
        self.ok_label = ok_label
        self.recent = list(recent)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            if self.message:
                yield Static(self.message, classes="dialog-text", markup=False)
            if self.recent:
                yield Label("Recent plans", classes="dialog-label")
                yield OptionList(
                    *(Option(Content(p), id=f"recent-{i}") for i, p in enumerate(self.recent)),
                    id="recent",
                )
            yield form_field("Path", Input(self.default, placeholder="a file name", id="path"))
            yield _buttons(
                Button(self.ok_label, id="ok", variant="primary"),
                Button("Cancel", id="cancel"),
            )

    @staticmethod
    def _path(value: str) -> Path:
        # os.path.expanduser leaves "~nobody/x" as typed; Path.expanduser raises for it
        return Path(os.path.expanduser(value.strip()))

    def _problem(self, value: str) -> str | None:
        if not value.strip():
            return "Enter a path"
        path = self._path(value)
        try:
            if self.must_exist and not path.is_file():
                return f"No such file: {path}"
            if not self.must_exist and path.is_dir():
                return f"{path} is a directory; add a file name"
            if not self.must_exist and not path.parent.is_dir():
                return f"No such directory: {path.parent}"
        except OSError as e:  # a name too long, a component that is a file
            return f"Cannot use this path: {e.strerror or e}"
        return None

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#ok")
    def ok(self) -> None:
        value = self.query_one("#path", Input).value
        problem = self._problem(value)
        show_field_error(self, "path", problem)
        if problem is None:
            self.dismiss(str(self._path(value)))

    @on(OptionList.OptionSelected, "#recent")
    def recent_chosen(self, event: OptionList.OptionSelected) -> None:
        """A recent path: the same checks and answer as typing it and pressing OK."""
        self.query_one("#path", Input).value = self.recent[event.option_index]
        self.ok()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)


class PasswordDialog(Dialog[str | None]):
    """Ask for one password (masked). ``check`` may reject it with a message.

    ``check`` runs in a thread worker (it may be a bcrypt check: slow on purpose), so it
    must not touch widgets; OK waits for it without blocking the app.
    """

    def __init__(
        self,
        title: str,
        message: str = "",
        *,
        check: Callable[[str], str | None] | None = None,
        allow_empty: bool = False,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.check = check
        self.allow_empty = allow_empty  # OK with nothing typed answers "" (Cancel: None)
        self._checking = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            if self.message:
                yield Static(self.message, classes="dialog-text", markup=False)
            yield form_field("Password", Input(password=True, id="password"))
            yield Static("Kept in memory only: never saved or shown.", classes="dialog-hint")
            yield _buttons(
                Button("OK", id="ok", variant="primary"),
                Button("Cancel", id="cancel"),
            )

    @on(Input.Submitted, "#password")
    @on(Button.Pressed, "#ok")
    async def ok(self) -> None:
        if self._checking:
            return
        value = self.query_one("#password", Input).value
        if not value:
            problem: str | None = None if self.allow_empty else "Enter the password"
        elif self.check is None:
            problem = None
        else:
            self._checking = True
            try:
                problem = await self.run_check(self.check, value).wait()
            except WorkerCancelled:
                return  # the dialog went away meanwhile
            except WorkerFailed as e:
                problem = f"Could not check the password: {e.error}"
            finally:
                self._checking = False
            if not self.is_active:
                return  # cancelled (Esc) while checking: it answered already
        show_field_error(self, "password", problem)
        if problem is None:
            self.dismiss(value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="password-check")
    def run_check(self, check: Callable[[str], str | None], value: str) -> str | None:
        """The caller's check, off the UI thread."""
        return check(value)

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)


class ErrorDialog(Dialog[None]):
    """An error a person can act on: cause, fix, and (scrollable) evidence."""

    def __init__(self, title: str, cause: str, fix: str = "", evidence: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.cause = cause
        self.fix = fix
        self.evidence = evidence

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box -error"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            with VerticalScroll(classes="dialog-scroll"):
                yield Static(self.cause, id="error-cause", classes="dialog-text", markup=False)
                if self.fix:
                    yield Static(
                        f"Fix: {self.fix}", id="error-fix", classes="dialog-text", markup=False
                    )
                if self.evidence:
                    yield Static(
                        self.evidence, id="error-evidence", classes="evidence", markup=False
                    )
            yield _buttons(Button("OK", id="ok", variant="primary"))

    @on(Button.Pressed, "#ok")
    def ok(self) -> None:
        self.dismiss(None)


T_PW = TypeVar("T_PW")


class NewPasswordDialog(Dialog[T_PW]):
    """A new password typed twice (#user-password, #user-confirm), or generated and shown
    once; the submit button's id is SUBMIT_ID. Subclasses add fields and build the result."""

    TITLE_TEXT = ""
    SUBMIT_LABEL = "OK"
    SUBMIT_ID = "submit"

    def __init__(self) -> None:
        super().__init__()
        self._generated = ""

    def compose_fields(self) -> ComposeResult:
        """Fields shown above the password pair."""
        yield from ()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.TITLE_TEXT, classes="dialog-title", markup=False)
            yield from self.compose_fields()
            yield form_field(
                "Password",
                Input(password=True, placeholder="at least 8 characters", id="user-password"),
            )
            yield form_field(
                "Again", Input(password=True, placeholder="type it again", id="user-confirm")
            )
            yield Static("", id="generated", markup=False)
            yield _buttons(
                Button(self.SUBMIT_LABEL, id=self.SUBMIT_ID, variant="primary"),
                Button("Generate", id="generate"),
                Button("Cancel", id="cancel"),
            )

    @on(Input.Changed, "#user-password, #user-confirm")
    def password_changed(self) -> None:
        pw = self.query_one("#user-password", Input).value
        if self._generated and pw != self._generated:
            self._generated = ""
            self._show_generated("")
        show_field_error(self, "user-password", None)
        show_field_error(self, "user-confirm", None)

    def _show_generated(self, text: str) -> None:
        box = self.query_one("#generated", Static)
        box.update(text)
        box.set_class(bool(text), "-shown")

    @on(Button.Pressed, "#generate")
    def generate(self) -> None:
        pw = generate_password()
        self.query_one("#user-password", Input).value = pw
        self.query_one("#user-confirm", Input).value = pw
        self._generated = pw
        self._show_generated(
            f"Generated password: {pw}\nCopy it now: it is shown only this once and never saved."
        )
        self.query_one(f"#{self.SUBMIT_ID}", Button).focus()

    def checked_password(self) -> str | None:
        """The password when both fields agree and it is acceptable; else shows why."""
        pw = self.query_one("#user-password", Input).value
        confirm = self.query_one("#user-confirm", Input).value
        pw_problem = "Enter a password, or press Generate" if not pw else check_new_password(pw)
        confirm_problem = "Passwords do not match" if pw and confirm != pw else None
        show_field_error(self, "user-password", pw_problem)
        show_field_error(self, "user-confirm", confirm_problem)
        return None if pw_problem or confirm_problem else pw

    def result(self) -> T_PW | None:
        """What the dialog returns when submitted; None keeps it open."""
        raise NotImplementedError

    @on(Button.Pressed)
    def submit_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.SUBMIT_ID:
            self.submit()

    def submit(self) -> None:
        out = self.result()
        if out is not None:
            self.dismiss(out)

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "user-confirm":
            self.submit()
        else:
            self.focus_next()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)


class AddUserDialog(NewPasswordDialog[tuple[str, str]]):
    """A new registry user: name + password (typed twice, or generated and shown once)."""

    TITLE_TEXT = "Add a registry user"
    SUBMIT_LABEL = "Add"
    SUBMIT_ID = "add"

    def __init__(self, existing: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        self.existing = set(existing)

    def compose_fields(self) -> ComposeResult:
        yield form_field("User name", Input(placeholder="e.g. alice", id="user-name"))

    def _name_problem(self, name: str) -> str | None:
        if name in self.existing:
            return f"User {name} already exists"
        return check_username(name)

    @on(Input.Changed, "#user-name")
    def name_changed(self, event: Input.Changed) -> None:
        show_field_error(self, "user-name", self._name_problem(event.value))

    def result(self) -> tuple[str, str] | None:
        name = self.query_one("#user-name", Input).value.strip()
        name_problem = self._name_problem(name)
        show_field_error(self, "user-name", name_problem)
        pw = self.checked_password()
        return None if name_problem or pw is None else (name, pw)


#: The runtimes a client can use, in the order the dialog shows them: (plan name, label).
RUNTIME_CHOICES = (("docker", "Docker"), ("containerd", "containerd"), ("podman", "podman"))
NO_RUNTIME = "Tick at least one runtime (Docker, containerd or podman)"


def runtimes_text(runtimes: list[str] | tuple[str, ...]) -> str:
    """``docker, podman``: a client's runtimes in the plan's order."""
    return ", ".join(r for r in RUNTIMES if r in runtimes)


class AddClientDialog(Dialog[tuple[Connection, str, str] | None]):
    """A client machine that must trust and use the registry: a new one, or ``client``
    to change (Edit: the same fields, filled in).

    Returns ``(connection, ssh_password, sudo_password)`` (passwords may be "").
    """

    def __init__(
        self,
        existing: list[str] | tuple[str, ...] = (),
        client: Connection | None = None,
        *,
        ssh_password: str = "",
        sudo_password: str = "",
    ) -> None:
        super().__init__()
        self.existing = set(existing)
        self.client = client
        self.ssh_password = ssh_password
        self.sudo_password = sudo_password

    def compose(self) -> ComposeResult:
        c = self.client or Connection(address="")
        editing = self.client is not None
        with Vertical(classes="dialog-box -wide"):
            yield Label(
                f"Edit client {c.name}" if editing else "Add a client",
                classes="dialog-title",
                markup=False,
            )
            with VerticalScroll(classes="dialog-scroll", can_focus=False):
                yield form_field(
                    "Address",
                    Input(c.address, placeholder="IP, host name, or local", id="client-address"),
                )
                yield form_field("SSH port", Input(str(c.port), id="client-port", type="integer"))
                yield form_field("SSH user", Input(c.user, id="client-user"))
                yield form_field(
                    "Name", Input(c.label, placeholder="optional, e.g. node2", id="client-label")
                )
                auth = c.auth if c.auth in {v for _, v in AUTH_OPTIONS} else "key"
                yield form_field(
                    "Login with",
                    Select(AUTH_OPTIONS, value=auth, allow_blank=False, id="client-auth"),
                )
                yield form_field("Key file", Input(c.key_file, id="client-key-file"))
                yield form_field(
                    "SSH password",
                    Input(
                        self.ssh_password,
                        password=True,
                        placeholder="kept in memory only",
                        id="client-password",
                    ),
                )
                yield form_field(
                    "", Checkbox("Use sudo (the user is not root)", c.sudo, id="client-sudo")
                )
                yield form_field(
                    "sudo password",
                    Input(
                        self.sudo_password,
                        password=True,
                        placeholder="kept in memory only",
                        id="client-sudo-password",
                    ),
                )
                yield form_field(
                    "Runtimes",
                    Horizontal(
                        *(
                            Checkbox(label, name in c.runtimes, id=f"client-{name}", compact=True)
                            for name, label in RUNTIME_CHOICES
                        ),
                        id="client-runtimes",
                        classes="runtime-boxes",
                    ),
                )
                yield form_field(
                    "",
                    Checkbox(
                        "Let regwizard set config_path and restart containerd",
                        c.manage_containerd_config,
                        id="client-manage-containerd",
                    ),
                    hint="edits /etc/containerd/config.toml when it lacks config_path",
                )
            yield _buttons(
                Button("Save", id="save", variant="primary")
                if editing
                else Button("Add", id="add", variant="primary"),
                Button("Cancel", id="cancel"),
            )

    def on_mount(self) -> None:
        super().on_mount()
        self._sync_visibility()

    def _ticked(self) -> list[str]:
        """The runtimes ticked, in the plan's order."""
        return [r for r in RUNTIMES if self.query_one(f"#client-{r}", Checkbox).value]

    def _sync_visibility(self) -> None:
        auth = self.query_one("#client-auth", Select).value
        for wid, show in (
            ("client-key-file", auth == "key"),
            ("client-password", auth == "password"),
            ("client-sudo-password", self.query_one("#client-sudo", Checkbox).value),
            ("client-manage-containerd", "containerd" in self._ticked()),
        ):
            self.query_one(f"#{wid}-field").display = show

    @on(Select.Changed, "#client-auth")
    @on(Checkbox.Changed, "#client-sudo")
    def _changed(self) -> None:
        self._sync_visibility()

    @on(Checkbox.Changed, "#client-runtimes Checkbox")
    def runtimes_changed(self) -> None:
        """Show the containerd option with containerd; clear the error once one is ticked."""
        self._sync_visibility()
        if self._ticked():
            self._set_error("client-runtimes", None)

    def _set_error(self, field: str, message: str | None) -> None:
        show_field_error(self, field, message)

    @on(Button.Pressed, "#add, #save")
    def add(self) -> None:
        address = self.query_one("#client-address", Input).value.strip()
        port_text = self.query_one("#client-port", Input).value.strip()
        addr_problem = check_address(address)
        if address in self.existing:
            addr_problem = f"{address} is already a client"
        port_problem = None
        port = 22
        if address != "local":
            if not port_text.isdigit():
                port_problem = "SSH port must be a number, e.g. 22"
            else:
                port = int(port_text)
                port_problem = check_port(port)
        auth = self.query_one("#client-auth", Select).value
        sudo = self.query_one("#client-sudo", Checkbox).value
        user = self.query_one("#client-user", Input).value.strip() or "root"
        label = self.query_one("#client-label", Input).value.strip()
        key_file = self.query_one("#client-key-file", Input).value.strip()
        runtimes = self._ticked()
        problems = {
            "client-address": addr_problem,
            "client-port": port_problem,
            "client-user": check_ssh_user(user),
            "client-label": (f"Name {m}" if (m := check_label(label)) else None),
            "client-key-file": (
                "Key file is required for key authentication"
                if auth == "key" and not key_file and address != "local"
                else None
            ),
            "client-runtimes": NO_RUNTIME if not runtimes else check_runtimes(runtimes),
        }
        for field, problem in problems.items():
            self._set_error(field, problem)
        if any(problems.values()):
            return
        old = self.client
        conn = Connection(
            address=address,
            port=port,
            user=user,
            auth=str(auth),
            key_file=key_file or "~/.ssh/id_ed25519",
            sudo=sudo,
            # a pin belongs to the address it was taken from
            host_key=old.host_key if old is not None and old.address == address else "",
            label=label,
            runtimes=runtimes,
            manage_containerd_config=(
                "containerd" in runtimes
                and self.query_one("#client-manage-containerd", Checkbox).value
            ),
        )
        ssh_pw = self.query_one("#client-password", Input).value if auth == "password" else ""
        sudo_pw = self.query_one("#client-sudo-password", Input).value if sudo else ""
        self.dismiss((conn, ssh_pw, sudo_pw))

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)


DEFAULT_PLAN_PATH = "./regwizard-plan.toml"


def ask_and_save_plan(
    screen: Screen, state, *, title: str, message: str, ok_label: str, then: Callable[[str], None]
) -> None:
    """Ask where to save the plan (no secrets in it), save it, then call ``then(path)``.

    Over an existing plan file, save_plan edits it in place: its comments stay.

    A failure to write shows the cause and the fix; ``then`` runs only after a save.
    """
    from regwizard.errors import RegwizardError
    from regwizard.plan import save_plan

    default = str(state.plan_path) if state.plan_path else DEFAULT_PLAN_PATH

    def chosen(path: str | None) -> None:
        if not path:
            return
        try:
            save_plan(state.plan, path)
        except RegwizardError as e:
            screen.app.push_screen(ErrorDialog("Could not save the plan", e.cause, e.fix))
            return
        state.plan_path = Path(path)
        settings.remember_plan(path)
        then(path)

    screen.app.push_screen(PathDialog(title, default, message=message, ok_label=ok_label), chosen)


def save_plan(screen: Screen, state) -> None:
    """Review's Save plan (the button and the palette's command): ask where, save, say so."""
    ask_and_save_plan(
        screen,
        state,
        title="Save plan",
        message="The plan holds no passwords: users carry bcrypt hashes only.",
        ok_label="Save",
        then=lambda path: screen.notify(
            f"Plan saved to {path} (no passwords in it)", title="Saved", markup=False
        ),
    )
