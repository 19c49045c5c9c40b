"""A new password for an existing registry user: typed twice, or generated and shown once."""

from __future__ import annotations

from regwizard.screens.dialogs import NewPasswordDialog


class UserPasswordDialog(NewPasswordDialog[str]):
    """Returns the new password (kept in memory only), or None when cancelled."""

    SUBMIT_LABEL = "Set"
    SUBMIT_ID = "set"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.user_name = name
        self.TITLE_TEXT = f"New password for {name}"

    def result(self) -> str | None:
        return self.checked_password()
