"""htpasswd files for the registry: bcrypt hashing and an idempotent, order-stable merge.

The registry (distribution's htpasswd auth) reads ``name:hash`` lines, trims spaces,
skips blank and ``#`` lines, and fails the WHOLE file on a line without ``:``.
It only accepts bcrypt; other hashes are silently ignored (login gets 401).
Duplicate names: the last line wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from regwizard.errors import RegwizardError


class User(Protocol):
    """A planned user (plan.User): a name and a bcrypt hash."""

    name: str
    bcrypt: str


# $2a$/$2b$/$2y$, a two-digit cost 04..31, then 22 salt + 31 hash characters.
BCRYPT_RE = re.compile(r"\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")

MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_LENGTH = 8
# No 0/O, 1/l/I: easy to read aloud and type.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


DEFAULT_COST = 10
MIN_COST = 4  # bcrypt's own floor
# The registry checks the hash on every request: each step of cost doubles its CPU per
# request (10: ~60 ms, 14: ~1 s). Above this, a pull of a few layers takes seconds.
MAX_COST = 14


class CostError(RegwizardError, ValueError):
    """A bcrypt cost outside MIN_COST..MAX_COST (a ValueError too: a bad argument)."""


def is_bcrypt(h: str) -> bool:
    return isinstance(h, str) and BCRYPT_RE.fullmatch(h) is not None


def cost_of(h: str) -> int:
    """The cost of a bcrypt hash (``$2b$12$...`` -> 12); 0 when it is not bcrypt."""
    return int(h[4:6]) if is_bcrypt(h) else 0


def cost_words(cost: int) -> str:
    """The registry's CPU per request at this cost, in words (measured ~60 ms at 10)."""
    ms = 60 * 2 ** (cost - DEFAULT_COST)
    return f"about {ms / 1000:.1f} s" if ms >= 1000 else f"about {max(ms, 1):.0f} ms"


def hash_password(pw: str, rounds: int = DEFAULT_COST) -> str:
    """A ``$2b$`` bcrypt hash. Raises RegwizardError for passwords bcrypt cannot take,
    and for a cost outside MIN_COST..MAX_COST (plans refuse hashes above MAX_COST).

    Cost 10 (htpasswd -B uses 5): the registry checks the hash on *every* request,
    so each push/pull pays it many times; 12 made a 1-layer push take ~3 s.
    """
    if (
        isinstance(rounds, bool)
        or not isinstance(rounds, int)
        or not (MIN_COST <= rounds <= MAX_COST)
    ):
        raise CostError(
            f"bcrypt cost {rounds!r} is outside {MIN_COST}..{MAX_COST}: the registry checks "
            "the hash on every request, and each step up doubles its CPU per request "
            f"({cost_words(MAX_COST)} at {MAX_COST})",
            f"choose a cost from {MIN_COST} to {MAX_COST}; {DEFAULT_COST} is the default",
        )
    problem = _unhashable(pw)
    if problem:
        raise RegwizardError(problem, "choose another password")
    import bcrypt as _bcrypt  # here, not at the top: `--help` and `plan check` need none

    return _bcrypt.hashpw(pw.encode("utf-8"), _bcrypt.gensalt(rounds)).decode("ascii")


