"""The JSON fixture cases (tests/fixtures/): one parametrized test per directory.

- ``steps/<step>/<case>.json``: one step's ``check`` on fake hosts gives the expected
  ``Unchanged``, typed ``Change`` or ``StepError``; optionally its ``apply`` then does the
  expected operations. Every check changes nothing: no write, no state-changing command,
  no Docker mutation, no private key read, no credential sent.
- ``doctor/<case>.json``: ``doctor.diagnose`` on fake hosts gives exactly the expected
  (check, host, severity, problem id) findings (ok findings aside) and exit code, and
  changes nothing.
- ``adopt/<case>.json``: ``adopt.read_found`` + ``adopt.adoption`` give the expected plan,
  notes and refusals, and change nothing.

Each problem of ``problems.CATALOGUE`` must be produced by at least one case.

Expectations (``expect``):

- steps: ``{"unchanged": "detail substring"}``, or ``{"change": "ContainerChange",
  "detail": "substring" | [...], "fields": {"action": "recreate", "migrate.kind":
  "volume"}, "commands": ["substring of command 1", ...]}``, or ``{"error": "substring"}``;
  ``"text_contains": ["..."]``: the change's new file text holds these;
  ``"toml": {"text": {...}}``: a field holding TOML parses to exactly that document;
  ``"diff": ["..."]``: the unified diffs of the change (``apply --dry-run --diff``)
  hold these substrings, ``"no_diff": ["..."]`` never these (every change's diffs are
  also checked for passwords, hashes, the http secret, keys and whole PEM blocks);
  ``"apply": {"records": [{"op": "docker.pull", "tag": "sha256:..."}], "result": "..."}``
  runs apply on the change and looks for those operations, in order, on the host;
  ``"writes": [{"op": ...}, ...]`` there lists every write apply makes, in order (nothing
  else), and ``"recheck": "detail substring"`` checks again afterwards: ``Unchanged``.
- doctor: ``{"findings": [["tls", "node1", "fail", "plain-http"], ...], "exit": 1,
  "messages": {"plain-http": "substring"}}``.
- detectors: ``{"detector": "bucket", "input": {"status": {...}}, "expect": {"ids":
  ["s3-bucket-missing"], "messages": {"s3-bucket-missing": "substring"}}}``: a pure
  detector of ``problems`` on typed facts (for checks doctor does not read from a
  fake host, such as the S3 bucket probe).
- adopt: ``{"refused": ["substring"] | [], "notes": ["substring"], "no_notes": [...],
  "plan": {"registry.storage": "/data"}, "valid": true, "unpersisted": "volume" | null,
  "users": ["carol"], "ignored_users": [["dave", "apr1-md5"]]}``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from regwizard import adopt, doctor, problems, steps
from regwizard.diffs import unified
from regwizard.facts.s3 import BucketStatus
from regwizard.plan import Connection, validate_plan
from regwizard.steps.base import Change, StepError, Unchanged
from tests.fixtures import world

STEP_CASES = world.cases("steps")
DOCTOR_CASES = world.cases("doctor")
ADOPT_CASES = world.cases("adopt")
DETECTOR_CASES = world.cases("detectors")
STEPS = {s.name: s for s in steps.STEPS}


@pytest.fixture
def produced(monkeypatch) -> set[str]:
    """The ids of every Known problem made while the test runs."""
    seen: set[str] = set()
    real = problems.Known.__call__

    def call(self, **values):  # noqa: ANN001, ANN003, ANN202
        seen.add(self.id)
        return real(self, **values)

    monkeypatch.setattr(problems.Known, "__call__", call)
    return seen


def _substrings(text: str, want: str | list[str], what: str) -> None:
    for w in [want] if isinstance(want, str) else want:
        assert w in text, f"{what}: {w!r} not in {text!r}"


def _fields(obj: object, want: dict) -> None:
    for path, value in want.items():
        got = world.plain(world.get_path(obj, path))
        assert got == value, f"{path}: {got!r} != {value!r}"


def _records(ops: list[dict], want: list[dict]) -> None:
    """Each wanted record matches a later operation than the one before (a subsequence)."""
    i = 0
    for w in want:
        while i < len(ops) and any(world.plain(ops[i].get(k)) != v for k, v in w.items()):
            i += 1
        assert i < len(ops), f"no operation {w} (in order) among {[o['op'] for o in ops]}"
        i += 1


NEVER_IN_A_DIFF = (
    "$2",  # a bcrypt hash
    "$apr1$",
    world.FIXED_SECRET,
    world.FIXED_S3_SECRET,
    world.ALICE_PASSWORD,
    "bob-password-22",
    "PRIVATE KEY-----",
    "BEGIN CERTIFICATE",
)


def _diff_text(case: world.Case, outcome: Change) -> str:
    """The change's diffs as ``apply --dry-run --diff`` prints them, checked for secrets."""
    text = "".join(unified(d) for d in outcome.diffs)
    secrets = [
        s
        for s in (
            case.secrets.upstream_password,
            case.secrets.verify_password,
            case.secrets.s3_secret_key,
        )
        if s
    ]
    for bad in (*NEVER_IN_A_DIFF, *secrets):
        assert bad not in text, f"{bad!r} in the diff:\n{text}"
    return text


