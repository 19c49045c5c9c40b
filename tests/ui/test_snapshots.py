"""Snapshot tests (pytest-textual-snapshot): every screen at 80x24 and 120x40.

Deterministic by construction: the fake backend returns fixed facts, seconds and
digests; cursors do not blink (``cursor_blink=False``); the progress bar has no ETA;
bcrypt hashes are shown only as their ``$2b$04$…`` prefix.

Update the baselines with ``.venv/bin/pytest tests/ui --snapshot-update``.
"""

from __future__ import annotations

import pytest
from textual.widgets import Collapsible, Input, Select

from .conftest import SIZE, WIDE, make_app
from .fakes import FakeBackend
from .walk import (
    OTHER_PASSWORD,
    activate,
    add_user,
    enter_value,
    fill_hosts,
    next_step,
    run_from_review,
    settle,
    start_new,
    walk_to_results,
    walk_to_review,
)

SIZES = pytest.mark.parametrize("size", [SIZE, WIDE], ids=["80x24", "120x40"])


async def on_hosts(pilot) -> None:
    await start_new(pilot)
    await fill_hosts(pilot)
    pilot.app.screen.query_one("#host-address", Input).focus()
    await pilot.pause()


async def on_certificate(pilot) -> None:
    await on_hosts(pilot)
    await next_step(pilot)
    await enter_value(pilot, "#organization", "ACME")
    pilot.app.screen.query_one("#country", Input).focus()
    await pilot.pause()


async def on_certificate_invalid(pilot) -> None:
    await on_certificate(pilot)
    await enter_value(pilot, "#country", "C")
    await enter_value(pilot, "#days", "0")
    await enter_value(pilot, "#email", "someone@")
    await next_step(pilot)  # stays, every error shown
    pilot.app.screen.query_one("#country", Input).focus()
    await pilot.pause()


async def on_storage(pilot) -> None:
    await on_certificate(pilot)
    await next_step(pilot)
    await add_user(pilot, "alice")
    await add_user(pilot, "bob", password=OTHER_PASSWORD)
    pilot.app.screen.query_one("#storage-path", Input).focus()
    await pilot.pause()


async def on_storage_advanced(pilot) -> None:
    await on_storage(pilot)
    pilot.app.screen.query_one("#advanced", Collapsible).collapsed = False
    await pilot.pause()
    await enter_value(pilot, "#container", "bad name")
    await pilot.pause()


async def on_review(pilot) -> None:
    await walk_to_review(pilot)


async def on_run_done(pilot) -> None:
    await walk_to_review(pilot)
    await run_from_review(pilot)


async def on_results(pilot) -> None:
    await walk_to_results(pilot)


# -- screens, both sizes ----------------------------------------------------------------------


@SIZES
def test_welcome(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size)


@SIZES
def test_hosts(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_hosts)


@SIZES
def test_certificate_valid(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_certificate)


@SIZES
def test_certificate_invalid(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_certificate_invalid)


@SIZES
def test_storage(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_storage)


@SIZES
def test_review(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_review)


@SIZES
def test_run_succeeded(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_run_done)


@SIZES
def test_run_failed(snap_compare, size):
    app = make_app(FakeBackend(run_modes=["fail"]))
    assert snap_compare(app, terminal_size=size, run_before=on_run_done)


@SIZES
def test_results(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=on_results)


# -- states and dialogs at 80x24 --------------------------------------------------------------


def test_hosts_tested(snap_compare):
    async def run_before(pilot) -> None:
        await on_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_hosts_changed_key(snap_compare):
    async def run_before(pilot) -> None:
        await on_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)

    app = make_app(FakeBackend(probe_mode="changed-key"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_host_key_dialog(snap_compare):
    async def run_before(pilot) -> None:
        await on_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)

    app = make_app(FakeBackend(probe_mode="unknown-key"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_add_client_dialog(snap_compare):
    async def run_before(pilot) -> None:
        await on_hosts(pilot)
        await activate(pilot, "#add-client")
        pilot.app.screen.query_one("#client-auth", Select).value = "password"
        await enter_value(pilot, "#client-address", "root@node2")
        await activate(pilot, "#add")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_add_user_dialog_errors(snap_compare):
    async def run_before(pilot) -> None:
        await on_certificate(pilot)
        await next_step(pilot)
        await add_user(pilot, name="Bad:Name", password="Alice-pw-473", confirm="Alice-pw-47")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_storage_advanced(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=on_storage_advanced)


def test_ascii_borders(snap_compare):
    """TERM=linux: the Linux console has no box-drawing glyphs."""
    app = make_app(ascii_borders=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=on_hosts)
