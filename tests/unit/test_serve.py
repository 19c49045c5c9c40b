"""`regwizard serve` without a browser: its argument checks, the warning for an address
beyond loopback, and the command line textual-serve runs per session. The web server
itself is the sandbox's fake (tests/ui/test_serve_browser.py runs the real one)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from regwizard.cli.serve import check_host, is_loopback, url_for, wizard_command
from regwizard.errors import RegwizardError
from regwizard.plan import dump_plan

from .sandbox import Sandbox, loopback_plan


@pytest.fixture
def box(tmp_path: Path):  # noqa: ANN201
    with Sandbox(tmp_path) as b:
        yield b


def _served(box: Sandbox) -> list[str]:
    return [c for c in box.calls if c.startswith("serve ")]


def test_serves_on_loopback_by_default_without_a_warning(box: Sandbox) -> None:
    o = box.run(["serve"])
    assert o.rc == 0, o.err
    assert _served(box) == [f"serve 127.0.0.1 8000 http://127.0.0.1:8000 {wizard_command(None)}"], (
        box.calls
    )
    assert "http://127.0.0.1:8000/" in o.err
    assert "warning" not in o.err and "plain HTTP" not in o.err


@pytest.mark.parametrize("port", ["0", "65536", "-1", "x", "80.5", ""])
def test_a_port_outside_1_to_65535_is_refused(box: Sandbox, port: str) -> None:
    o = box.run(["serve", "--port", port])
    assert o.rc == 2 and "Traceback" not in o.err, o.err
    assert "1 to 65535" in o.err and "fix:" in o.err
    assert _served(box) == []


def test_a_missing_plan_is_refused(box: Sandbox) -> None:
    o = box.run(["serve", "nowhere.toml"])
    assert o.rc == 2 and "not found" in o.err and "fix:" in o.err, o.err
    assert _served(box) == []


def test_a_plan_that_does_not_parse_is_refused(box: Sandbox) -> None:
    (box.root / "bad.toml").write_text('[registry]\nport = 99999\ndomain = "x"\n')
    o = box.run(["serve", "bad.toml"])
    assert o.rc == 2 and "fix:" in o.err and "Traceback" not in o.err, o.err
    assert _served(box) == []


def test_a_plan_not_named_toml_is_refused(box: Sandbox) -> None:
    (box.root / "plan.txt").write_text(dump_plan(loopback_plan()))
    o = box.run(["serve", "plan.txt"])
    assert o.rc == 2 and ".toml" in o.err and "fix:" in o.err, o.err


def test_a_plan_is_passed_absolute_and_quoted(box: Sandbox) -> None:
    d = box.root / "my plans"
    d.mkdir()
    (d / "it's here.toml").write_text(dump_plan(loopback_plan()))
    o = box.run(["serve", "--port", "8123", "my plans/it's here.toml"])
    assert o.rc == 0, o.err
    (call,) = _served(box)
    command = call.split(" ", 4)[4]
    assert command == wizard_command(d / "it's here.toml")
    words = shlex.split(command)
    assert words[0] == "exec" and words[2:] == ["-m", "regwizard", str(d / "it's here.toml")]


def test_wizard_command_quotes_every_word() -> None:
    cmd = wizard_command(Path("/srv/class room/plan $(x).toml"), python="/opt/my py/bin/python")
    assert shlex.split(cmd) == [
        "exec",
        "/opt/my py/bin/python",
        "-m",
        "regwizard",
        "/srv/class room/plan $(x).toml",
    ]
    assert shlex.split(wizard_command(None, python="/usr/bin/python3")) == [
        "exec",
        "/usr/bin/python3",
        "-m",
        "regwizard",
    ]


@pytest.mark.parametrize("host", ["10.0.0.5", "192.168.1.20", "fd00::5", "lab-vm.example.test"])
def test_an_address_beyond_loopback_warns_and_still_serves(box: Sandbox, host: str) -> None:
    o = box.run(["serve", "--host", host, "--port", "8001"])
    assert o.rc == 0, o.err
    assert len(_served(box)) == 1
    assert "warning" in o.err and "plain HTTP" in o.err
    for secret in ("SSH", "sudo", "registry passwords"):
        assert secret in o.err
    assert "ssh -L 8001:127.0.0.1:8001" in o.err  # the safe alternative, named
    assert o.err.index("warning") < o.err.index("served at")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_addresses_do_not_warn(box: Sandbox, host: str) -> None:
    o = box.run(["serve", "--host", host])
    assert o.rc == 0 and "warning" not in o.err, o.err


def test_every_address_needs_a_public_url(box: Sandbox) -> None:
    o = box.run(["serve", "--host", "0.0.0.0"])
    assert o.rc == 2 and "--public-url" in o.err and "fix:" in o.err, o.err
    assert _served(box) == []
    o = box.run(["serve", "--host", "0.0.0.0", "--public-url", "http://10.0.0.5:8000/"])
    assert o.rc == 0 and "plain HTTP" in o.err, o.err
    assert _served(box) == [f"serve 0.0.0.0 8000 http://10.0.0.5:8000 {wizard_command(None)}"]


@pytest.mark.parametrize("url", ["10.0.0.5:8000", "ftp://x", "http://a b", ""])
def test_a_public_url_that_is_not_one_is_refused(box: Sandbox, url: str) -> None:
    o = box.run(["serve", "--public-url", url])
    assert o.rc == 2 and "fix:" in o.err, o.err


@pytest.mark.parametrize("host", ["root@10.0.0.5", "a b", "x/24", "-x", "exa_mple", "ü"])
def test_a_host_that_is_no_address_is_refused(host: str) -> None:
    with pytest.raises(RegwizardError, match="not an address"):
        check_host(host)


def test_addresses() -> None:
    assert check_host("[::1]") == "::1" and check_host(" 10.0.0.5 ") == "10.0.0.5"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("10.0.0.5") and not is_loopback("0.0.0.0") and not is_loopback("::")
    assert url_for("::1", 8000) == "http://[::1]:8000"
    assert url_for("127.0.0.1", 80) == "http://127.0.0.1:80"


def test_a_port_in_use_is_one_clear_message(box: Sandbox, monkeypatch) -> None:  # noqa: ANN001
    import errno

    import regwizard.cli.serve as serve

    def busy(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(serve, "run_server", busy)
    o = box.run(["serve", "--port", "8000"])
    assert o.rc == 2 and "Address already in use" in o.err and "another --port" in o.err, o.err
    assert "served at" not in o.err


def test_a_signal_ends_it_with_128_plus_the_signal(box: Sandbox, monkeypatch) -> None:  # noqa: ANN001
    import signal

    import regwizard.cli.serve as serve

    monkeypatch.setattr(serve, "run_server", lambda *a: int(signal.SIGINT))
    o = box.run(["serve"])
    assert o.rc == 130 and "stopped" in o.err and "Traceback" not in o.err, o.err


def test_the_web_server_is_imported_only_when_serving() -> None:
    """textual-serve pulls in aiohttp, jinja2 and rich: `serve --help` and every other
    command must not pay for them."""
    import subprocess
    import sys

    code = (
        "import sys, regwizard.cli.serve, regwizard.cli.main, regwizard.cli.parser\n"
        "regwizard.cli.parser.parser()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'aiohttp', 'textual_serve', 'jinja2', 'rich', 'textual'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
