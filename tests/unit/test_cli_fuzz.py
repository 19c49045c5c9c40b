"""Fuzz every command line: argv built from the real grammar plus junk never tracebacks.

The argv comes from walking ``cli.parser.parser()`` (every subparser and action), so a
new command or option is fuzzed without touching this file. Each example runs
``regwizard.cli.main`` in the sandbox (tests/unit/sandbox.py): the engine, doctor,
adopt, the lab and the wizard are recording fakes; SSH, sockets, name lookups,
subprocesses and writes outside the example's directory raise SandboxViolation (a
BaseException: the test fails, nothing is touched). Plan files are valid (loopback
only), hypothesis-mutated TOML, random bytes or not UTF-8.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard.cli.parser import parser
from regwizard.errors import RegwizardError
from regwizard.plan import dump_plan

from .sandbox import Sandbox, loopback_plan

# ------------------------------------------------------------------ the grammar


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # subcommand names from the top, e.g. ("lab", "clients")
    positionals: tuple[argparse.Action, ...]
    optionals: tuple[argparse.Action, ...]


def commands(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    """Every parser in the tree, leaves and inner ones (an inner one lacks its ACTION)."""
    out = []
    pos, opt = [], []
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                out += commands(sub, (*path, name))
        elif a.option_strings:
            opt.append(a)
        else:
            pos.append(a)
    return [Command(path, tuple(pos), tuple(opt)), *out]


COMMANDS = commands(parser())
ALL_OPTIONS = sorted({s for c in COMMANDS for a in c.optionals for s in a.option_strings})


def test_the_grammar_walk_sees_every_command() -> None:
    paths = {c.path for c in COMMANDS}
    for want in [("apply",), ("adopt",), ("doctor",), ("plan", "new"), ("user", "hash")]:
        assert want in paths
    assert ("lab", "clients") in paths and ("demo",) in paths


# ------------------------------------------------------------------ values

FILES = [
    "valid.toml",
    "mutated.toml",
    "bytes.toml",
    "latin1.toml",
    "empty.toml",
    "dir.toml",
    "missing.toml",
    "no-dir/x.toml",
    "pw",
    "pw-bytes",
    "pw-empty",
    "~/x.toml",
    "valid.toml/x.toml",
    "n" * 300,
    "\udcff.toml",  # a name that is not UTF-8: its bytes reach Python as surrogates
    "",
    "-",
]
SURROGATES = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)  # undecodable argv bytes


def _safe(token: str) -> str:
    """Nothing in argv may name a place outside the example's directory."""
    token = token.replace("\0", "").replace("/", "_").replace("..", "__")
    return "_" + token[1:] if token.startswith("~") else token


JUNK = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\0") | SURROGATES,
        max_size=24,
    ).map(_safe),
    st.sampled_from(["-", "--", "-o", "--help", "=", "@", ":", "[", "]", "%", "-1", "1e999"]),
    st.sampled_from(ALL_OPTIONS),
)
NUMBERS = st.one_of(
    st.integers(-3, 70_000).map(str),
    st.sampled_from(["0", "1", "4", "5", "10", "14", "15", "31", "32", "33", "65535", "65536"]),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "0.5", "٣", "²", "0x10", " 7 ", "9" * 40]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
_label = st.sampled_from(["node1", "reg", "a" * 63, "a" * 64, "xn--bcher-kva", "-x", "a_b", "ü"])
HOSTS = st.one_of(
    st.sampled_from(["local", "127.0.0.1", "::1", "[::1]", "[::1]:22", "[::1]:0", "[x]:22"]),
    st.lists(_label, min_size=1, max_size=5).map(".".join),
)
GOOD_TARGETS = st.sampled_from(
    ["local", "root@local", "127.0.0.1", "root@127.0.0.1:22", "admin@[::1]:2222", "node1.test"]
)
BAD_TARGETS = st.tuples(
    st.sampled_from(["", "root@", "admin@", "@", "-oProxyCommand=x@", "a@b@"]),
    HOSTS,
    st.sampled_from(["", ":22", ":0", ":65536", ":-1", ":", ":x", ":²", ":" + "9" * 30]),
).map("".join)
TARGETS = st.one_of(GOOD_TARGETS, BAD_TARGETS)
NAMES = st.one_of(
    st.sampled_from(["alice", "testuser", "_svc", "Alice", "a:b", "a" * 33, "1x", "ü"]),
    st.from_regex(r"[a-z_][a-z0-9_.-]{0,31}", fullmatch=True),
)
KEYS = st.one_of(
    st.just("SHA256:" + "A" * 43), st.text("SHA256:+/=abcXYZ019", max_size=60).map(_safe)
)