def _assert_untouched(case: world.Case) -> None:
    assert case.writes() == {}, "a read-only pass changed a host"
    assert case.key_reads() == {}, "a private key was read"
    assert case.net.sent_credentials() == [], "credentials were sent"


# --------------------------------------------------------------------------- steps


@pytest.mark.parametrize("path", STEP_CASES, ids=[world.case_id(p) for p in STEP_CASES])
def test_step_fixture(path: Path, tmp_path: Path, produced: set[str]) -> None:
    case = world.load(path, tmp_path)
    step = STEPS[path.parent.name]
    opts = case.data.get("step") or {}
    ctx = case.ctx(dry_run=bool(opts.get("dry_run")))
    e = case.entry(opts.get("on", "registry"))
    expect = case.expect
    if "error" in expect:
        with pytest.raises(StepError) as err:
            step.check(ctx, e)
        _substrings(f"{err.value.cause}\n{err.value.fix}", expect["error"], "error")
        outcome = None
    else:
        outcome = step.check(ctx, e)
        if "unchanged" in expect:
            assert isinstance(outcome, Unchanged), f"changes: {outcome}"
            _substrings(outcome.detail, expect["unchanged"], "detail")
        else:
            assert isinstance(outcome, Change), f"unchanged: {outcome}"
            assert type(outcome).__name__ == expect["change"]
            _substrings(outcome.detail, expect.get("detail", []), "detail")
            _fields(outcome, expect.get("fields", {}))
            cmds = list(outcome.commands)
            want = expect.get("commands", [])
            assert len(cmds) >= len(want), cmds
            for got, w in zip(cmds, want, strict=False):
                assert w in got, f"{w!r} not in command {got!r}"
            if "text_contains" in expect:  # a written file's whole new text
                _substrings(outcome.text, expect["text_contains"], "text")
            for path, doc in expect.get("toml", {}).items():
                assert tomllib.loads(world.get_path(outcome, path)) == doc, path
            diff = _diff_text(case, outcome)
            _substrings(diff, expect.get("diff", []), "diff")
            for w in expect.get("no_diff", []):
                assert w not in diff, f"{w!r} in the diff:\n{diff}"
    _assert_untouched(case)
    assert set(case.data.get("produces", [])) <= produced
    if "apply" in expect:
        assert outcome is not None and isinstance(outcome, Change)
        a = expect["apply"]
        host = case.host(e.label)
        before = len(host.ops)
        if "error" in a:
            with pytest.raises(StepError) as err:
                step.apply(ctx, e, outcome)
            _substrings(err.value.cause, a["error"], "apply error")
        else:
            _substrings(step.apply(ctx, e, outcome), a.get("result", []), "apply result")
        _records(host.ops[before:], a.get("records", []))
        if "writes" in a:
            made = [o for o in host.ops[before:] if o["write"]]
            assert len(made) == len(a["writes"]), [o["op"] for o in made]
            _records(made, a["writes"])
        if "recheck" in a:  # apply converged: the same check now finds nothing to do
            again = step.check(ctx, e)
            assert isinstance(again, Unchanged), f"changes again: {again}"
            _substrings(again.detail, a["recheck"], "recheck")


# --------------------------------------------------------------------------- doctor


@pytest.mark.parametrize("path", DOCTOR_CASES, ids=[world.case_id(p) for p in DOCTOR_CASES])
def test_doctor_fixture(path: Path, tmp_path: Path, produced: set[str]) -> None:
    case = world.load(path, tmp_path)
    report = doctor.diagnose(case.plan, case.secrets, connect=case.connect(), net=case.net)
    got = sorted((f.check, f.host, f.severity, f.id) for f in report.findings if f.severity != "ok")
    want = sorted(tuple(x) for x in case.expect.get("findings", []))
    shown = "\n".join(
        f"{f.check} {f.host} {f.severity} {f.id}: {f.message}"
        for f in report.findings
        if f.severity != "ok"
    )
    assert got == want, shown
    assert report.exit_code == case.expect["exit"], report.incomplete
    for pid, text in case.expect.get("messages", {}).items():
        found = [f for f in report.findings if f.id == pid]
        assert found, pid
        _substrings("\n".join(f"{f.message}\n{f.evidence}\n{f.fix}" for f in found), text, pid)
    assert case.writes() == {}, "doctor changed a host"
    assert case.key_reads() == {}, "doctor read a private key"
    # the password only ever goes to a server that proved to be the registry
    for call in case.net.sent_credentials():
        assert any(f.check == "tls" and f.severity == "ok" for f in report.findings), call
    made_here = {"apply-would-change", "apply-refuses", "docker-unreachable"}  # not Known ones
    assert {x[3] for x in want if x[3]} <= produced | made_here


