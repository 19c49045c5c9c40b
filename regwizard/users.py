"""Day two: add a registry user, change a password, remove a user, without a restart.

``edited(plan, edits)`` is pure (plan in, plan out) and refuses what cannot work, with a
cause and a fix. ``run(...)`` writes only htpasswd on the registry host (the engine runs
the ``htpasswd`` step and the ``logins`` proof: no container is touched, the registry
re-reads the file when it changes), then saves the plan file in place.

A removed user leaves ``[[users]]`` and goes into ``[policy] remove_users``: the htpasswd
step keeps lines it does not manage, so only that list makes it (and every later
``apply``) delete the line.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from regwizard.errors import RegwizardError
from regwizard.events import RunResult
from regwizard.htpasswd import DEFAULT_COST, check_new_password, hash_password
from regwizard.plan import Plan, Secrets, User, check_username

Action = Literal["add", "passwd", "remove"]
ACTIONS: tuple[Action, ...] = ("add", "passwd", "remove")


@dataclass(frozen=True)
class UserEdit:
    """One change. ``password``: the new one (add, passwd); for remove, optionally the
    user's current one, which makes the proof stronger (that very password is refused)."""

    action: Action
    name: str
    password: str = field(default="", repr=False)


@dataclass
class UsersOutcome:
    result: RunResult
    plan: Plan  # the plan as edited (saved when ``saved``)
    saved: bool = False
    proof: str = ""  # the logins step's line: "login as alice works (200); ..."


def refusal(plan: Plan, action: Action, name: str) -> RegwizardError | None:
    """Why ``action`` on ``name`` cannot be done on this plan (None: it can)."""
    msg = check_username(name)
    if msg:
        return RegwizardError(
            f"user name {name!r}: {msg}", "use a short lowercase name such as alice"
        )
    names = [u.name for u in plan.users]
    known = ", ".join(names) or "none"
    if action == "add":
        if name in names:
            return RegwizardError(
                f"the plan already has a user {name}",
                f"to give {name} a new password: regwizard user passwd PLAN {name}",
            )
        return None
    if name not in names:
        return RegwizardError(
            f"the plan has no user {name} (its users: {known})",
            f"check the name; to create it: regwizard user add PLAN {name}"
            + (
                "; to delete an htpasswd line the plan does not manage, list it in "
                "[policy] remove_users and run regwizard apply PLAN"
                if action == "remove"
                else ""
            ),
        )
    if action == "remove":
        if len(names) == 1:
            return RegwizardError(
                f"{name} is the plan's only user: the registry would let nobody in, and "
                "verification needs a user",
                f"add another user first (regwizard user add PLAN NAME), then remove {name}",
            )
        if name == plan.verify_user:
            return RegwizardError(
                f"{name} is the user verification logs in as ([verify] user)",
                f"set [verify] user in the plan to another user ({', '.join(n for n in names if n != name)}), "
                f"then remove {name}",
            )
    return None


def password_problem(name: str, password: str) -> RegwizardError | None:
    problem = check_new_password(password)
    if problem is None:
        return None
    return RegwizardError(
        f"password for {name}: {problem[0].lower()}{problem[1:]}",
        "choose another password (at least 8 characters)",
    )


def edited(plan: Plan, edits: list[UserEdit], *, cost: int = DEFAULT_COST) -> Plan:
    """A copy of ``plan`` with ``edits`` applied in order. Raises RegwizardError."""
    new = _applied(plan, edits, lambda pw: hash_password(pw, cost), check_passwords=True)
    new.validate()
    return new


def preview(plan: Plan, edits: list[UserEdit]) -> Plan:
    """What ``edited`` will give, without hashing (fast: for a screen's list). Users added
    or changed carry an empty hash here. Raises RegwizardError as ``edited`` does."""
    return _applied(plan, edits, lambda pw: "", check_passwords=False)


def _applied(plan: Plan, edits: list[UserEdit], hash_of, *, check_passwords: bool) -> Plan:  # noqa: ANN001
    new = copy.deepcopy(plan)
    for ed in edits:
        if ed.action not in ACTIONS:
            raise RegwizardError(f"unknown user action {ed.action!r}", "use add, passwd or remove")
        why = refusal(new, ed.action, ed.name)
        if why is not None:
            raise why
        if ed.action in ("add", "passwd"):
            why = password_problem(ed.name, ed.password) if check_passwords else None
            if why is not None:
                raise why
            bcrypt = hash_of(ed.password)
        if ed.action == "add":
            new.users.append(User(ed.name, bcrypt))
            new.remove_users = [n for n in new.remove_users if n != ed.name]
        elif ed.action == "passwd":
            user = new.user(ed.name)
            assert user is not None
            user.bcrypt = bcrypt
        else:
            if not new.verify.user:  # "the first user": pin it, so removal never moves it
                new.verify.user = new.verify_user
            new.users = [u for u in new.users if u.name != ed.name]
            if ed.name not in new.remove_users:
                new.remove_users.append(ed.name)
    return new


def expectations(edits: list[UserEdit]):  # noqa: ANN201
    """What the logins proof checks after ``edits``: the last word on each user."""
    from regwizard.steps.logins import Login

    last: dict[str, UserEdit] = {}
    for ed in edits:
        last.pop(ed.name, None)
        last[ed.name] = ed
    return [Login(ed.name, ed.password, ed.action != "remove") for ed in last.values()]


def run(
    plan: Plan,
    edits: list[UserEdit],
    secrets: Secrets,
    *,
    path: str | Path | None = None,
    emit=lambda e: None,
    cancel: threading.Event | None = None,
    lock_wait: float | None = None,
    connect=None,
    net=None,
    cost: int = DEFAULT_COST,
) -> UsersOutcome:
    """Apply ``edits``: htpasswd on the registry host, the logins proof, then the plan
    file (edited in place) once htpasswd holds the change, even if the proof fails, so
    the plan says what the host has and a rerun of ``apply`` keeps it."""
    from regwizard import engine
    from regwizard.plan import save_plan
    from regwizard.steps import named
    from regwizard.steps.logins import Logins

    new = edited(plan, edits, cost=cost)
    steps = [*named("htpasswd"), Logins(expectations(edits))]
    kwargs = {} if lock_wait is None else {"lock_wait": lock_wait}
    result = engine.run(
        new, secrets, emit=emit, cancel=cancel, connect=connect, net=net, steps=steps, **kwargs
    )
    written = any(r.step == "htpasswd" for r in result.steps)
    out = UsersOutcome(result, new)
    out.proof = next((r.detail for r in result.steps if r.step == "logins"), "")
    if written and path is not None:
        save_plan(new, path)
        out.saved = True
    return out
