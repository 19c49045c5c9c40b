"""regwizard.htpasswd: bcrypt hashing and the idempotent merge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regwizard import htpasswd as H
from regwizard.errors import RegwizardError
from regwizard.plan import User

from .conftest import PASSWORD


def fake_hash(tag: str) -> str:
    """A syntactically valid bcrypt string (merge only compares text)."""
    body = (tag * 53)[:53]
    return "$2b$04$" + body


A, B, C = fake_hash("a"), fake_hash("b"), fake_hash("c")
APR1 = "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"
SHA = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="


# --------------------------------------------------------------------- hashing


def test_hash_and_check(fast_hash: str) -> None:
    assert fast_hash.startswith("$2b$04$")
    assert H.is_bcrypt(fast_hash)
    assert H.check_password(fast_hash, PASSWORD)
    assert not H.check_password(fast_hash, PASSWORD + "x")
    assert not H.check_password(fast_hash, "")


def test_default_cost_is_10() -> None:
    assert H.hash_password("abcdefgh-1").startswith("$2b$10$")


def test_2y_and_2a_prefixes(fast_hash: str) -> None:
    assert H.check_password("$2y$" + fast_hash[4:], PASSWORD)
    assert H.check_password("$2a$" + fast_hash[4:], PASSWORD)
    # A $2y$ hash as Apache's htpasswd -B writes it (password "password").
    apache = "$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe"
    assert H.check_password(apache, "password")
    assert not H.check_password(apache, "Password")


def test_check_password_non_bcrypt() -> None:
    for h in (APR1, SHA, "", "plain", "$2b$04$short"):
        assert not H.check_password(h, "password")


@pytest.mark.parametrize("pw", ["", "x" * 73, "é" * 37, "a\0b"])
def test_hash_rejects_unhashable(pw: str) -> None:
    with pytest.raises(RegwizardError):
        H.hash_password(pw, rounds=4)
    assert not H.check_password(fake_hash("a"), pw)


def test_hash_rounds_bounds() -> None:
    with pytest.raises(ValueError):
        H.hash_password("abcdefgh", rounds=3)


def test_72_bytes_ok() -> None:
    h = H.hash_password("x" * 72, rounds=4)
    assert H.check_password(h, "x" * 72)


@pytest.mark.parametrize(
    ("h", "ok"),
    [
        (fake_hash("a"), True),
        ("$2y$10$" + "./" * 26 + "A", True),
        ("$2x$10$" + "a" * 53, False),
        ("$2b$3$" + "a" * 54, False),
        ("$2b$32$" + "a" * 53, False),
        ("$2b$12$" + "a" * 52, False),
        ("$2b$12$" + "a" * 53 + "\n", False),
        (APR1, False),
        (SHA, False),
    ],
)
def test_is_bcrypt(h: str, ok: bool) -> None:
    assert H.is_bcrypt(h) is ok


def test_hash_kind() -> None:
    assert H.hash_kind(A) == "bcrypt"
    assert H.hash_kind(APR1) == "apr1-md5"
    assert H.hash_kind(SHA) == "sha1"
    assert H.hash_kind("$6$salt$hash") == "crypt"
    assert H.hash_kind("rl0xcXu0JUq3E") == "crypt"
    assert H.hash_kind("hunter2") == "unknown"


def test_generate_password() -> None:
    pws = {H.generate_password() for _ in range(50)}
    assert len(pws) == 50
    for pw in pws:
        assert len(pw) == 20
        assert set(pw) <= set(H.ALPHABET)
        assert not set(pw) & set("0O1lI")
        assert H.check_new_password(pw) is None
    assert len(H.generate_password(8)) == 8
    with pytest.raises(ValueError):
        H.generate_password(4)
    with pytest.raises(ValueError):
        H.generate_password(73)


def test_check_new_password() -> None:
    assert H.check_new_password("good-password") is None
    assert H.check_new_password("") is not None
    assert H.check_new_password("short") is not None
    assert H.check_new_password(" padded-pass") is not None
    assert H.check_new_password("tab\there-pass") is not None
    assert H.check_new_password("x" * 73) is not None


# --------------------------------------------------------------------- parse


def test_parse() -> None:
    text = (
        f"# comment\r\n\r\nalice:{A}\r\n  bob:{APR1}  \nbroken line\n  # indented comment\ncarol:\n"
    )
    entries = H.parse(text)
    assert entries == [H.Entry("alice", A), H.Entry("bob", APR1), H.Entry("carol", "")]
    assert H.invalid_lines(text) == [5]


def test_parse_empty() -> None:
    assert H.parse("") == []
    assert H.parse("\n\n#x\n") == []


# --------------------------------------------------------------------- merge


def test_merge_into_empty() -> None:
    res = H.merge("", [User("alice", A), User("bob", B)], [])
    assert res.text == f"alice:{A}\nbob:{B}\n"
    assert res.changed and res.added == ["alice", "bob"]
    assert res.updated == res.removed == res.kept_unmanaged == []


def test_merge_keeps_unmanaged_and_order() -> None:
    existing = f"# team\nzed:{C}\nalice:{A}\n"
    res = H.merge(existing, [User("alice", A), User("bob", B)], [])
    assert res.text == f"# team\nzed:{C}\nalice:{A}\nbob:{B}\n"
    assert res.kept_unmanaged == ["zed"] and res.added == ["bob"]


def test_merge_replaces_changed_hash_in_place() -> None:
    existing = f"alice:{A}\nzed:{C}\n"
    res = H.merge(existing, [User("alice", B)], [])
    assert res.text == f"alice:{B}\nzed:{C}\n"
    assert res.updated == ["alice"] and res.added == []


def test_merge_removes_asked_users() -> None:
    existing = f"alice:{A}\nmallory:{C}\nzed:{C}\nmallory:{B}\n"
    res = H.merge(existing, [User("alice", A)], ["mallory", "nobody"])
    assert res.text == f"alice:{A}\nzed:{C}\n"
    assert res.removed == ["mallory"]


def test_merge_plan_user_wins_over_remove() -> None:
    res = H.merge(f"alice:{A}\n", [User("alice", A)], ["alice"])
    assert not res.changed and res.removed == []


def test_merge_is_idempotent() -> None:
    existing = f"# x\r\nzed:{APR1}\r\nalice:{A}"
    users = [User("alice", B), User("bob", C)]
    first = H.merge(existing, users, ["zed"])
    assert first.changed
    second = H.merge(first.text, users, ["zed"])
    assert not second.changed
    assert second.text == first.text
    assert second.added == second.updated == second.removed == []


@pytest.mark.parametrize(
    "existing",
    [
        f"alice:{A}\n",
        f"alice:{A}",  # no final newline: left alone
        f"alice:{A}\r\nzed:{C}\r\n",
        f"# c\n\n  alice:{A}  \n\nzed:{APR1}\n",
    ],
)
def test_unchanged_is_byte_identical(existing: str) -> None:
    res = H.merge(existing, [User("alice", A)], [])
    assert not res.changed
    assert res.text == existing


def test_empty_stays_empty() -> None:
    res = H.merge("", [], [])
    assert res.text == "" and not res.changed


def test_merge_ends_with_newline_and_keeps_crlf() -> None:
    res = H.merge(f"zed:{C}", [User("alice", A)], [])
    assert res.text == f"zed:{C}\nalice:{A}\n"
    res = H.merge(f"zed:{C}\r\nyan:{C}", [User("alice", A)], [])
    assert res.text == f"zed:{C}\r\nyan:{C}\r\nalice:{A}\r\n"
    res = H.merge(f"alice:{A}\r\nzed:{C}", [], ["zed"])
    assert res.text == f"alice:{A}\r\n"


def test_merge_flags_non_bcrypt() -> None:
    existing = f"old:{APR1}\nsha:{SHA}\nplain:hunter2\nok:{A}\nalice:{APR1}\n"
    res = H.merge(existing, [User("alice", B)], [])
    assert res.non_bcrypt == ["old", "sha", "plain"]
    assert res.updated == ["alice"]  # the plan user's $apr1$ line is fixed, not flagged


def test_merge_drops_lines_the_registry_rejects() -> None:
    existing = f"alice:{A}\nthis line has no colon\nzed:{C}\n"
    res = H.merge(existing, [User("alice", A)], [])
    assert res.text == f"alice:{A}\nzed:{C}\n"
    assert res.dropped_invalid == [2] and res.changed


def test_merge_collapses_duplicate_plan_users() -> None:
    existing = f"alice:{A}\nzed:{C}\nalice:{B}\n"
    res = H.merge(existing, [User("alice", A)], [])
    assert res.text == f"alice:{A}\nzed:{C}\n"
    assert res.duplicates == ["alice"] and res.changed


def test_merge_refuses_bad_plan_users() -> None:
    with pytest.raises(RegwizardError, match="not bcrypt"):
        H.merge("", [User("alice", APR1)], [])
    with pytest.raises(RegwizardError):
        H.merge("", [User("a:b", A)], [])
    with pytest.raises(RegwizardError):
        H.merge("", [User("a\nb", A)], [])


def test_merge_with_real_hashes(fast_hash: str) -> None:
    res = H.merge("", [User("alice", fast_hash)], [])
    (entry,) = H.parse(res.text)
    assert H.check_password(entry.hash, PASSWORD)


names = st.sampled_from(["alice", "bob", "carol", "zed", "yan"])
hashes = st.sampled_from([A, B, C, APR1, SHA, "plain"])
lines = st.one_of(
    st.tuples(names, hashes).map(lambda t: f"{t[0]}:{t[1]}"),
    st.sampled_from(["", "# comment", "  ", "no colon here"]),
)


@settings(max_examples=200, deadline=None)
@given(
    existing=st.lists(lines, max_size=8),
    eol=st.sampled_from(["\n", "\r\n"]),
    final=st.booleans(),
    plan=st.dictionaries(names, st.sampled_from([A, B, C]), max_size=3),
    remove=st.lists(names, max_size=3),
)
def test_merge_properties(
    existing: list[str], eol: str, final: bool, plan: dict[str, str], remove: list[str]
) -> None:
    text = eol.join(existing) + (eol if final and existing else "")
    users = [User(n, h) for n, h in plan.items()]
    first = H.merge(text, users, remove)
    result = {e.name: e.hash for e in H.parse(first.text)}  # last wins, like the registry
    for n, h in plan.items():
        assert result[n] == h
        assert sum(e.name == n for e in H.parse(first.text)) == 1
    for n in set(remove) - set(plan):
        assert n not in result
    for e in H.parse(text):
        if e.name not in plan and e.name not in remove:
            assert e.name in result
    assert H.invalid_lines(first.text) == []
    if first.changed:
        assert first.text == "" or first.text.endswith("\n")
    else:
        assert first.text == text
    second = H.merge(first.text, users, remove)
    assert not second.changed and second.text == first.text


def test_user_hash_command_takes_a_cost(monkeypatch, capsys) -> None:
    """`regwizard user hash --cost 5` prints a plan entry whose hash has that cost."""
    import io

    import bcrypt

    from regwizard import cli

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli.main(["user", "hash", "alice", "--cost", "5"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("bcrypt = "))
    digest = line.split('"')[1]
    assert digest.startswith("$2b$05$")
    assert bcrypt.checkpw(b"a-long-password", digest.encode())
    assert 'name = "alice"' in out
