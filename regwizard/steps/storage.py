"""6. The storage directory on the registry host (mounted at /var/lib/registry).

Data is never moved or deleted here: a directory that exists is kept as it is. With
``[storage] driver = "s3"`` the images live in the bucket and there is no directory to
make; switching a registry that serves images from the directory is refused (they would
disappear from view)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from regwizard.events import FileDiff
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged


@dataclass(frozen=True)
class StorageChange(Change):
    pass


class Storage(Step[StorageChange]):
    name = "storage"
    title = "Storage directory"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        if ctx.plan.storage.is_s3:
            return ()
        return (shlex.join(["mkdir", "-p", ctx.plan.registry.storage]),)

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | StorageChange:
        path = ctx.plan.registry.storage
        if ctx.plan.storage.is_s3:
            return self._check_s3(ctx, e, path)
        if e.host.exists(path):
            return Unchanged(f"{path} exists (data is never moved or deleted)")
        return StorageChange(
            f"create {path}",
            self.script(ctx),
            diffs=(FileDiff(e.label, path, None, None, "a new directory (mode 0755)"),),
        )

    def _check_s3(self, ctx: Ctx, e: HostEntry, path: str) -> Unchanged:
        from regwizard.steps.container import registry_facts

        st = ctx.plan.storage
        # the filesystem driver's first push makes DIR/docker/registry/v2
        held = e.host.exists(f"{path}/docker")
        facts, _c = registry_facts(ctx, e)
        switching = facts is not None and facts.storage.driver == "filesystem"
        if held and switching:  # this registry serves those images today
            raise StepError(
                f"{path} holds images (its docker/ directory), but the plan keeps them in S3 "
                f"bucket {st.bucket}: after the switch they would disappear from view",
                f"copy them into the bucket first (e.g. aws s3 sync {path}/docker "
                f"s3://{st.bucket}{st.root_directory}/docker --endpoint-url {st.endpoint}), "
                f'then move {path}/docker aside and rerun; or keep [storage] driver = "filesystem". '
                "Nothing was changed or deleted",
            )
        kept = f"images are kept in S3 bucket {st.bucket} at {st.endpoint}"
        if held:  # another registry's, or one that is gone: not ours to use or move
            kept += f" ({path}/docker holds older images; they stay there, unused)"
        return Unchanged(kept)

    def apply(self, ctx: Ctx, e: HostEntry, change: StorageChange) -> str:
        e.host.makedirs(ctx.plan.registry.storage, 0o755)
        return f"created {ctx.plan.registry.storage}"