def _unhashable(pw: str) -> str | None:
    if not pw:
        return "the password is empty"
    if "\0" in pw:
        return "the password contains a NUL character"
    if len(pw.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return f"the password is longer than {MAX_PASSWORD_BYTES} bytes, bcrypt's limit"
    return None


def check_new_password(pw: str) -> str | None:
    """A message when ``pw`` is not a good registry password (for the UI), else None."""
    problem = _unhashable(pw)
    if problem:
        return problem[0].upper() + problem[1:]
    if len(pw) < MIN_PASSWORD_LENGTH:
        return f"The password must have at least {MIN_PASSWORD_LENGTH} characters"
    if pw != pw.strip():
        return "The password cannot start or end with spaces (docker login trims them)"
    if any(ord(c) < 32 or ord(c) == 127 for c in pw):
        return "The password cannot contain control characters"
    return None


def check_password(hash: str, pw: str) -> bool:
    """True when ``pw`` matches the bcrypt ``hash``; False for anything else."""
    if not is_bcrypt(hash) or not isinstance(pw, str) or _unhashable(pw):
        return False
    h = hash.encode("ascii")
    if h.startswith(b"$2y$"):  # same algorithm as $2b$
        h = b"$2b$" + h[4:]
    try:
        import bcrypt as _bcrypt

        return _bcrypt.checkpw(pw.encode("utf-8"), h)
    except ValueError:
        return False


def generate_password(length: int = 20) -> str:
    """A random password from an unambiguous alphabet, with upper, lower and digit."""
    if not MIN_PASSWORD_LENGTH <= length <= MAX_PASSWORD_BYTES:
        raise ValueError(f"length must be {MIN_PASSWORD_LENGTH}..{MAX_PASSWORD_BYTES}")
    import secrets

    while True:
        pw = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if (
            any(c.isupper() for c in pw)
            and any(c.islower() for c in pw)
            and any(c.isdigit() for c in pw)
        ):
            return pw


def hash_kind(h: str) -> str:
    """A short name for the hash format: bcrypt, apr1-md5, sha1, crypt, plain/unknown."""
    if is_bcrypt(h):
        return "bcrypt"
    if h.startswith("$apr1$"):
        return "apr1-md5"
    if h.startswith("{SHA}"):
        return "sha1"
    if h.startswith(("$1$", "$5$", "$6$", "$y$")) or re.fullmatch(r"[./0-9A-Za-z]{13}", h):
        return "crypt"
    return "unknown"


@dataclass(frozen=True)
class Entry:
    name: str
    hash: str


def _split(line: str) -> Entry | None | bool:
    """An Entry; None for blank/comment lines; False for a line the registry rejects."""
    t = line.strip()
    if not t or t.startswith("#"):
        return None
    name, sep, h = t.partition(":")
    if not sep:
        return False
    return Entry(name, h)


def parse(text: str) -> list[Entry]:
    """Entries in file order; blank, comment and malformed lines are skipped. CRLF is fine."""
    return [e for e in (_split(line) for line in text.splitlines()) if isinstance(e, Entry)]


def invalid_lines(text: str) -> list[int]:
    """1-based numbers of lines without ``:`` (they make the registry reject the file)."""
    return [i for i, line in enumerate(text.splitlines(), 1) if _split(line) is False]


def format_line(name: str, hash: str) -> str:
    return f"{name}:{hash}"


@dataclass
class MergeResult:
    text: str
    changed: bool
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_unmanaged: list[str] = field(default_factory=list)
    non_bcrypt: list[str] = field(default_factory=list)  # lines kept that the registry ignores
    dropped_invalid: list[int] = field(default_factory=list)  # line numbers without ':'
    duplicates: list[str] = field(default_factory=list)  # plan users that had several lines


def _check_user(name: str, h: str) -> None:
    if not name or ":" in name or any(c.isspace() or ord(c) < 32 for c in name):
        raise RegwizardError(f"cannot write htpasswd user {name!r}: bad name")
    if not is_bcrypt(h):
        raise RegwizardError(
            f"user {name}: the plan's hash is not bcrypt; the registry would ignore it",
            f"run `regwizard user hash {name}` and put its output in the plan",
        )
    if cost_of(h) > MAX_COST:
        raise RegwizardError(
            f"user {name}: the plan's hash has bcrypt cost {cost_of(h)}, above {MAX_COST}; "
            f"the registry would spend {cost_words(cost_of(h))} of CPU on every request",
            f"run `regwizard user hash {name}` (default cost {DEFAULT_COST}) and put its "
            "output in the plan",
        )


def merge(existing_text: str, users: Iterable[User], remove: Iterable[str] = ()) -> MergeResult:
    """Ensure the plan's users (plan hash wins), drop ``remove``d ones, keep the rest.

    Stable order; new users are appended in plan order. When nothing changes the
    text is returned byte-identical with ``changed=False``. A plan user named in
    ``remove`` is kept (the plan wins). Lines without ``:`` are dropped because the
    registry would reject the whole file.
    """
    wanted: dict[str, str] = {}
    for u in users:
        _check_user(u.name, u.bcrypt)
        wanted[u.name] = u.bcrypt
    to_remove = set(remove) - set(wanted)

    lines = existing_text.splitlines(keepends=True)
    eol = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    res = MergeResult(text=existing_text, changed=False)
    out: list[str] = []
    seen: set[str] = set()
    for no, line in enumerate(lines, 1):
        entry = _split(line)
        if entry is None:
            out.append(line)
            continue
        if entry is False:
            res.dropped_invalid.append(no)
            continue
        assert isinstance(entry, Entry)
        name = entry.name
        if name in wanted:
            if name in seen:
                if name not in res.duplicates:
                    res.duplicates.append(name)
                continue
            seen.add(name)
            if entry.hash == wanted[name]:
                out.append(line)
            else:
                ending = line[len(line.rstrip("\r\n")) :] or eol
                out.append(format_line(name, wanted[name]) + ending)
                res.updated.append(name)
        elif name in to_remove:
            if name not in res.removed:
                res.removed.append(name)
        else:
            out.append(line)
            if name not in res.kept_unmanaged:
                res.kept_unmanaged.append(name)
            if not is_bcrypt(entry.hash) and name not in res.non_bcrypt:
                res.non_bcrypt.append(name)

    new = [n for n in wanted if n not in seen]
    if new:
        if out and not out[-1].endswith("\n"):
            out[-1] += eol
        out.extend(format_line(n, wanted[n]) + eol for n in new)
        res.added = new
    text = "".join(out)
    if text != existing_text and text and not text.endswith("\n"):
        text += eol
    res.text = text
    res.changed = text != existing_text
    return res
