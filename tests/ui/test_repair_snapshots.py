"""Snapshot tests of the Repair flow (pytest-textual-snapshot), deterministic like the rest:
fixed fake findings, no cursor blink, no animation.

Update these baselines with ``.venv/bin/pytest tests/ui/test_repair_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from textual.widgets import Input

from .conftest import SIZE, WIDE, make_app
from .walk import activate, enter_value, next_step, screen_name, settle


async def on_connect(pilot) -> None:
    await pilot.pause()
    await activate(pilot, "#repair")
    await enter_value(pilot, "#host-address", "10.0.0.2")
    pilot.app.screen.query_one("#host-address", Input).focus()
    await pilot.pause()


async def on_findings(pilot) -> None:
    await on_connect(pilot)
    await next_step(pilot)
    for _ in range(50):  # the adopt worker's result lands a message later; a busy machine is slower
        await settle(pilot)
        if screen_name(pilot) == "DiscoveredScreen":
            break
    await pilot.press("down")  # the storage finding: evidence with literal markup
    await settle(pilot)


def test_repair_connect(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=on_connect)


def test_repair_findings(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=on_findings)


def test_repair_findings_wide(snap_compare):
    assert snap_compare(make_app(), terminal_size=WIDE, run_before=on_findings)