# --------------------------------------------------------------------------- adopt


@pytest.mark.parametrize("path", ADOPT_CASES, ids=[world.case_id(p) for p in ADOPT_CASES])
def test_adopt_fixture(path: Path, tmp_path: Path, produced: set[str]) -> None:
    case = world.load(path, tmp_path)
    host = case.host("registry")
    conn = Connection(**(case.data.get("conn") or {"address": "10.0.0.2"}))
    found = adopt.read_found(host, case.data.get("container"))
    a = adopt.adoption(found, conn)
    expect = case.expect
    notes = "\n".join(a.notes)
    _substrings(notes, expect.get("notes", []), "notes")
    for text in expect.get("no_notes", []):
        assert text not in notes, text
    if "refused" in expect:
        if expect["refused"]:
            _substrings("\n".join(a.refused), expect["refused"], "refused")
        else:
            assert a.refused == []
    _fields(a.plan, expect.get("plan", {}))
    if "valid" in expect:
        assert (validate_plan(a.plan) == []) is expect["valid"], validate_plan(a.plan)
    if "unpersisted" in expect:
        got = a.unpersisted_data.kind if a.unpersisted_data else None
        assert got == expect["unpersisted"]
    if "users" in expect:
        assert [u.name for u in a.plan.users] == expect["users"]
    if "ignored_users" in expect:
        assert world.plain(a.ignored_users) == expect["ignored_users"]
    if "plain_http" in expect:
        assert a.plain_http is expect["plain_http"]
    _assert_untouched(case)
    assert set(case.data.get("produces", [])) <= produced


# --------------------------------------------------------------------------- detectors

# argument name -> the typed fact a detector takes (built from the case's JSON object)
_DETECTOR_TYPES: dict[str, type] = {"status": BucketStatus}


@pytest.mark.parametrize("path", DETECTOR_CASES, ids=[world.case_id(p) for p in DETECTOR_CASES])
def test_detector_fixture(path: Path, produced: set[str]) -> None:
    data = json.loads(path.read_text())
    args = {
        k: _DETECTOR_TYPES[k](**v) if k in _DETECTOR_TYPES else v for k, v in data["input"].items()
    }
    found = getattr(problems, data["detector"])(**args)
    assert [p.id for p in found] == data["expect"]["ids"]
    for pid, text in data["expect"].get("messages", {}).items():
        got = [p for p in found if p.id == pid]
        assert got, pid
        _substrings("\n".join(f"{p.message}\n{p.evidence}\n{p.fix}" for p in got), text, pid)
    for text in data["expect"].get("never", []):
        assert all(text not in f"{p.message}{p.evidence}{p.fix}" for p in found), text
    assert set(data["expect"]["ids"]) <= produced


# --------------------------------------------------------------------------- coverage


def _claimed() -> dict[str, list[str]]:
    """Known id -> the cases that produce it (each runner checks its own claims)."""
    out: dict[str, list[str]] = {}
    kinds = (("steps", STEP_CASES), ("doctor", DOCTOR_CASES), ("adopt", ADOPT_CASES))
    for kind, paths in (*kinds, ("detectors", DETECTOR_CASES)):
        for p in paths:
            data = json.loads(p.read_text())
            ids = set(data.get("produces", []))
            if kind == "doctor":
                ids |= {f[3] for f in data["expect"].get("findings", []) if f[3]}
            if kind == "detectors":
                ids |= set(data["expect"].get("ids", []))
            for i in ids:
                out.setdefault(i, []).append(f"{kind}/{world.case_id(p)}")
    return out


def test_every_known_problem_is_produced_by_a_fixture() -> None:
    claimed = _claimed()
    missing = sorted(set(problems.CATALOGUE) - set(claimed))
    assert missing == [], f"no fixture produces {missing}"


def test_every_step_has_fixtures() -> None:
    have = {p.parent.name for p in STEP_CASES}
    assert set(STEPS) <= have, sorted(set(STEPS) - have)


def test_fixture_ids_are_known() -> None:
    """A typo in a fixture's id would make the coverage test pass for nothing."""
    extra = {"apply-would-change", "apply-refuses", "docker-unreachable", ""}
    unknown = set(_claimed()) - set(problems.CATALOGUE) - extra
    assert unknown == set()
