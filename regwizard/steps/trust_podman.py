"""7. podman trust (also CRI-O, buildah, skopeo): ``/etc/containers/certs.d/<domain>[:port]/
ca.crt``, read per connection. That directory is read before Docker's, and the first one
that exists wins: an empty one would hide Docker's file."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from regwizard.diffs import cert_summary
from regwizard.events import FileDiff
from regwizard.facts import read, runtimes
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged, backup
from regwizard.steps.trust import anchor, unread_diff
from regwizard.steps.trust_containerd import _anchor_source


def podman_facts(ctx: Ctx, e: HostEntry) -> read.Podman:
    return ctx.fact("podman", e, lambda: read.podman(e.host, ctx.plan.registry.address))


@dataclass(frozen=True)
class PodmanTrustChange(Change):
    pass


class TrustPodman(Step[PodmanTrustChange]):
    name = "trust-podman"
    title = "podman trust (containers certs.d)"
    scope = "clients"
    runtime = "podman"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        d = runtimes.podman_trust_dir(ctx.plan.registry.address)
        return (
            shlex.join(["mkdir", "-p", d]),
            shlex.join(["scp", f"REGISTRY:{_anchor_source(ctx)}", f"{d}/ca.crt"]),
        )

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | PodmanTrustChange:
        want = anchor(ctx)
        d = runtimes.podman_trust_dir(ctx.plan.registry.address)
        if not want:
            if ctx.dry_run:
                return PodmanTrustChange(
                    "the certificate will be created first",
                    self.script(ctx),
                    diffs=(unread_diff(ctx, e, f"{d}/ca.crt"),),
                )
            raise StepError("no certificate to trust yet", "run the certificate step first")
        f = podman_facts(ctx, e)
        if f.ca == want:
            return Unchanged(f"{d}/ca.crt is current")
        return PodmanTrustChange(
            f"{d}/ca.crt {'missing' if f.ca is None else 'differs'}",
            self.script(ctx),
            diffs=(FileDiff(e.label, f"{d}/ca.crt", cert_summary(f.ca), cert_summary(want)),),
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: PodmanTrustChange) -> str:
        d = runtimes.podman_trust_dir(ctx.plan.registry.address)
        e.host.makedirs(d, 0o755)
        backup(ctx, e, f"{d}/ca.crt", self.name)  # ca.crt.bak-DATE: podman reads *.crt only
        e.host.write_file(f"{d}/ca.crt", anchor(ctx), 0o644)
        ctx.forget(e)
        return f"wrote {d}/ca.crt (read per connection: no restart)"
