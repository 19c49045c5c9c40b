"""6. The storage directory on the registry host (mounted at /var/lib/registry).

Data is never moved or deleted here: a directory that exists is kept as it is."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from regwizard.events import FileDiff
from regwizard.steps.base import Change, Ctx, HostEntry, Step, Unchanged


@dataclass(frozen=True)
class StorageChange(Change):
    pass


class Storage(Step[StorageChange]):
    name = "storage"
    title = "Storage directory"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        return (shlex.join(["mkdir", "-p", ctx.plan.registry.storage]),)

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | StorageChange:
        path = ctx.plan.registry.storage
        if e.host.exists(path):
            return Unchanged(f"{path} exists (data is never moved or deleted)")
        return StorageChange(
            f"create {path}",
            self.script(ctx),
            diffs=(FileDiff(e.label, path, None, None, "a new directory (mode 0755)"),),
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: StorageChange) -> str:
        e.host.makedirs(ctx.plan.registry.storage, 0o755)
        return f"created {ctx.plan.registry.storage}"
