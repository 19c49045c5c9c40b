"""Users without a restart: the plan edit (pure), the engine's subset run on the fixture
world (htpasswd + the logins proof, nothing else touched) and the plan saved in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from regwizard import htpasswd, users
from regwizard.errors import RegwizardError
from regwizard.events import StepFinished
from regwizard.plan import Plan, User, VerifySpec, dump_plan, load_plan
from regwizard.users import UserEdit
from tests.fixtures import world

HASH = "$2b$04$" + "a" * 53
BOB_PW = "bob-password-22"


def _plan(*names: str, verify: str = "") -> Plan:
    return Plan(users=[User(n, HASH) for n in names], verify=VerifySpec(verify))


# ----------------------------------------------------------------- the plan edit


def test_add_hashes_and_clears_remove_users() -> None:
    plan = _plan("alice")
    plan.remove_users = ["bob"]
    new = users.edited(plan, [UserEdit("add", "bob", BOB_PW)], cost=4)
    assert [u.name for u in new.users] == ["alice", "bob"]
    assert htpasswd.check_password(new.user("bob").bcrypt, BOB_PW)
    assert new.remove_users == []
    assert plan.remove_users == ["bob"] and len(plan.users) == 1  # the input is untouched


def test_passwd_changes_only_that_hash() -> None:
    new = users.edited(_plan("alice", "bob"), [UserEdit("passwd", "bob", BOB_PW)], cost=4)
    assert new.user("alice").bcrypt == HASH
    assert htpasswd.check_password(new.user("bob").bcrypt, BOB_PW)


def test_remove_lists_the_user_for_htpasswd_and_pins_verify() -> None:
    new = users.edited(_plan("alice", "bob"), [UserEdit("remove", "bob")])
    assert [u.name for u in new.users] == ["alice"]
    assert new.remove_users == ["bob"]  # else the htpasswd step keeps bob's line
    assert new.verify.user == "alice"


@pytest.mark.parametrize(
    ("plan", "edit", "words"),
    [
        (_plan("alice"), UserEdit("add", "alice", BOB_PW), ["already has", "user passwd"]),
        (_plan("alice"), UserEdit("passwd", "bob", BOB_PW), ["no user bob", "alice"]),
        (_plan("alice", "x"), UserEdit("remove", "bob"), ["no user bob", "remove_users"]),
        (_plan("alice"), UserEdit("remove", "alice"), ["only user", "add another"]),
        (_plan("alice", "bob"), UserEdit("remove", "alice"), ["[verify] user", "bob"]),
        (_plan("alice", "bob", verify="bob"), UserEdit("remove", "bob"), ["verify"]),
        (_plan("alice"), UserEdit("add", "Bad:Name", BOB_PW), ["user name"]),
        (_plan("alice"), UserEdit("add", "bob", "short"), ["at least 8"]),
    ],
)
def test_refusals_name_cause_and_fix(plan: Plan, edit: UserEdit, words: list[str]) -> None:
    with pytest.raises(RegwizardError) as info:
        users.edited(plan, [edit], cost=4)
    text = str(info.value)
    assert info.value.fix
    for w in words:
        assert w in text, (w, text)


def test_the_password_never_shows_in_repr() -> None:

    assert BOB_PW not in repr(UserEdit("add", "bob", BOB_PW))
    assert BOB_PW not in repr(users.expectations([UserEdit("add", "bob", BOB_PW)]))


# ----------------------------------------------------------------- the engine's subset run


class HtpasswdNet:
    """The registry's port as the registry answers: TLS verified as the fixture net does,
    then Basic auth checked against the htpasswd file on the fake registry host now."""

    def __init__(self, case: world.Case) -> None:
        self.case = case
        self.logins: list[tuple[str, int]] = []

    def served(self, *a):  # noqa: ANN002, ANN201
        return self.case.net.served(*a)

    def request(self, domain, target, port, anchor, path, *, auth=None, method="GET"):  # noqa: ANN001, ANN201
        status, headers, body = self.case.net.request(
            domain, target, port, anchor, path, auth=auth, method=method
        )
        if auth:
            host = self.case.host()
            text = host.state.files.get(host.state.resolve_path(LAYOUT_HTPASSWD), b"").decode()
            entries = {e.name: e.hash for e in htpasswd.parse(text)}
            ok = htpasswd.check_password(entries.get(auth[0], ""), auth[1])
            status = 200 if ok else 401
            self.logins.append((auth[0], status))
        return status, headers, body


LAYOUT_HTPASSWD = "/etc/regwizard/auth/htpasswd"


def _applied(tmp_path: Path) -> tuple[world.Case, Path]:
    case = world.build(
        {"setup": "applied", "plan": {"users+": [{"name": "bob", "bcrypt": "<bob-bcrypt>"}]}},
        tmp_path,
    )
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        dump_plan(case.plan).replace("[policy]", "# hand-written: keep me\n[policy]")
    )
    return case, plan_file


def _run(case: world.Case, plan_file: Path, edit: UserEdit, net=None):  # noqa: ANN001, ANN202
    events: list = []
    net = net or HtpasswdNet(case)
    connect = case.connect()
    out = users.run(
        load_plan(plan_file),
        [edit],
        case.secrets,
        path=plan_file,
        emit=events.append,
        connect=connect,
        net=net,
        cost=4,
    )
    net.connected = connect.calls
    finished = [(e.step, e.status) for e in events if isinstance(e, StepFinished)]
    return out, finished, net


@pytest.mark.parametrize(
    ("edit", "login"),
    [
        (UserEdit("add", "carol", "carol-password-3"), ("carol", 200)),
        (UserEdit("passwd", "bob", "bob-new-password"), ("bob", 200)),
        (UserEdit("remove", "bob", BOB_PW), ("bob", 401)),
    ],
    ids=["add", "passwd", "remove"],
)
def test_only_htpasswd_changes_then_the_login_is_proven(
    tmp_path: Path, edit: UserEdit, login: tuple[str, int]
) -> None:
    case, plan_file = _applied(tmp_path)
    if edit.action == "remove":  # bob can log in before
        assert (
            HtpasswdNet(case).request(
                "reg.example.test", "10.0.0.2", 443, case.pem("live"), "/v2/", auth=("bob", BOB_PW)
            )[0]
            == 200
        )
    before = {k: dict(h.state.containers) for k, h in case.hosts.items()}
    out, finished, net = _run(case, plan_file, edit)
    assert out.result.ok, out.result.failure
    assert finished == [("connect", "unchanged"), ("htpasswd", "changed"), ("logins", "unchanged")]
    assert login in net.logins
    assert out.proof.startswith(f"login as {login[0]}")
    # only the registry host was connected, and only htpasswd (and its backup) written
    assert net.connected == [case.entry().key]
    writes = case.writes()
    assert list(writes) == ["node1"]
    assert {w["path"] for w in writes["node1"] if w["op"] == "write_file"} == {LAYOUT_HTPASSWD}
    assert all(not w["op"].startswith("docker") for w in writes["node1"]), writes
    assert {k: dict(h.state.containers) for k, h in case.hosts.items()} == before
    # the plan file was edited in place: the comment stays, the plan says the change
    text = plan_file.read_text()
    assert "# hand-written: keep me" in text
    saved = load_plan(plan_file)
    assert out.saved and saved == out.plan
    if edit.action == "remove":
        assert saved.remove_users == ["bob"] and saved.user("bob") is None


def test_a_rerun_changes_nothing(tmp_path: Path) -> None:
    case, plan_file = _applied(tmp_path)
    _run(case, plan_file, UserEdit("remove", "bob"))
    # the htpasswd step on the saved plan (what apply would run) has nothing to do
    from regwizard.steps import Htpasswd
    from regwizard.steps.base import Unchanged

    case.plan = load_plan(plan_file)
    ctx = case.ctx()
    assert isinstance(Htpasswd().check(ctx, ctx.registry), Unchanged)


def test_a_refused_proof_fails_but_the_plan_follows_htpasswd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regwizard.steps import logins

    monkeypatch.setattr(logins, "WAIT_SECONDS", 0.0)
    case, plan_file = _applied(tmp_path)
    case.net.spec["login_status"] = 401  # a registry that never takes the new file

    class Stale(HtpasswdNet):
        def request(self, *a, **kw):  # noqa: ANN002, ANN003, ANN202
            return self.case.net.request(*a, **kw)

    out, finished, _ = _run(
        case, plan_file, UserEdit("add", "carol", "carol-password-3"), Stale(case)
    )
    assert not out.result.ok
    assert out.result.failure.step == "logins"
    assert "mounts the auth directory" in out.result.failure.fix
    assert out.saved  # htpasswd holds carol: the plan says so, and apply keeps her


def test_an_untrusted_registry_gets_no_password(tmp_path: Path) -> None:
    case, plan_file = _applied(tmp_path)
    case.net.spec["request"] = {"untrusted": "x509: certificate signed by unknown authority"}
    out, _, _ = _run(case, plan_file, UserEdit("add", "carol", "carol-password-3"))
    assert not out.result.ok and "no password was sent" in out.result.failure.cause
    assert case.net.sent_credentials() == []


def test_nothing_written_means_the_plan_file_is_untouched(tmp_path: Path) -> None:
    case, plan_file = _applied(tmp_path)
    case.host().state.connect_error = "connection refused"
    before = plan_file.read_bytes()
    out, _, _ = _run(case, plan_file, UserEdit("add", "carol", "carol-password-3"))
    assert not out.result.ok and not out.saved
    assert plan_file.read_bytes() == before


def test_a_registry_that_does_not_answer_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regwizard.steps import logins

    monkeypatch.setattr(logins, "WAIT_SECONDS", 0.0)
    case, plan_file = _applied(tmp_path)
    case.net.spec["request"] = {"error": "connection refused"}
    out, finished, _ = _run(case, plan_file, UserEdit("add", "carol", "carol-password-3"))
    assert not out.result.ok and "does not answer" in out.result.failure.cause
    assert "regwizard apply" in out.result.failure.fix
