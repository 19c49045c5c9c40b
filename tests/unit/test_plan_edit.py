"""The plan file is edited in place: only values that differ change; comments stay."""

from __future__ import annotations

import os
import re
import stat

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwizard.plan import (
    EXAMPLE_PLAN,
    CertificateSpec,
    Connection,
    Plan,
    RegistrySpec,
    User,
    VerifySpec,
    dump_plan,
    edit_plan_text,
    parse_plan,
    save_plan,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HASHES = ["$2b$04$" + c * 53 for c in "abcd"]
NAMES = ["alice", "bob", "carol", "dave", "erin"]
ADDRESSES = ["local", "10.0.0.3", "node2", "node3"]


def _users() -> st.SearchStrategy[list[User]]:
    return st.lists(st.sampled_from(NAMES), max_size=4, unique=True).flatmap(
        lambda names: st.tuples(*(st.sampled_from(HASHES) for _ in names)).map(
            lambda hashes: [User(n, h) for n, h in zip(names, hashes, strict=True)]
        )
    )


connections = st.builds(
    Connection,
    address=st.sampled_from(ADDRESSES),
    port=st.sampled_from([22, 2222]),
    user=st.sampled_from(["root", "admin"]),
    sudo=st.booleans(),
    label=st.sampled_from(["", "node-x"]),
    runtimes=st.sampled_from([["docker"], ["containerd"], ["docker", "podman"]]),
)

plans = st.builds(
    Plan,
    registry=st.builds(
        RegistrySpec,
        domain=st.sampled_from(["reg.example.test", "r.lan"]),
        port=st.sampled_from([443, 5000]),
        manage_hosts_file=st.booleans(),
        realm=st.sampled_from(["Registry Realm", 'quote " and \\ back']),
    ),
    host=connections,
    clients=st.lists(connections, max_size=3, unique_by=lambda c: (c.address, c.port)),
    certificate=st.builds(
        CertificateSpec,
        days=st.integers(1, 3650),
        extra_sans=st.lists(st.sampled_from(["a.test", "10.0.0.9", "b.test"]), max_size=2),
    ),
    users=_users(),
    remove_users=st.lists(st.sampled_from(["old", "gone"]), max_size=2, unique=True),
    verify=st.builds(VerifySpec, user=st.sampled_from(["", "alice"])),
)


def with_comments(text: str) -> tuple[str, dict[str, str]]:
    """``text`` with a tagged comment on every key line; tag -> where it sits
    (``section`` for fixed tables, ``users:NAME`` for a user's entry, ``other``)."""
    out: list[str] = ["# hand-written header"]
    where: dict[str, str] = {}
    section = ""
    n = 0
    entry_lines: list[int] = []
    for line in text.splitlines():
        head = re.fullmatch(r"\[\[?([a-z]+)\]\]?", line)
        if head:
            section = head.group(1)
            entry_lines = []
        if "=" in line and not line.startswith("#") and not line.endswith("[") and section:
            n += 1
            tag = f"tag{n}"
            out.append(f"{line}   # {tag}")
            where[tag] = section if section not in ("users", "clients") else "other"
            if section == "users":
                entry_lines.append(n)
                m = re.fullmatch(r'name = "(.*)"', line)
                if m:
                    for k in entry_lines:
                        where[f"tag{k}"] = f"users:{m.group(1)}"
        else:
            out.append(line)
    return "\n".join(out) + "\n", where


@FAST
@given(plans, plans)
def test_edit_gives_the_new_plan_and_keeps_comments(a: Plan, b: Plan) -> None:
    old, where = with_comments(dump_plan(a))
    assert parse_plan(old, validate=False) == a
    new = edit_plan_text(old, b)
    assert parse_plan(new, validate=False) == b
    assert "# hand-written header" in new
    kept_users = {u.name for u in a.users} & {u.name for u in b.users}
    for tag, place in where.items():
        if place in ("registry", "host", "certificate", "policy", "verify") or (
            place.startswith("users:") and place[6:] in kept_users
        ):
            assert f"# {tag}" in new, (tag, place)


@FAST
@given(plans)
def test_no_change_is_byte_identical(a: Plan) -> None:
    old, _ = with_comments(dump_plan(a))
    assert edit_plan_text(old, a) == old


def test_example_plan_edit_changes_only_the_lines_that_differ() -> None:
    plan = parse_plan(EXAMPLE_PLAN, validate=False)
    plan.users.append(User("bob", HASHES[0]))
    plan.registry.port = 5000
    new = edit_plan_text(EXAMPLE_PLAN, plan)
    old_lines, new_lines = EXAMPLE_PLAN.splitlines(), new.splitlines()
    gone = [x for x in old_lines if x not in new_lines]
    added = [x for x in new_lines if x not in old_lines]
    assert gone == [x for x in old_lines if x.startswith("port = 443")]
    # the comment keeps its column; the new user is a table of its own
    assert added[0].index("#") == gone[0].index("#")
    assert added[1:] == ["[[users]]", 'name = "bob"', f'bcrypt = "{HASHES[0]}"']
    # keys the file leaves out (host.runtimes) are not added when they keep the default
    assert "runtimes" not in new.split("[host]")[1].split("[[clients]]")[0]


def test_removing_the_last_user_entry_keeps_the_comment_above_policy() -> None:
    a = Plan(users=[User("alice", HASHES[0]), User("bob", HASHES[1])])
    text = dump_plan(a).replace("[policy]", "# about the policy\n[policy]")
    b = Plan(users=[User("alice", HASHES[0])], remove_users=["bob"])
    new = edit_plan_text(text, b)
    assert "# about the policy\n[policy]" in new
    assert parse_plan(new, validate=False) == b


def test_text_that_is_not_a_plan_is_replaced_by_dump() -> None:
    b = Plan(users=[User("alice", HASHES[0])])
    for old in ("not = [toml", "registry = 5\n", "[[registry]]\nx = 1\n", ""):
        assert parse_plan(edit_plan_text(old, b), validate=False) == b


def test_save_over_an_existing_file_keeps_comments_and_mode(tmp_path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(EXAMPLE_PLAN)
    os.chmod(path, 0o640)
    plan = parse_plan(EXAMPLE_PLAN, validate=False)
    plan.registry.domain = "other.example.test"
    save_plan(plan, path)
    text = path.read_text()
    assert "# A placeholder whose password nobody knows" in text
    assert 'domain = "other.example.test"' in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert parse_plan(text, validate=False) == plan
    assert [p.name for p in tmp_path.iterdir()] == ["plan.toml"]  # no temp file left


def test_save_of_a_new_file_is_dump_plan_0600(tmp_path) -> None:
    path = tmp_path / "new.toml"
    plan = Plan(users=[User("alice", HASHES[0])])
    save_plan(plan, path)
    assert path.read_text() == dump_plan(plan)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
