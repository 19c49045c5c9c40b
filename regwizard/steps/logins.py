"""The proof after a change of users: each changed user logs in (200) and each removed
one is refused (401), by ``GET /v2/`` with Basic auth over a connection verified against
the plan's trust anchor. Not in ``STEPS`` (apply's Verify proves the whole setup): the
user commands run it after ``htpasswd``.

The registry re-reads htpasswd when its mtime changes, on the next request: the check
is repeated until a deadline, never a fixed sleep."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from regwizard.diagnose import clean
from regwizard.facts.tls import Untrusted
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged
from regwizard.steps.trust import anchor

WAIT_SECONDS = 15.0
POLL_SECONDS = 0.3


@dataclass(frozen=True)
class Login:
    """One expectation. ``password`` is kept in memory only (never in a detail or log);
    "" for a removed user whose password is unknown (a random one is sent)."""

    user: str
    password: str
    works: bool

    def __repr__(self) -> str:  # never the password
        return f"Login({self.user!r}, works={self.works})"


@dataclass(frozen=True)
class LoginsChange(Change):
    pass


class Logins(Step[LoginsChange]):
    name = "logins"
    title = "Logins as planned"
    reads_only = True
    needs_registry = True

    def __init__(self, expect: Sequence[Login]) -> None:
        self.expect = tuple(expect)

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        addr = ctx.plan.registry.address
        return tuple(
            f"curl -u {x.user} https://{addr}/v2/   # expect {200 if x.works else 401}"
            for x in self.expect
        )

    def _status(self, ctx: Ctx, x: Login) -> int:
        reg = ctx.plan.registry
        pw = x.password or secrets.token_urlsafe(24)
        status, _h, _b = ctx.net.request(
            reg.domain, ctx.target, reg.port, anchor(ctx), "/v2/", auth=(x.user, pw)
        )
        return status

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | LoginsChange:
        done, wrong = [], []
        for x in self.expect:
            try:
                status = self._status(ctx, x)
            except Untrusted as ex:  # nothing was sent
                raise StepError(
                    f"the registry at {ctx.plan.registry.address} does not prove it is the "
                    f"plan's registry: {ex.reason}; no password was sent",
                    "run `regwizard doctor PLAN` to see why, then `regwizard apply PLAN`",
                ) from None
            except OSError as ex:
                wrong.append(f"login as {x.user}: no answer ({clean(str(ex), 120)})")
                continue
            if x.works and status == 200:
                done.append(f"login as {x.user} works (200)")
            elif not x.works and status == 401:
                done.append(f"login as {x.user} refused (401)")
            else:
                want = "200" if x.works else "401"
                wrong.append(f"login as {x.user} -> {status}, expected {want}")
        if wrong:
            return LoginsChange("; ".join(wrong), self.script(ctx))
        return Unchanged("; ".join(done))

    def apply(self, ctx: Ctx, e: HostEntry, change: LoginsChange) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        last = change.detail
        while time.monotonic() < deadline:
            ctx.check_cancel()
            time.sleep(POLL_SECONDS)
            again = self.check(ctx, e)
            if isinstance(again, Unchanged):
                return again.detail
            last = again.detail
        if "no answer" in last:
            raise StepError(
                f"the registry at {ctx.plan.registry.address} does not answer: {last}",
                "htpasswd is written; start the registry with `regwizard apply PLAN` "
                "(`regwizard doctor PLAN` shows what is wrong)",
                last,
            )
        raise StepError(
            f"the registry did not take the new users within {WAIT_SECONDS:.0f} s: {last}",
            "check that the container mounts the auth directory (not the file itself) and "
            "uses htpasswd auth: `regwizard doctor PLAN`; `regwizard apply PLAN` repairs it",
            last,
        )
