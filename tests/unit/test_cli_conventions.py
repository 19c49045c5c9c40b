"""What people expect from a CLI (issue 14, first part): --version, `plan check` offline
with file:line, dry-run exit 3 when changes are pending, and every command the example
plan or the README names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regwizard import __version__
from regwizard.cli.plans import field_line
from regwizard.events import StepRecord
from regwizard.plan import EXAMPLE_PLAN, dump_plan

from .sandbox import Sandbox, loopback_plan

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def box(tmp_path: Path):  # noqa: ANN201
    with Sandbox(tmp_path) as b:
        yield b


def test_version(box: Sandbox) -> None:
    o = box.run(["--version"])
    assert o.rc == 0 and o.out.strip() == f"regwizard {__version__}"


def test_plan_check_valid_contacts_nothing(box: Sandbox) -> None:
    (box.root / "p.toml").write_text(EXAMPLE_PLAN)
    o = box.run(["plan", "check", "p.toml"])
    assert o.rc == 0 and "valid" in o.out and o.calls == [], (o.err, o.calls)


def test_plan_check_names_every_problem_with_its_line(box: Sandbox) -> None:
    text = EXAMPLE_PLAN.replace("port = 443 ", "port = 99999 ", 1).replace(
        'country = "CN"', 'country = "CHN"', 1
    )
    (box.root / "p.toml").write_text(text)
    o = box.run(["plan", "check", "p.toml"])
    assert o.rc == 2 and o.calls == [] and "Traceback" not in o.err
    lines = text.splitlines()
    port = next(i for i, s in enumerate(lines, 1) if s.startswith("port = 99999"))
    country = next(i for i, s in enumerate(lines, 1) if s.startswith('country = "CHN"'))
    assert f"p.toml:{port}: registry.port" in o.err
    assert f"p.toml:{country}: certificate.country" in o.err
    assert o.err.count("fix:") == 2


def test_field_line_finds_the_nth_array_table() -> None:
    text = dump_plan(loopback_plan()) + '\n[[clients]]\naddress = "10.9.9.9"\n'
    line = field_line(text, "clients[1].address")
    assert line is not None and text.splitlines()[line - 1] == 'address = "10.9.9.9"'
    assert field_line(text, "clients[7].address") is None


@given(st.text(max_size=300), st.text(max_size=40))
def test_field_line_never_raises(text: str, field: str) -> None:
    line = field_line(text, field)
    assert line is None or 1 <= line <= len(text.splitlines())


def _plan(box: Sandbox) -> str:
    (box.root / "plan.toml").write_text(dump_plan(loopback_plan()))
    (box.root / "pw").write_text("a-long-password\n")
    return "plan.toml"


def test_dry_run_exits_3_when_changes_are_pending(box: Sandbox) -> None:
    plan = _plan(box)
    box.engine_result.steps = [StepRecord("trust", "node2", "Trust", "would-change", 0.1, "x")]
    o = box.run(["apply", plan, "--dry-run"])
    assert o.rc == 3 and "1 change(s) pending" in o.err, o.err


def test_dry_run_exits_0_when_nothing_would_change(box: Sandbox) -> None:
    plan = _plan(box)
    box.engine_result.steps = [StepRecord("trust", "node2", "Trust", "unchanged", 0.1, "ok")]
    o = box.run(["apply", plan, "--dry-run"])
    assert o.rc == 0 and "nothing to change" in o.err, o.err


def _code(text: str) -> str:
    """The parts of Markdown a reader would type: fenced blocks and `inline code`."""
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(fenced + inline)


def _named_commands(text: str) -> set[tuple[str, ...]]:
    """`regwizard WORD [WORD]` as a command line names it (placeholders dropped)."""
    out = set()
    for m in re.finditer(r"(?:^|[\s;&|(])regwizard((?: [a-z][a-z-]*(?![\w./-])){1,2})", text, re.M):
        out.add(tuple(m.group(1).split()))
    return out


@pytest.mark.parametrize("source", ["example plan", "README"])
def test_every_named_command_exists(box: Sandbox, source: str) -> None:
    text = EXAMPLE_PLAN if source == "example plan" else _code(README.read_text())
    named = _named_commands(text)
    assert named
    for words in sorted(named):
        for n in (len(words), 1):  # "regwizard plan check" or, for prose, "regwizard apply"
            o = box.run([*words[:n], "--help"])
            if o.rc == 0:
                break
        assert o.rc == 0, (source, words, o.err[-300:])


def _all_parsers(p):  # noqa: ANN001, ANN202
    import argparse

    yield p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                yield from _all_parsers(sp)


def test_every_subcommand_takes_verbose_and_quiet() -> None:
    from regwizard.cli.parser import images_rm_parser, parser

    every = [*_all_parsers(parser()), images_rm_parser()]
    assert len(every) > 20
    for p in every:
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"-v", "--verbose", "-q", "--quiet"} <= opts, p.prog


def test_quiet_and_verbose_reach_the_printer(capsys) -> None:  # noqa: ANN001
    from regwizard.cli import common
    from regwizard.cli.parser import parser
    from regwizard.events import LogLine, StepFailed, StepFinished

    events = [
        StepFinished("trust", "node2", "changed", 0.1, "wrote ca.crt", ("mkdir -p /x",)),
        LogLine("trust", "node2", "a log line"),
        StepFailed("verify", "node2", "it broke", "fix it"),
    ]
    seen = {}
    for argv in (["-q", "apply", "p"], ["apply", "p"], ["apply", "p", "-v"], ["apply", "p", "-vv"]):
        common.set_verbosity(parser().parse_args(argv))
        emit = common.stderr_printer()
        for ev in events:
            emit(ev)
        seen[" ".join(argv)] = capsys.readouterr().err
    common.VERBOSITY = 0
    quiet, plain, v, vv = seen.values()
    assert "wrote ca.crt" not in quiet and "it broke" in quiet
    assert "wrote ca.crt" in plain and "a log line" not in plain
    assert "a log line" in v and "$ mkdir -p /x" not in v
    assert "$ mkdir -p /x" in vv


def test_adopt_json_prints_the_plan_notes_and_refusals(box: Sandbox) -> None:
    import json

    o = box.run(["adopt", "root@10.0.0.2", "--json"])
    assert o.rc == 0, o.err
    doc = json.loads(o.out)
    assert {"plan", "plan_toml", "notes", "refused"} <= set(doc)
    assert doc["plan"]["registry"]["domain"] and "[registry]" in doc["plan_toml"]
