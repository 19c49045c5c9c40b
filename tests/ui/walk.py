"""Pilot helpers that drive the wizard the way a person does: focus, type, press."""

from __future__ import annotations

import html
import io

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

SSH_PASSWORD = "Ssh-pw-471"
SUDO_PASSWORD = "Sudo-pw-472"
USER_PASSWORD = "Alice-pw-473"
OTHER_PASSWORD = "Bob-pw-4744"
ALL_PASSWORDS = (SSH_PASSWORD, SUDO_PASSWORD, USER_PASSWORD, OTHER_PASSWORD)


def screen_name(pilot: Pilot) -> str:
    return type(pilot.app.screen).__name__


def _unsettled(pilot: Pilot) -> bool:
    """A DataTable measures new rows and cells only when its message queue is idle
    (``_on_idle``), and the Run screen flushes its log every 0.1 s: a snapshot taken
    before either showed a column cut short ("lates") or lines missing. A table whose
    rows were added by its screen's handler gets no message of its own, so its idle
    may not come before the snapshot: ask for it (``check_idle``)."""
    screen = pilot.app.screen
    waiting = False
    for table in screen.query(DataTable):
        if table._require_update_dimensions or table._updated_cells:
            table.check_idle()
            waiting = True
    return waiting or bool(getattr(screen, "_pending_lines", None))


async def settle(pilot: Pilot, rounds: int = 3) -> None:
    """Let workers finish, their messages be handled and tables be measured."""
    await pilot.app.workers.wait_for_complete()
    for _ in range(rounds):
        await pilot.pause()
    for _ in range(100):  # a bound, not a timing: each round is one pass of the queue
        await pilot.app.workers.wait_for_complete()  # a handler may have started one
        if not _unsettled(pilot):
            break
        await pilot.pause(0.05)
    # a line rendered before its table measured new rows can stay cached with the old
    # column width (seen: "lates" 1 run in 20): draw every table afresh for the snapshot
    for table in pilot.app.screen.query(DataTable):
        table._clear_caches()
        table.refresh()
    await pilot.pause()


async def type_into(pilot: Pilot, selector: str, text: str) -> None:
    """Focus a field, clear it like a person would (End, Ctrl+U), type ``text``."""
    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    await pilot.pause()
    if widget.value == text:
        return  # already says that: a person would just move on
    await pilot.press("end", "ctrl+u")
    if text:
        await pilot.press(*text)
    await pilot.pause()


async def enter_value(pilot: Pilot, selector: str, text: str, typing: bool = False) -> None:
    """Type ``text`` key by key, or (for speed, when the test is about something else) set it."""
    if typing:
        await type_into(pilot, selector, text)
        return
    widget = pilot.app.screen.query_one(selector, Input)
    widget.focus()
    widget.value = text
    await pilot.pause()


async def activate(pilot: Pilot, selector: str) -> None:
    """Focus a button (scrolled into view) and press Enter."""
    widget = pilot.app.screen.query_one(selector)
    widget.focus()
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


async def next_step(pilot: Pilot) -> None:
    await pilot.click("#next")
    await pilot.pause()
    await pilot.pause()


async def back_step(pilot: Pilot) -> None:
    await pilot.click("#back")
    await pilot.pause()
    await pilot.pause()


async def start_new(pilot: Pilot) -> None:
    await pilot.pause()
    await pilot.click("#new")
    await pilot.pause()
    assert screen_name(pilot) == "HostsScreen"


async def fill_hosts(
    pilot: Pilot,
    address: str = "10.0.0.2",
    domain: str = "reg.example.test",
    ip: str = "10.0.0.2",
    typing: bool = False,
) -> None:
    await enter_value(pilot, "#host-address", address, typing)
    await enter_value(pilot, "#domain", domain, typing)
    await enter_value(pilot, "#ip", ip, typing)


async def fill_certificate(
    pilot: Pilot, country: str = "CN", org: str = "ACME", typing: bool = False
) -> None:
    await enter_value(pilot, "#country", country, typing)
    await enter_value(pilot, "#organization", org, typing)


async def add_user(
    pilot: Pilot,
    name: str = "alice",
    password: str = USER_PASSWORD,
    confirm: str | None = None,
    typing: bool = False,
) -> None:
    """Open Add user, enter name + password twice, press Add (dialog may stay on errors)."""
    await activate(pilot, "#add-user")
    assert screen_name(pilot) == "AddUserDialog"
    await enter_value(pilot, "#user-name", name, typing)
    await enter_value(pilot, "#user-password", password, typing)
    await enter_value(pilot, "#user-confirm", password if confirm is None else confirm, typing)
    await activate(pilot, "#add")
    await settle(pilot)


async def walk_to_review(pilot: Pilot, typing: bool = False) -> None:
    """Welcome -> Hosts -> Certificate -> Storage (one user) -> Review."""
    await start_new(pilot)
    await fill_hosts(pilot, typing=typing)
    await next_step(pilot)
    assert screen_name(pilot) == "CertificateScreen"
    await fill_certificate(pilot, typing=typing)
    await next_step(pilot)
    assert screen_name(pilot) == "StorageScreen"
    await add_user(pilot, typing=typing)
    await next_step(pilot)
    assert screen_name(pilot) == "ReviewScreen"


async def run_from_review(pilot: Pilot) -> None:
    await pilot.click("#next")
    await pilot.pause()
    await pilot.pause()
    assert screen_name(pilot) == "RunScreen"
    await settle(pilot)


async def walk_to_results(pilot: Pilot, typing: bool = False) -> None:
    await walk_to_review(pilot, typing=typing)
    await run_from_review(pilot)
    await pilot.click("#results")
    await pilot.pause()
    await pilot.pause()
    assert screen_name(pilot) == "ResultsScreen"


def screen_text(pilot: Pilot) -> str:
    """Everything visible on the terminal, as plain text lines (what a person sees)."""
    app = pilot.app
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


def screen_svg(pilot: Pilot) -> str:
    """The SVG screenshot, unescaped (every character drawn, as the snapshot sees it)."""
    return html.unescape(pilot.app.export_screenshot()).replace("\xa0", " ")


def widget_text(pilot: Pilot, selector: str) -> str:
    """The plain text a Static/Label currently shows."""
    return str(pilot.app.screen.query_one(selector).render())


def error_text(pilot: Pilot, field_id: str) -> str:
    """The error shown under ``#field_id``, or "" when none is shown."""
    label = pilot.app.screen.query_one(f"#{field_id}-error")
    return str(label.render()) if label.has_class("-shown") else ""
