"""Step 3: where images are stored, registry details, and the registry users."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Collapsible, DataTable, Footer, Input, Label, Select, Static
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState

from regwizard.htpasswd import check_password, hash_password
from regwizard.plan import (
    User,
    check_container,
    check_image,
    check_local_path,
    check_port,
    check_storage,
)
from regwizard.report import format_bytes
from regwizard.screens.base import FormScreen, cell, form_field, parse_int
from regwizard.screens.dialogs import AddUserDialog
from regwizard.screens.validation import integer, named, optional


def hash_prefix(bcrypt_hash: str) -> str:
    """``$2b$12$…``: enough to see it is bcrypt, nothing more."""
    parts = bcrypt_hash.split("$")
    if len(parts) >= 4 and bcrypt_hash.startswith("$"):
        return f"${parts[1]}${parts[2]}$…"
    return bcrypt_hash[:7] + "…"


def password_matches(password: str, bcrypt_hash: str) -> bool:
    """bcrypt: ~0.1 s at cost 10, ~1.4 s at cost 14. Call it in a thread, never on the UI's."""
    return check_password(bcrypt_hash, password)


#: Seconds without typing before the verify password is checked (each check is a bcrypt).
CHECK_DELAY = 0.3

#: (user, bcrypt hash, typed password): one bcrypt check of the verify password.
CheckKey = tuple[str, str, str]