def values(action: argparse.Action, clean: bool = False) -> st.SearchStrategy[str]:
    """Plausible values for an action (from its type, choices and dest), or junk."""
    dest = action.dest
    if action.choices:
        good = st.sampled_from([str(c) for c in action.choices])
    elif action.type is not None:
        good = NUMBERS
    elif any(w in dest for w in ("plan", "output", "file", "path")):
        usual = {"plan": ["valid.toml", "\udcfe-valid.toml"], "password_file": ["pw"]}.get(
            dest, ["new.toml", "\udcfd-new.toml"]
        )
        files = st.sampled_from(FILES)
        good = st.sampled_from(usual) | files if clean else files
    elif "host_key" in dest:
        good = KEYS
    elif clean:  # an untyped text argument: what a person would type there
        good = st.one_of(GOOD_TARGETS, NAMES)
    else:
        good = st.one_of(TARGETS, NAMES, st.sampled_from(FILES))
    return good if clean else st.one_of(good, good, good, JUNK)


@st.composite
def argvs(draw) -> list[str]:  # noqa: ANN001
    cmd = draw(st.sampled_from(COMMANDS))
    clean = draw(st.booleans())  # half the lines are well-formed: they reach the fakes
    argv = list(cmd.path)
    for a in cmd.positionals:
        if clean or draw(st.integers(0, 9)):  # mostly present
            argv.append(draw(values(a, clean)))
    options = [a for a in cmd.optionals if not isinstance(a, argparse._HelpAction)]
    for a in draw(st.lists(st.sampled_from(options), max_size=4)) if options else []:
        flag = draw(st.sampled_from(a.option_strings))
        if a.nargs == 0:
            argv.insert(draw(st.integers(len(cmd.path), len(argv))), flag)
        elif flag.startswith("--") and draw(st.booleans()):
            argv.append(f"{flag}={draw(values(a, clean))}")
        else:
            argv += [flag, draw(values(a, clean))]
    for _ in range(0 if clean else draw(st.integers(1, 3))):
        argv.insert(draw(st.integers(0, len(argv))), draw(JUNK))
    return argv


@st.composite
def mutated_toml(draw) -> str:  # noqa: ANN001
    """The valid plan's text, cut, spliced and duplicated at random places."""
    text = dump_plan(loopback_plan())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        piece = draw(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(['"', "[", "]]", "[[users]]\n", " = ", "\n", "0", "-1", "1e9"]),
                st.sampled_from(["port = 99999\n", 'domain = "' + "a" * 64 + '.t"\n']),
            )
        )
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + piece + text[i:]
        elif kind == "replace":
            text = text[:i] + piece + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


@dataclass
class Files:
    mutated: str
    raw: bytes
    pw: bytes


FILE_CONTENTS = st.builds(Files, mutated_toml(), st.binary(max_size=200), st.binary(max_size=40))


def _write_files(root: Path, files: Files) -> None:
    for child in root.iterdir():
        if child.name == "home":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    (root / "valid.toml").write_text(dump_plan(loopback_plan()))
    (root / "\udcfe-valid.toml").write_text(dump_plan(loopback_plan()))
    (root / "mutated.toml").write_text(files.mutated, errors="surrogatepass")
    (root / "bytes.toml").write_bytes(files.raw)
    (root / "latin1.toml").write_bytes(
        dump_plan(loopback_plan()).replace("Realm", "Räalm").encode("latin-1")
    )
    (root / "empty.toml").write_bytes(b"")
    (root / "dir.toml").mkdir()
    (root / "pw").write_text("a-long-password\n")
    (root / "pw-bytes").write_bytes(files.pw)
    (root / "pw-empty").write_bytes(b"")


