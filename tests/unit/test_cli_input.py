"""Bad input on the command line: one message (cause, then fix) on stderr, exit 2, no
traceback, and nothing connected to. Each case runs ``regwizard.cli.main`` in-process
in a sandbox (tests/unit/sandbox.py) where SSH, sockets, subprocesses, the engine,
doctor, adopt and the lab are fakes or refuse, so a check that failed to stop bad
input shows up as a recorded call (or a SandboxViolation), never as a connection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from regwizard.errors import RegwizardError
from regwizard.plan import dump_plan

from .sandbox import Outcome, Sandbox, loopback_plan
from .test_limits import assert_one_message

PORT_RANGE = "1 to 65535"


@pytest.fixture
def box(tmp_path: Path):  # noqa: ANN201
    with Sandbox(tmp_path) as b:
        yield b


def _plan_file(box: Sandbox, text: str | None = None, name: str = "plan.toml") -> str:
    (box.root / name).write_text(dump_plan(loopback_plan()) if text is None else text)
    return name


def _edited(**changes: str) -> str:
    """The loopback plan's TOML with ``key = value`` lines replaced per section."""
    lines = dump_plan(loopback_plan()).splitlines()
    section = ""
    out = []
    for line in lines:
        if line.startswith("["):
            section = line.strip("[]")
        key = line.split(" = ")[0]
        want = changes.get(f"{section}.{key}")
        out.append(f"{key} = {want}" if want is not None else line)
    return "\n".join(out) + "\n"


def refused(o: Outcome, *words: str) -> None:
    assert o.rc == 2, (o.rc, o.err)
    assert_one_message(o.err, *words)
    assert o.calls == [], f"got past the input checks: {o.calls}"


# ----------------------------------------------------------------- --password-file


def _password_file(box: Sandbox, kind: str) -> str:
    p = box.root / f"pw-{kind}"
    if kind == "latin1":
        p.write_bytes("pässwort\n".encode("latin-1"))
    elif kind == "utf16":
        p.write_bytes("secret-password\n".encode("utf-16"))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "blank-first-line":
        p.write_bytes(b"\nsecret-password\n")
    elif kind == "nul":
        p.write_bytes(b"secret\0password\n")
    elif kind == "huge-line":
        p.write_bytes(b"x" * 100_000)
    elif kind == "directory":
        p.mkdir()
    elif kind == "missing":
        pass
    elif kind == "unreadable":
        p.write_bytes(b"secret-password\n")
        p.chmod(0)
    return p.name


PASSWORD_FILES = {
    "latin1": ("not UTF-8", "byte 0xe4"),
    "utf16": ("not UTF-8", "byte 0xff"),
    "empty": ("is empty",),
    "blank-first-line": ("is empty",),
    "nul": ("NUL",),
    "huge-line": ("over 4096 bytes",),
    "directory": ("is a directory",),
    "missing": ("does not exist",),
    "unreadable": ("not readable", "permission denied"),
}


@pytest.mark.parametrize("command", ["apply", "doctor"])
@pytest.mark.parametrize("kind", sorted(PASSWORD_FILES))
def test_a_bad_password_file_is_one_message(box, monkeypatch, command: str, kind: str) -> None:
    name = _password_file(box, kind)
    if kind == "unreadable" and os.geteuid() == 0:  # root reads a mode-000 file anyway
        real = Path.open

        def no_read(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            if self.name == name:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *a, **kw)

        monkeypatch.setattr(Path, "open", no_read)
    o = box.run([command, _plan_file(box), "--password-file", name])
    refused(o, f"password file {name}", *PASSWORD_FILES[kind])
    assert "--password-file" in o.err or "chmod" in o.err  # the fix