class StorageScreen(FormScreen):
    STEP = "storage"
    previous = "certificate"
    following = "review"

    def __init__(self) -> None:
        super().__init__()
        self.users: list[User] = []
        self.remove_users: list[str] = []
        self._plain: dict[str, str] = {}  # passwords typed this session, memory only
        self._hashing: set[str] = set()
        self._users_checked = False  # show "add a user" only once Next was tried
        # the verify password's bcrypt check runs in a thread worker; its last verdict
        self._verdict: tuple[CheckKey, bool] | None = None
        self._check_key: CheckKey | None = None  # what _check_worker checks
        self._check_worker: Worker[bool] | None = None
        self._check_timer: Timer | None = None
        self._leaving = False  # a Back/Next is waiting for the check
        self.checks = {
            "storage-path": check_storage,
            "reg-port": integer(check_port),
            "container": check_container,
            "image": check_image,
            "image-archive": optional(named("Image archive", check_local_path)),
            "verify-password": self._check_verify_password,
        }
        self.labels = {
            "storage-path": "Storage path",
            "reg-port": "Registry port",
            "container": "Container name",
            "image": "Image",
            "image-archive": "Image archive",
            "verify-password": "Verify password",
        }

    def compose(self) -> ComposeResult:
        plan = self.state.plan
        reg = plan.registry
        self.users = [User(u.name, u.bcrypt) for u in plan.users]
        self.remove_users = list(plan.remove_users)
        if self.state.secrets.verify_password and plan.verify_user:
            self._plain[plan.verify_user] = self.state.secrets.verify_password
        yield from self.compose_steps()
        with VerticalScroll(id="body", can_focus=False):
            with Vertical(classes="page"):
                yield Label("Storage and users", classes="page-title")
                yield Static(
                    "Images are kept in a directory on the registry host. Users log in with "
                    "passwords hashed with bcrypt (the only kind the registry accepts).",
                    classes="page-intro",
                )
                with Horizontal(classes="columns"):
                    with Vertical(classes="column"):
                        yield form_field(
                            "Storage path",
                            Input(reg.storage, placeholder="/opt/docker-image", id="storage-path"),
                        )
                        yield Static("", id="storage-free", classes="field-note", markup=False)
                        with Collapsible(title="Advanced", collapsed=True, id="advanced"):
                            yield form_field(
                                "Registry port", Input(str(reg.port), id="reg-port", type="integer")
                            )
                            yield form_field("Container", Input(reg.container, id="container"))
                            yield form_field("Image", Input(reg.image, id="image"))
                            yield form_field(
                                "Image archive",
                                Input(
                                    reg.image_archive,
                                    placeholder="optional: docker save .tar for offline hosts",
                                    id="image-archive",
                                ),
                            )
                    with Vertical(classes="column"):
                        yield Label("Registry users", classes="section-title")
                        yield DataTable(id="users", cursor_type="row", zebra_stripes=True)
                        yield Label("", id="users-error", classes="field-error", markup=False)
                        with Horizontal(classes="actions"):
                            yield Button("Add user", id="add-user", compact=True)
                            yield Button("Remove", id="remove-user", compact=True)
                        yield form_field(
                            "Verify as",
                            Select([], prompt="choose a user", id="verify-user"),
                        )
                        yield form_field(
                            "Its password",
                            Input(
                                password=True,
                                placeholder="needed to prove login",
                                id="verify-password",
                            ),
                            hint="Kept in memory only; used to log in and push a test image.",
                        )
        yield self.compose_nav()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#users", DataTable)
        table.add_column("User", key="name")
        table.add_column("Password hash", key="hash")
        self._fill_users(select=self.state.plan.verify_user)
        self.on_screen_resume()

    def on_screen_resume(self) -> None:
        facts = self.state.host_facts
        note = self.query_one("#storage-free", Static)
        if facts is not None and facts.free_bytes is not None:
            note.update(
                f"{format_bytes(facts.free_bytes)} free there on {facts.label or facts.address}"
            )
            note.display = True
        else:
            note.display = False

    # -- users ------------------------------------------------------------------------

    def _fill_users(self, select: str | None = None) -> None:
        table = self.query_one("#users", DataTable)
        table.clear()
        for user in self.users:
            shown = "hashing …" if user.name in self._hashing else hash_prefix(user.bcrypt)
            table.add_row(cell(user.name), cell(shown), key=user.name)
        verify = self.query_one("#verify-user", Select)
        current = verify.value if select is None else select
        names = [u.name for u in self.users]
        verify.set_options([(n, n) for n in names])
        if current in names:
            verify.value = current
        elif len(names) == 1:
            verify.value = names[0]
        self._sync_verify_password()
        if self._users_checked:
            self._check_users()

    def _verify_user(self) -> str:
        value = self.query_one("#verify-user", Select).value
        return value if isinstance(value, str) else ""

    def _known_password(self, name: str) -> str:
        return self._plain.get(name, "")

    def _sync_verify_password(self) -> None:
        name = self._verify_user()
        needed = bool(name) and not self._known_password(name)
        self.query_one("#verify-password-field").display = needed
        if needed:
            self.query_one("#verify-password-field Label.field-label", Label).update(
                f"{name}'s password"
            )

    def _check_verify_password(self, value: str) -> str | None:
        """The field's check. Never runs bcrypt: it reads the verdict of the check worker
        (no verdict yet = no error yet; Back and Next wait for it)."""
        name = self._verify_user()
        user = next((u for u in self.users if u.name == name), None)
        if user is None or self._known_password(name):
            return None
        if not value:
            return f"Enter {name}'s password: verification logs in as {name}"
        if self._matches(self._check_key_for(value)) is False:
            return f"This is not {name}'s password (it does not match the stored hash)"
        return None

    # -- the verify password's bcrypt check, in a thread -----------------------------------

    def _check_key_for(self, value: str) -> CheckKey | None:
        """What to check with bcrypt for the typed ``value``; None when nothing is to check."""
        name = self._verify_user()
        user = next((u for u in self.users if u.name == name), None)
        if user is None or not value or self._known_password(name):
            return None
        if not user.bcrypt or name in self._hashing:
            return None
        return (name, user.bcrypt, value)

    def _matches(self, key: CheckKey | None) -> bool | None:
        """The verdict for ``key``: True / False, or None when not checked (yet)."""
        if key is None or self._verdict is None or self._verdict[0] != key:
            return None
        return self._verdict[1]

    @on(Input.Changed, "#verify-password")
    def verify_password_typed(self, event: Input.Changed) -> None:
        """Check once typing pauses: each check costs a bcrypt."""
        if self._check_timer is not None:
            self._check_timer.stop()
            self._check_timer = None
        if self._check_key_for(event.value) is not None:
            self._check_timer = self.set_timer(CHECK_DELAY, self._start_password_check)

    @on(Input.Submitted, "#verify-password")
    def verify_password_submitted(self) -> None:
        self._start_password_check()

    def _start_password_check(self) -> tuple[CheckKey, Worker[bool]] | None:
        """Start checking the typed verify password (or follow the check already running).

        None when there is nothing to check, or the verdict is known already.
        """
        if self._check_timer is not None:
            self._check_timer.stop()
            self._check_timer = None
        key = self._check_key_for(self.field_value("verify-password"))
        if key is None or self._matches(key) is not None:
            return None
        worker = self._check_worker
        if key != self._check_key or worker is None or worker.is_finished:
            self._check_key = key
            worker = self._check_worker = self.check_verify_password(*key)
        return key, worker

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify-password")
    def check_verify_password(self, name: str, bcrypt_hash: str, password: str) -> bool:
        """bcrypt is deliberately slow: check off the UI thread."""
        return password_matches(password, bcrypt_hash)

    def _password_checked(self, event: Worker.StateChanged) -> None:
        """A check finished: keep its verdict, and show it if the field still says that."""
        if event.worker is not self._check_worker or event.state != WorkerState.SUCCESS:
            return
        key = self._check_key
        assert key is not None
        self._verdict = (key, bool(event.worker.result))
        if self._check_key_for(self.field_value("verify-password")) == key:
            self.check_field("verify-password")

    async def _password_verdict_ready(self) -> bool:
        """Before Back or Next: wait for the check of the typed verify password, if any.

        Awaited in the handler, so nothing else happens on this screen meanwhile while
        the app keeps running. False: stay (another Back/Next waits already, the check
        failed, or the screen is no longer on top).
        """
        if self._leaving:
            return False
        started = self._start_password_check()
        if started is None:
            return True
        key, worker = started
        self._leaving = True
        try:
            matches = await worker.wait()
        except WorkerCancelled:
            return False
        except WorkerFailed as e:
            self.notify(f"Could not check the password: {e.error}", severity="error", markup=False)
            return False
        finally:
            self._leaving = False
        self._verdict = (key, matches)
        return self.is_active

    def _check_users(self) -> str | None:
        problem = (
            None if self.users else "Add at least one user: the registry refuses anonymous access"
        )
        label = self.query_one("#users-error", Label)
        label.update(problem or "")
        label.set_class(bool(problem), "-shown")
        return problem

    def validate_all(self) -> list[str]:
        bad = super().validate_all()
        advanced = ("reg-port", "container", "image", "image-archive")
        if any(self.query_one(f"#{i}-error").has_class("-shown") for i in advanced):
            self.query_one("#advanced", Collapsible).collapsed = False  # show what is wrong
        return bad

    def extra_problems(self) -> list[str]:
        problems = []
        self._users_checked = True
        if self._check_users():
            problems.append("Users")
        if self.users and not self._verify_user():
            problems.append("Verify as")
        if self._hashing:
            problems.append("wait for hashing to finish")
        return problems

    @on(Select.Changed, "#verify-user")
    def _verify_changed(self) -> None:
        self._sync_verify_password()
        self.show_error("verify-password", None)

    @on(Button.Pressed, "#add-user")
    def add_user(self) -> None:
        def added(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            name, password = answer
            self.users.append(User(name, ""))
            if name in self.remove_users:
                self.remove_users.remove(name)
            self._plain[name] = password
            self._hashing.add(name)
            self._fill_users(select=self._verify_user() or name)
            self.hash_user(name, password)

        self.app.push_screen(AddUserDialog([u.name for u in self.users]), added)

    @work(thread=True, exit_on_error=False, group="hash")
    def hash_user(self, name: str, password: str) -> tuple[str, str]:
        """bcrypt is deliberately slow: hash off the UI thread."""
        return name, hash_password(password)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "verify-password":
            self._password_checked(event)
            return
        if event.worker.group != "hash":
            return
        if event.state == WorkerState.SUCCESS:
            name, hashed = event.worker.result
            self._hashing.discard(name)
            for user in self.users:
                if user.name == name:
                    user.bcrypt = hashed
            self._fill_users()
        elif event.state == WorkerState.ERROR:
            self.notify(
                f"Could not hash the password: {event.worker.error}", severity="error", markup=False
            )

    @on(Button.Pressed, "#remove-user")
    def remove_user(self) -> None:
        table = self.query_one("#users", DataTable)
        if not self.users:
            self.notify("There is no user to remove.", severity="warning")
            return
        index = min(max(table.cursor_row, 0), len(self.users) - 1)
        user = self.users.pop(index)
        self._plain.pop(user.name, None)
        self._hashing.discard(user.name)
        if any(u.name == user.name for u in self.state.plan.users) and self.state.from_file:
            # it may exist on the registry already: remove it there too
            if user.name not in self.remove_users:
                self.remove_users.append(user.name)
        self._fill_users()

    # -- leaving ----------------------------------------------------------------------

    async def action_back(self) -> None:  # type: ignore[override]
        if await self._password_verdict_ready():
            super().action_back()

    async def action_next(self) -> None:  # type: ignore[override]
        if await self._password_verdict_ready():
            super().action_next()

    def save(self) -> None:
        plan = self.state.plan
        reg = plan.registry
        reg.storage = self.field_value("storage-path").strip()
        port = parse_int(self.field_value("reg-port"))
        if port is not None:
            reg.port = port
        reg.container = self.field_value("container").strip()
        reg.image = self.field_value("image").strip()
        reg.image_archive = self.field_value("image-archive").strip()
        plan.users = [User(u.name, u.bcrypt) for u in self.users if u.bcrypt]
        plan.remove_users = list(self.remove_users)
        name = self._verify_user()
        plan.verify.user = name
        typed = self.field_value("verify-password")
        key = self._check_key_for(typed)
        if (
            name
            and typed
            and not self._known_password(name)
            and self._check_verify_password(typed) is None
            and (key is None or self._matches(key) is True)  # kept only once bcrypt said so
        ):
            self._plain[name] = typed
        # Keep plaintext only for the verify user, in memory.
        self.state.secrets.verify_password = self._known_password(name) if name else ""
        self._plain = {name: self._plain[name]} if name in self._plain else {}
        self._verdict = None  # it held the typed password
        self._check_key = None
        self._check_worker = None
        self.query_one("#verify-password", Input).value = ""
        self._sync_verify_password()