# ------------------------------------------------------------------ the property


def check(outcome, argv: list[str]) -> None:  # noqa: ANN001
    """No traceback; exit 0, 1 or 2; a refusal ends in one `regwizard:` message."""
    where = f"argv={argv!r}\nstderr:\n{outcome.err}"
    assert outcome.rc in (0, 1, 2), where
    assert "Traceback" not in outcome.err, where
    if outcome.rc == 2:
        lines = outcome.err.rstrip("\n").split("\n")
        first = max(i for i, x in enumerate(lines) if x.startswith("regwizard: "))
        rest = lines[first + 1 :]
        assert all(x.startswith("  ") for x in rest), where  # one message, then nothing
        assert any(x.startswith("  fix: ") for x in rest) or "problems:" in lines[first], where


@pytest.fixture(scope="module")
def fast_bcrypt():  # noqa: ANN201
    """user hash at cost 10 is 70 ms of CPU per example: the fuzz tests the CLI, not bcrypt."""
    mp = pytest.MonkeyPatch()
    mp.setattr(bcrypt, "gensalt", lambda rounds=12: f"$2b${rounds:02d}$".encode() + b"a" * 22)
    mp.setattr(bcrypt, "hashpw", lambda pw, salt: salt[:29] + b"b" * 31)
    yield
    mp.undo()


FUZZ = settings(
    max_examples=600,
    deadline=None,
    database=None,  # the sandbox forbids writes outside its directory while main runs
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


@FUZZ
@given(
    argv=argvs(),
    files=FILE_CONTENTS,
    stdin=st.one_of(st.binary(max_size=60), st.just(b"a-long-password\n")),
    tty=st.booleans(),
)
def test_fuzz_every_command_line(tmp_path, fast_bcrypt, argv, files, stdin, tty) -> None:
    with Sandbox(tmp_path) as box:
        _write_files(box.root, files)
        outcome = box.run(argv, stdin=stdin, tty=tty)
    check(outcome, argv)


@settings(FUZZ, max_examples=200)
@given(
    which=st.sampled_from([f for f in FILES if f.endswith(".toml")]),
    files=FILE_CONTENTS,
    command=st.sampled_from(["apply", "doctor", "wizard", "apply --dry-run", "apply --json"]),
)
def test_fuzz_plan_files(tmp_path, fast_bcrypt, which, files, command) -> None:
    """Every kind of plan file through every command that reads one (and the wizard's
    `regwizard PLAN.toml`): valid ones run (on fakes), the others are one message."""
    argv = [which] if command == "wizard" else [*command.split(), which, "--password-file", "pw"]
    with Sandbox(tmp_path) as box:
        _write_files(box.root, files)
        outcome = box.run(argv)
    check(outcome, argv)
    if which == "valid.toml":
        assert outcome.rc == 0 and outcome.calls, (argv, outcome.err)
    if which in ("bytes.toml", "latin1.toml", "empty.toml", "dir.toml", "missing.toml"):
        assert outcome.calls in ([], ["wizard"]) or outcome.rc == 0, outcome


# ------------------------------------------------------------------ adopt.parse_target


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(st.text(), TARGETS, st.text("[]:@0123456789abcdef.", max_size=30)),
    port=st.one_of(st.none(), st.integers(-10, 70_000)),
)
def test_parse_target_returns_a_checked_tuple_or_a_regwizard_error(text: str, port) -> None:  # noqa: ANN001
    from regwizard.adopt import parse_target
    from regwizard.plan import check_address, check_port, check_ssh_user

    try:
        user, address, p = parse_target(text, port)
    except RegwizardError as e:
        assert e.cause and e.fix
        assert "\n" not in e.cause
        return
    assert check_ssh_user(user) is None and check_address(address) is None
    assert check_port(p) is None and (port is None or p == port)