@pytest.mark.parametrize("command", ["apply", "doctor"])
def test_a_good_password_file_is_read(box, command: str) -> None:
    (box.root / "pw").write_bytes("\ufeffsecret-pässword\r\nsecond line\n".encode())
    o = box.run([command, _plan_file(box), "--password-file", "pw"])
    assert o.rc == 0, o.err
    assert o.calls == ["engine.run" if command == "apply" else "doctor.diagnose"]


def test_a_password_file_can_be_a_pipe() -> None:
    """--password-file <(pass show reg): a pipe is read too, its first line only."""
    from regwizard.cli.common import read_verify_password

    r, w = os.pipe()
    os.write(w, b"from-a-pipe\nignored\n")
    os.close(w)
    try:
        assert read_verify_password(f"/dev/fd/{r}", "alice") == "from-a-pipe"
    finally:
        os.close(r)


# ----------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("registry.port", "0", "registry.port"),
        ("registry.port", "65536", "registry.port"),
        ("registry.port", "-1", "registry.port"),
        ("host.port", "0", "host.port"),
        ("host.port", "99999", "host.port"),
        ("clients.port", "65536", "clients[0].port"),
        ("clients.port", "-22", "clients[0].port"),
    ],
)
@pytest.mark.parametrize("command", ["apply", "doctor"])
def test_a_port_out_of_range_in_the_plan(box, command, key, value, named) -> None:
    plan = _plan_file(box, _edited(**{key: value}))
    o = box.run([command, plan, "--password-file", "nowhere"])
    refused(o, f"{named}: Port must be between 1 and 65535")


@pytest.mark.parametrize(
    ("target", "port"),
    [
        ("[::1]:0", "0"),
        ("host:99999", "99999"),
        ("host:-1", "-1"),
        ("root@host:0", "0"),
        ("host:", ""),
        ("host:22a", "22a"),
        ("host:²", "²"),
        ("root@[fd00::2]:65536", "65536"),
        ("host:" + "9" * 5000, "999999999..."),
    ],
)
def test_adopt_refuses_a_port_out_of_range_in_the_target(box, target: str, port: str) -> None:
    o = box.run(["adopt", target])
    refused(o, f"bad SSH port {port!r}", PORT_RANGE, "--port")


@pytest.mark.parametrize("port", ["0", "65536", "-1", "99999", "abc", "2.5", "", "٢٢"])
def test_adopt_port_option_out_of_range_names_the_range(box, port: str) -> None:
    """argparse's own refusal (exit 2) was a usage dump; now one line naming the range."""
    o = box.run(["adopt", "root@host", "--port", port])
    refused(o, "--port", PORT_RANGE)
    assert "usage:" not in o.err


def test_adopt_port_option_wins_over_the_target(box) -> None:
    from regwizard.adopt import parse_target

    assert parse_target("root@host:2222", 22) == ("root", "host", 22)
    o = box.run(["adopt", "root@host:2222", "--port", "2200"])
    assert o.rc == 0 and o.calls == ["adopt.adopt"], o.err


# ----------------------------------------------------------------- domain labels

LONG_LABEL = "a" * 64 + ".example.test"
LONG_NAME = ".".join(["b" * 63] * 4) + ".test"  # 261 characters


@pytest.mark.parametrize("command", ["apply", "doctor"])
@pytest.mark.parametrize(
    ("domain", "words"),
    [(LONG_LABEL, "longer than 63"), (LONG_NAME, "at most 253")],
)
def test_a_long_domain_in_the_plan(box, command, domain, words) -> None:
    plan = _plan_file(box, _edited(**{"registry.domain": f'"{domain}"'}))
    o = box.run([command, plan])
    refused(o, "registry.domain", words)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (f"root@{LONG_LABEL}", "longer than 63"),
        (LONG_NAME, "at most 253"),
        (f"root@{LONG_LABEL}:2222", "longer than 63"),
        ("root@bücher.example.test", "punycode"),
        ("root@a_b.example", "may only use"),
        ("-- -oProxyCommand=touch@x", "SSH user"),
        ("root@fe80::1%eth0", "zone"),
        ("[reg.example.test]:22", "brackets hold an IPv6"),
    ],
)
def test_adopt_refuses_a_host_name_the_plan_would_refuse(box, target: str, words: str) -> None:
    """Before: any text went to hosts.connect (a DNS lookup for a name no plan could hold)."""
    o = box.run(["adopt", *target.split(" ")])
    refused(o, words)


