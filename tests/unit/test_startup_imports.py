"""Short commands import only what they need (issue 15: start-up is most of their time).

Each case runs `python -m regwizard ARGV` in a fresh interpreter and lists the heavy
packages left in sys.modules. HOME is an empty directory: with no ~/.ssh/config,
`plan check` has no SSH config to parse, so paramiko is never needed. No timing here
(bench/bench_startup.py measures it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("paramiko", "docker", "cryptography", "bcrypt", "yaml", "tomlkit", "textual", "rich")

PROBE = (
    "import json, runpy, sys\n"
    "sys.argv = ['regwizard', *json.loads(sys.argv[1])]\n"
    "try:\n"
    "    runpy.run_module('regwizard', run_name='__main__', alter_sys=True)\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    "else:\n"
    "    code = 0\n"
    f"heavy = {HEAVY!r}\n"
    "loaded = sorted({m.split('.')[0] for m in sys.modules} & set(heavy))\n"
    "print('LOADED=' + json.dumps([code, loaded]), file=sys.__stderr__)\n"
)

COMMANDS = ["apply", "adopt", "doctor", "gc", "images", "completion", "plan", "user", "lab"]
COMMANDS += ["serve", "demo"]


def _loaded(home: Path, argv: list[str]) -> tuple[object, list[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGWIZARD_", "SSH_", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    line = next(x for x in out.stderr.splitlines() if x.startswith("LOADED="))
    code, loaded = json.loads(line.removeprefix("LOADED="))
    return code, loaded, out.stdout + out.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty home holding a plan that `plan new` wrote (and no ~/.ssh/config)."""
    home = tmp_path_factory.mktemp("home")
    code, _, err = _loaded(home, ["plan", "new", "-o", str(home / "plan.toml")])
    assert code in (0, None), err
    return home


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        *([cmd, "--help"] for cmd in COMMANDS),
        ["plan", "new", "--help"],
        ["plan", "check", "--help"],
        ["user", "hash", "--help"],
        ["user", "add", "--help"],
        ["images", "rm", "--help"],
        ["completion", "bash"],
        ["completion", "zsh"],
    ],
    ids=" ".join,
)
def test_help_version_and_completion_load_no_heavy_package(home: Path, argv: list[str]) -> None:
    code, loaded, err = _loaded(home, argv)
    assert code in (0, None), err
    assert loaded == [], f"`regwizard {' '.join(argv)}` loaded {loaded}"


def test_plan_check_loads_no_ssh_docker_crypto_or_ui(home: Path) -> None:
    code, loaded, err = _loaded(home, ["plan", "check", str(home / "plan.toml")])
    assert code in (0, None), err
    assert loaded == [], f"`regwizard plan check` loaded {loaded}"


def test_plan_check_still_reads_an_ssh_config(tmp_path: Path) -> None:
    """With a ~/.ssh/config, plan check parses it (through paramiko) and says where a
    host really is: the lazy import changed when paramiko loads, not what is checked."""
    _loaded(tmp_path, ["plan", "new", "-o", str(tmp_path / "plan.toml")])
    (tmp_path / ".ssh").mkdir(mode=0o700)
    (tmp_path / ".ssh" / "config").write_text("Host 10.0.0.2\n  HostName 127.0.0.1\n  Port 2222\n")
    code, loaded, err = _loaded(tmp_path, ["plan", "check", str(tmp_path / "plan.toml")])
    assert code in (0, None), err
    assert "127.0.0.1:2222" in err, err
    assert "paramiko" in loaded


def test_paramiko_loads_without_invoke(tmp_path: Path) -> None:
    """paramiko imports invoke only for `Match exec`, which regwizard never runs: the
    package blocks that import (about a third of paramiko's import time)."""
    probe = (
        "import sys, regwizard, paramiko, paramiko.config\n"
        "print('invoke' in sys.modules and sys.modules['invoke'] is not None, "
        "paramiko.config.invoke)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "None"], out.stdout + out.stderr
