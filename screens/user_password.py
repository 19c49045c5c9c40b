"""A new password for an existing registry user: typed twice, or generated and shown once."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from regwizard.htpasswd import check_new_password, generate_password
from regwizard.screens.base import form_field, show_field_error
from regwizard.screens.dialogs import Dialog


class UserPasswordDialog(Dialog[str | None]):
    """Returns the new password (kept in memory only), or None when cancelled."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.user_name = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(f"New password for {self.user_name}", classes="dialog-title", markup=False)
            yield form_field(
                "Password",
                Input(password=True, placeholder="at least 8 characters", id="new-password"),
            )
            yield form_field(
                "Again", Input(password=True, placeholder="type it again", id="new-confirm")
            )
            yield Static("", id="generated", markup=False)
            yield Horizontal(
                Button("Set", id="set", variant="primary"),
                Button("Generate", id="generate"),
                Button("Cancel", id="cancel"),
                classes="dialog-buttons",
            )

    @on(Button.Pressed, "#generate")
    def generate(self) -> None:
        pw = generate_password()
        self.query_one("#new-password", Input).value = pw
        self.query_one("#new-confirm", Input).value = pw
        box = self.query_one("#generated", Static)
        box.update(
            f"Generated password: {pw}\nCopy it now: it is shown only this once and never saved."
        )
        box.add_class("-shown")
        self.query_one("#set", Button).focus()

    @on(Input.Submitted, "#new-confirm")
    @on(Button.Pressed, "#set")
    def set_password(self) -> None:
        pw = self.query_one("#new-password", Input).value
        confirm = self.query_one("#new-confirm", Input).value
        pw_problem = "Enter a password, or press Generate" if not pw else check_new_password(pw)
        confirm_problem = "Passwords do not match" if pw and confirm != pw else None
        show_field_error(self, "new-password", pw_problem)
        show_field_error(self, "new-confirm", confirm_problem)
        if pw_problem is None and confirm_problem is None:
            self.dismiss(pw)

    @on(Input.Submitted, "#new-password")
    def next_field(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def cancel(self) -> None:
        self.dismiss(None)
