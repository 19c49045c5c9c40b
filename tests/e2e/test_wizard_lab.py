"""The wizard against the real engine on the lab: typed by a user, Welcome to Results."""

from __future__ import annotations

import pytest

from regwizard import lab as labmod
from regwizard.app import RegwizardApp
from regwizard.backend import EngineBackend
from tests.ui.walk import (
    activate,
    add_user,
    next_step,
    screen_name,
    screen_text,
    settle,
    start_new,
    type_into,
)

pytestmark = pytest.mark.lab


async def test_walk_every_screen_to_a_verified_registry(lab, tmp_path, monkeypatch):
    # an empty ~/.ssh: node1's host key is unknown and must be shown and confirmed
    monkeypatch.setenv("HOME", str(tmp_path))
    node1 = lab.nodes["node1"]
    app = RegwizardApp(backend=EngineBackend(), cursor_blink=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_new(pilot)
        await type_into(pilot, "#host-address", node1.ip)
        await type_into(pilot, "#host-key-file", lab.key_file)
        await type_into(pilot, "#domain", labmod.DOMAIN)
        await type_into(pilot, "#ip", node1.ip)
        await activate(pilot, "#test-host")
        await settle(pilot)
        assert screen_name(pilot) == "HostKeyDialog"
        assert node1.host_key in screen_text(pilot)
        await activate(pilot, "#trust")
        await settle(pilot)
        await settle(pilot)
        assert screen_name(pilot) == "HostsScreen"
        facts = screen_text(pilot)
        assert "Docker" in facts and "x86_64" in facts, facts
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        await type_into(pilot, "#country", "CN")
        await type_into(pilot, "#state", "JS")
        await type_into(pilot, "#organization", "ITMUCH")
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        await add_user(pilot, name="wizard", password=lab.verify_password, typing=True)
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert lab.verify_password not in screen_text(pilot)
        await next_step(pilot)
        assert screen_name(pilot) == "RunScreen"
        for _ in range(120):  # the real run: a few seconds
            await settle(pilot)
            if app.state.result is not None:
                break
        result = app.state.result
        assert result is not None and result.ok, result and result.failure
        await pilot.click("#results")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "ResultsScreen"
        text = screen_text(pilot)
        assert "wizard" in text and result.verification.push_digest[:19] in text
        assert lab.verify_password not in text
    assert result.verification.login_ok and result.verification.anonymous_refused
    assert (tmp_path / ".ssh" / "known_hosts").read_text().startswith(node1.ip)
