"""The one connect / host-key flow (screens/connection.py ConnectFlow), on every screen
that connects: Hosts' "Test connection" for the registry host, Hosts' "Test" for a
client, and Repair's "Find registry". Each case runs on all three."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from textual.widgets import DataTable, Static

import regwizard.screens.connection as connection

from .conftest import SIZE, make_app
from .fakes import FINGERPRINT, FakeBackend
from .walk import activate, enter_value, fill_hosts, next_step, screen_name, settle, start_new

CLIENT = "10.0.0.3"


@dataclass
class Target:
    """One way of connecting: how to start it and where its outcome shows."""

    name: str
    mode_field: str  # the FakeBackend knob for this call: probe_mode / adopt_mode
    home: str  # the screen that connects
    status_id: str  # the status line the flow writes to

    def backend(self, mode: str) -> FakeBackend:
        return FakeBackend(**{self.mode_field: mode})

    def calls(self, backend: FakeBackend) -> list[set[str]]:
        """The accepted host keys each backend call was given, in order."""
        if self.name == "repair":
            return [keys for _conn, _container, keys in backend.adopt_calls]
        return [keys for conn, keys in backend.probe_calls if not conn.is_local]

    async def start(self, pilot) -> None:
        if self.name == "repair":
            await pilot.pause()
            await activate(pilot, "#repair")
            await enter_value(pilot, "#host-address", "10.0.0.2")
            await next_step(pilot)
        else:
            await start_new(pilot)
            await fill_hosts(pilot)
            if self.name == "host":
                await activate(pilot, "#test-host")
            else:
                await activate(pilot, "#add-client")
                await enter_value(pilot, "#client-address", CLIENT)
                await activate(pilot, "#add")
                assert screen_name(pilot) == "HostsScreen"
                await activate(pilot, "#test-client")  # the new client is selected
        await settle(pilot)

    def status(self, pilot) -> Static:
        """The status line (on the connecting screen, also under a dialog)."""
        screen = next(s for s in pilot.app.screen_stack if type(s).__name__ == self.home)
        return screen.query_one(f"#{self.status_id}", Static)

    def client_cell(self, pilot) -> str:
        table = pilot.app.screen.query_one("#clients", DataTable)
        return str(table.get_row_at(1)[3])


TARGETS = [
    Target("host", "probe_mode", "HostsScreen", "host-facts"),
    Target("client", "probe_mode", "HostsScreen", "client-facts"),
    Target("repair", "adopt_mode", "RepairConnectScreen", "adopt-status"),
]
EACH = pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])


@pytest.fixture
def dialogs(monkeypatch) -> list[Any]:
    """Every HostKeyDialog the flow opens: (host, fingerprint, key type)."""
    opened: list[Any] = []
    real = connection.HostKeyDialog

    class HostKeyDialog(real):  # same name: the screen looks the same to the tests
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            opened.append(args)

    monkeypatch.setattr(connection, "HostKeyDialog", HostKeyDialog)
    return opened


def text_of(widget: Static) -> str:
    return str(widget.render())


@EACH
async def test_unknown_key_trusted_is_accepted_pinned_and_retried(target, dialogs):
    backend = target.backend("unknown-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await target.start(pilot)
        assert screen_name(pilot) == "HostKeyDialog"
        assert dialogs == [("10.0.0.2" if target.name != "client" else CLIENT, FINGERPRINT,
                            "ssh-ed25519")]  # fmt: skip
        assert pilot.app.focused.id == "cancel"  # the safe answer has the focus
        waiting = target.status(pilot)
        assert text_of(waiting) == connection.WAITING_FOR_KEY and waiting.has_class("-pending")
        await pilot.click("#trust")
        await settle(pilot)
        assert app.state.secrets.accepted_host_keys == {FINGERPRINT}
        calls = target.calls(backend)
        assert len(calls) == 2  # retried once, with the key accepted
        assert FINGERPRINT not in calls[0] and FINGERPRINT in calls[1]
        assert len(dialogs) == 1
        if target.name == "repair":
            assert screen_name(pilot) == "DiscoveredScreen"
            assert app.state.plan.host.host_key == FINGERPRINT  # pinned in the plan
            assert app.state.repair is not None
        else:
            assert screen_name(pilot) == "HostsScreen"
            status = target.status(pilot)
            assert text_of(status).startswith("✓ Connected") and status.has_class("-ok")
            if target.name == "host":
                assert app.state.host_facts is not None
            else:
                assert target.client_cell(pilot).startswith("✓ Debian")
                assert CLIENT in app.state.client_facts


@EACH
async def test_unknown_key_cancelled_accepts_and_pins_nothing(target, dialogs):
    backend = target.backend("unknown-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await target.start(pilot)
        assert screen_name(pilot) == "HostKeyDialog"
        await pilot.click("#cancel")
        await settle(pilot)
        assert screen_name(pilot) == target.home
        assert app.state.secrets.accepted_host_keys == set()
        assert app.state.plan.host.host_key == ""
        assert len(target.calls(backend)) == 1  # not retried
        status = target.status(pilot)
        assert "not trusted; not connected" in text_of(status) and status.has_class("-error")
        if target.name == "repair":
            assert app.state.repair is None
        elif target.name == "client":
            assert target.client_cell(pilot) == "✗ key not trusted"
            assert app.state.client_facts == {}
        else:
            assert app.state.host_facts is None


@EACH
async def test_changed_key_is_refused_without_a_dialog(target, dialogs):
    backend = target.backend("changed-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await target.start(pilot)
        assert screen_name(pilot) == target.home
        assert dialogs == []  # nothing to click through
        assert app.state.secrets.accepted_host_keys == set()
        assert len(target.calls(backend)) == 1
        status = target.status(pilot)
        text = text_of(status)
        assert text.startswith(connection.KEY_CHANGED) and status.has_class("-error")
        assert FINGERPRINT in text  # the cause names the keys
        if target.name == "repair":
            assert app.state.repair is None
        elif target.name == "client":
            assert target.client_cell(pilot) == "✗ KeyChanged"
        else:
            assert app.state.host_facts is None


@EACH
async def test_other_errors_show_cause_and_fix(target, dialogs):
    backend = target.backend("error")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await target.start(pilot)
        assert screen_name(pilot) == target.home
        assert dialogs == []
        status = target.status(pilot)
        text = text_of(status)
        assert text.startswith("✗ ") and "\n  Fix: " in text and status.has_class("-error")
        if target.name == "client":
            assert target.client_cell(pilot) == "✗ RegwizardError"
