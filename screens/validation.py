"""Small adapters from the plan's ``check_*`` validators to text fields."""

from __future__ import annotations

from collections.abc import Callable

from regwizard.screens.base import parse_int

_VERBS = ("is ", "has ", "must ", "may ", "contains ", "cannot ")


def named(label: str, check: Callable[[object], str | None]) -> Callable[[str], str | None]:
    """``check`` on the raw text; a bare "is too long" becomes "<label> is too long"."""

    def run(value: str) -> str | None:
        message = check(value)
        if message and message.startswith(_VERBS):
            message = f"{label} {message}"
        return message

    return run


def optional(check: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """Empty text is fine; anything else must pass ``check``."""

    def run(value: str) -> str | None:
        return None if value == "" else check(value)

    return run


def integer(check: Callable[[object], str | None]) -> Callable[[str], str | None]:
    """Parse digits, then ``check`` the int (non-digits reach ``check`` as text: "whole number")."""

    def run(value: str) -> str | None:
        number = parse_int(value)
        return check(number if number is not None else value)

    return run


def split_list(value: str) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]``."""
    return [part for part in value.replace(",", " ").split() if part]
