"""The connection form reads ~/.ssh/config: a hint under Address and pre-filled fields.

Offline: HOME is a temp dir holding only the config written here; nothing connects.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from .conftest import SIZE, make_app
from .walk import next_step, screen_name, settle, start_new, type_into

CONFIG = """\
Host regbox
  HostName 10.0.0.2
  User deploy
  Port 2222
  IdentityFile ~/.ssh/regbox_key
  ProxyJump admin@bastion.lan

Host *.example.test
  Port 2200
"""


@pytest.fixture(autouse=True)
def ssh_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(CONFIG)
    monkeypatch.setenv("HOME", str(home))
    return home


def value(pilot, selector: str) -> str:
    return pilot.app.screen.query_one(selector, Input).value


def hint(pilot) -> Static:
    return pilot.app.screen.query_one("#host-ssh-hint", Static)


async def test_alias_shows_where_it_goes_and_fills_the_login(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await settle(pilot)
        assert not hint(pilot).display  # nothing to say for the default address
        await type_into(pilot, "#host-address", "regbox")
        await settle(pilot)
        assert hint(pilot).display
        assert str(hint(pilot).render()) == (
            "~/.ssh/config: deploy@10.0.0.2:2222 through admin@bastion.lan"
        )
        assert value(pilot, "#host-user") == "deploy"
        assert value(pilot, "#host-port") == "2222"
        assert value(pilot, "#host-key-file") == "~/.ssh/regbox_key"
        # an address the config does not change: the hint goes, the defaults come back
        await type_into(pilot, "#host-address", "10.0.0.9")
        await settle(pilot)
        assert not hint(pilot).display
        assert (value(pilot, "#host-user"), value(pilot, "#host-port")) == ("root", "22")
        assert value(pilot, "#host-key-file") == "~/.ssh/id_ed25519"


async def test_what_the_person_typed_is_kept(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await type_into(pilot, "#host-user", "admin")
        await type_into(pilot, "#host-address", "node.example.test")
        await settle(pilot)
        assert str(hint(pilot).render()) == "~/.ssh/config: admin@node.example.test:2200"
        assert value(pilot, "#host-user") == "admin"  # typed: kept
        assert value(pilot, "#host-port") == "2200"  # the default: the config's instead
        await type_into(pilot, "#host-port", "2201")
        assert str(hint(pilot).render()) == "~/.ssh/config: admin@node.example.test:2201"
        # the alias is a valid address: Next is not refused for it
        await type_into(pilot, "#domain", "reg.example.test")
        await type_into(pilot, "#ip", "10.0.0.2")
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        assert app.state.plan.host.address == "node.example.test"
        assert app.state.plan.host.port == 2201


async def test_broken_config_is_a_hint_not_a_crash(backend, ssh_home):
    (ssh_home / ".ssh" / "config").write_text("Host regbox\n  Port lots\n")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await type_into(pilot, "#host-address", "regbox")
        await settle(pilot)
        text = str(hint(pilot).render())
        assert text.startswith("✗ ") and "Port 'lots'" in text
        assert value(pilot, "#host-port") == "22"