# ----------------------------------------------------------------- doctor on a bad plan


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ({"registry.port": "70000"}, "registry.port"),
        ({"registry.image": '"registry@sha256:abc"'}, "registry.image"),
        ({"certificate.days": "0"}, "certificate.days"),
        ({"users.bcrypt": '"$2b$15$' + "a" * 53 + '"'}, "users[0].bcrypt"),
        ({"host.address": '"10.0.0.2:22"'}, "host.address"),
    ],
)
def test_doctor_on_a_plan_that_fails_validation(box, edit: dict, key: str) -> None:
    """Exit 2, one message naming the bad key, and no connection attempted (doctor's
    diagnose and hosts.connect are never called)."""
    o = box.run(["doctor", _plan_file(box, _edited(**edit))])
    refused(o, key)
    assert o.out == ""


def test_doctor_on_a_valid_plan_does_run(box) -> None:
    o = box.run(["doctor", _plan_file(box)])
    assert o.rc == 0 and o.calls == ["doctor.diagnose"], o.err


# ----------------------------------------------------------------- gc


def test_gc_on_a_plan_that_fails_validation(box) -> None:
    o = box.run(["gc", _plan_file(box, _edited(**{"registry.port": "70000"}))])
    refused(o, "registry.port")
    assert o.out == ""


def test_gc_on_a_valid_plan_runs_and_reports(box) -> None:
    o = box.run(["gc", _plan_file(box)])
    assert o.rc == 0 and o.calls == ["gc.collect"], o.err
    assert "freed:          2.0 MiB" in o.err


def test_gc_json(box) -> None:
    import json

    o = box.run(["gc", _plan_file(box), "--dry-run", "--delete-untagged", "--json"])
    assert o.rc == 0, o.err
    doc = json.loads(o.out)
    assert doc["dry_run"] and doc["delete_untagged"] and doc["blobs"] == 2
    assert doc["bytes_freed"] is None and doc["failure"] is None


# ----------------------------------------------------------------- other front-end input


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["apply", "missing.toml"], ("not found", "plan new -o")),
        (["apply", "~nobody-here/p.toml"], ("not found",)),
        (["apply", "."], ("is a directory",)),
        (["doctor", "missing.toml"], ("not found",)),
        (["gc", "missing.toml"], ("not found",)),
        (["gc"], ("plan", "regwizard gc --help")),
        (["gc", "p.toml", "--lock-wait", "nan"], ("--lock-wait", "0 to 86400")),
        (["gc", "p.toml", "--delete-untagged=yes"], ("--delete-untagged",)),
        (["plan", "new", "-o", "no-such-dir/p.toml"], ("does not exist", "existing directory")),
        (["plan", "new", "-o", "n" * 300], ("File name too long", "-o path")),
        (["plan", "new", "-o", "."], ("is a directory",)),
        (["lab", "up", "-o", "."], ("is a directory",)),
        (["lab", "up", "-o", "p.toml/x.toml"], ("not a directory",)),
        (["adopt", "root@h", "-o", "."], ("is a directory",)),
        (["adopt", "root@h", "-o", "no-such-dir/p.toml"], ("does not exist",)),
        (["plan"], ("ACTION", "regwizard plan --help")),
        (["lab"], ("ACTION",)),
        (["apply", "p.toml", "--lock-wait", "nan"], ("--lock-wait", "0 to 86400")),
        (["apply", "p.toml", "--lock-wait", "-5"], ("--lock-wait",)),
        (["lab", "clients", "-1"], ("N", "0 or more")),
        (["nonsense"], ("invalid choice",)),
        (["apply", "p.toml", "--bogus\n\x1b[31m"], ("unrecognized arguments", "\\n")),
    ],
)
def test_other_bad_command_lines_are_one_message(box, argv: list[str], words) -> None:
    _plan_file(box, name="p.toml")
    o = box.run(argv)
    refused(o, *words)


