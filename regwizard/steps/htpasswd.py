"""5. htpasswd users, bcrypt only: planned users added or updated, others kept.

The auth *directory* is mounted, so the registry sees a file replaced by rename, and it
re-reads the file when its mtime changes: no restart."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from regwizard import htpasswd
from regwizard.diffs import htpasswd_users
from regwizard.events import FileDiff
from regwizard.steps.base import Change, Ctx, HostEntry, Step, Unchanged, backup


@dataclass(frozen=True)
class HtpasswdChange(Change):
    text: str = ""  # the whole new file


class Htpasswd(Step[HtpasswdChange]):
    name = "htpasswd"
    title = "htpasswd users (bcrypt)"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        return self._commands(ctx, [u.name for u in ctx.plan.users], [])

    def _commands(self, ctx: Ctx, put: list[str], delete: list[str]) -> tuple[str, ...]:
        import re

        path = ctx.layout.htpasswd_path
        out = [shlex.join(["mkdir", "-p", "-m", "700", ctx.layout.auth_dir])]
        for name in put:
            var = "PASSWORD_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())
            out.append(f'{shlex.join(["htpasswd", "-Bb", path, name])} "${var}"')
        out += [shlex.join(["htpasswd", "-D", path, name]) for name in delete]
        return tuple(out)

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | HtpasswdChange:
        lay = ctx.layout
        raw = e.host.read_file(lay.htpasswd_path)
        text = (raw or b"").decode(errors="replace")
        res = htpasswd.merge(text, ctx.plan.users, ctx.plan.remove_users)
        if res.non_bcrypt:
            ctx.log(
                self.name,
                e,
                "warning: non-bcrypt lines (the registry ignores them, login gets 401): "
                + ", ".join(res.non_bcrypt),
            )
        if not res.changed:
            return Unchanged(f"{len(ctx.plan.users)} user(s) current")
        parts = []
        for label, names in (("add", res.added), ("update", res.updated), ("remove", res.removed)):
            if names:
                parts.append(f"{label} {', '.join(names)}")
        commands = self._commands(ctx, [*res.added, *res.updated], list(res.removed))
        diff = FileDiff(  # user names only: never a hash
            e.label,
            lay.htpasswd_path,
            None if raw is None else htpasswd_users(text, non_bcrypt=res.non_bcrypt),
            htpasswd_users(res.text, res.updated, res.non_bcrypt),
            "user names only (hashes are never shown)",
        )
        return HtpasswdChange("; ".join(parts) or "rewrite", commands, res.text, diffs=(diff,))

    def apply(self, ctx: Ctx, e: HostEntry, change: HtpasswdChange) -> str:
        lay = ctx.layout
        e.host.makedirs(lay.config_dir, 0o700)
        e.host.makedirs(lay.auth_dir, 0o700)
        backup(ctx, e, lay.htpasswd_path, self.name, into=lay.backups_dir)
        e.host.write_file(lay.htpasswd_path, change.text.encode(), 0o600)
        return change.detail