def test_plan_new_refuses_to_overwrite(box) -> None:
    assert box.run(["plan", "new", "-o", "p.toml"]).rc == 0
    assert (box.root / "p.toml").stat().st_mode & 0o777 == 0o600
    refused(box.run(["plan", "new", "-o", "p.toml"]), "already exists")


@pytest.mark.parametrize(
    ("stdin", "words"),
    [
        (b"\xff\xfe secret\n", ("not UTF-8", "byte 0xff")),
        (b"", ("password for alice", "empty")),
        (b"short\n", ("at least 8",)),
        (b"a-long-password\0x\n", ("NUL",)),
        (b"y" * 10_000, ("over 4096 bytes",)),
    ],
)
def test_user_hash_refuses_bad_stdin(box, stdin: bytes, words) -> None:
    refused(box.run(["user", "hash", "alice"], stdin=stdin), *words)


def test_user_hash_end_of_input_at_the_prompt(box, monkeypatch) -> None:
    """Ctrl-D at getpass's prompt raised EOFError with a traceback."""

    def eof(prompt: str = "", stream=None) -> str:  # noqa: ANN001
        raise EOFError

    monkeypatch.setattr("getpass.getpass", eof)
    refused(box.run(["user", "hash", "alice"], tty=True), "end of input")


def test_user_hash_with_no_stdin_at_all(box, monkeypatch) -> None:
    from regwizard.cli.plans import user_hash

    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(RegwizardError, match="stdin is closed"):
        user_hash(type("A", (), {"name": "alice", "cost": 4})())


# ----------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["images", "rm", "p.toml", "app"], ("names no tag", "REPO:TAG")),
        (["images", "rm", "p.toml", "App:1", "--yes"], ("not a repository name",)),
        (["images", "rm", "p.toml", "app:bad/tag", "--yes"], ("names no tag",)),
        (["images", "rm", "p.toml", "app@sha256:abc", "--yes"], ("names no tag",)),
        (["images", "rm", "p.toml"], ("REPO:TAG", "images rm --help")),
        (["images", "rm", "missing.toml", "app:1", "--yes"], ("not found",)),
        (["images", "p.toml", "--repo", "../x"], ("--repo", "not a repository name")),
        (["images", "missing.toml"], ("not found",)),
    ],
)
def test_images_bad_input_is_one_message(box, argv: list[str], words) -> None:
    _plan_file(box, name="p.toml")
    refused(box.run(argv), *words)


def test_images_rm_refuses_without_a_terminal_or_yes(box) -> None:
    _plan_file(box, name="p.toml")
    refused(box.run(["images", "rm", "p.toml", "app:1"]), "not a terminal", "--yes")


def test_images_lists_and_rm_deletes_through_the_api(box, monkeypatch) -> None:
    import json

    _plan_file(box, name="p.toml")
    monkeypatch.setenv("REGWIZARD_PASSWORD", "a-long-password")
    o = box.run(["images", "p.toml", "--json"])
    assert o.rc == 0, o.err
    doc = json.loads(o.out)
    assert [(i["repository"], i["tag"], i["size"]) for i in doc["images"]] == [("app", "1", 12)]
    o = box.run(["images", "p.toml"])
    assert o.rc == 0 and "app" in o.out and "12 B" in o.out
    o = box.run(["images", "rm", "p.toml", "reg.example.test/app:1", "--yes"])
    assert o.rc == 0, o.err
    assert "DELETE /v2/app/manifests/sha256:" + "ab" * 32 in o.calls
