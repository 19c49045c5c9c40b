"""4. Docker trust: ``/etc/docker/certs.d/<domain>[:port]/ca.crt`` on every Docker host.

Docker reads the directory at each connection: no daemon restart. What is trusted is
the trust anchor (the self-signed certificate, the local CA, or the provided chain),
computed from the certificate step's files, never from a side effect of its check.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from regwizard.diffs import cert_summary
from regwizard.events import FileDiff
from regwizard.facts import read
from regwizard.facts.certsd import CertsD
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged, backup
from regwizard.steps.certificate import planned_summary, trust_anchor


@dataclass(frozen=True)
class TrustChange(Change):
    write: bool = True  # write ca.crt
    stray: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # files to move aside


def certs_d(ctx: Ctx, e: HostEntry) -> CertsD:
    return ctx.fact("certs.d", e, lambda: read.certs_d(e.host, ctx.plan.registry.address))


def anchor(ctx: Ctx) -> bytes:
    return ctx.fact("trust-anchor", ctx.registry, lambda: trust_anchor(ctx))


class Trust(Step[TrustChange]):
    name = "trust"
    title = "Docker trust (certs.d)"
    scope = "all"

    def targets(self, ctx: Ctx) -> list[HostEntry]:
        return [e for e in ctx.hosts if e.needs_docker]

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        lay = ctx.layout
        src = lay.ca_path if ctx.plan.certificate.mode == "local-ca" else lay.cert_path
        return (
            shlex.join(["mkdir", "-p", lay.trust_dir]),
            shlex.join(["scp", f"REGISTRY:{src}", lay.trust_file]),
        )

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | TrustChange:
        want = anchor(ctx)
        path = ctx.layout.trust_file
        if not want:
            if ctx.dry_run:
                return TrustChange(
                    "the certificate will be created first",
                    self.script(ctx),
                    diffs=(unread_diff(ctx, e, path),),
                )
            raise StepError("no certificate to trust yet", "run the certificate step first")
        cd = certs_d(ctx, e)
        if cd.ca == want and not cd.stray:
            return Unchanged(f"{path} is current")
        why, cmds, diffs = [], (), []
        if cd.ca != want:
            why.append(f"{path} {'missing' if cd.ca is None else 'differs'}")
            cmds = self.script(ctx)
            diffs.append(FileDiff(e.label, path, cert_summary(cd.ca), cert_summary(want)))
        for name, err in cd.stray:
            why.append(f"{name} breaks the directory ({err})")
            stray = f"{ctx.layout.trust_dir}/{name}"
            cmds += (shlex.join(["mv", stray, f"{stray}.bak"]),)
            diffs.append(
                FileDiff(e.label, stray, None, None, f"moved aside (Docker refuses it: {err})")
            )
        return TrustChange(
            "; ".join(why), cmds, write=cd.ca != want, stray=cd.stray, diffs=tuple(diffs)
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: TrustChange) -> str:
        lay = ctx.layout
        done = []
        e.host.makedirs(lay.trust_dir, 0o755)
        if change.write:
            backup(ctx, e, lay.trust_file, self.name)  # ca.crt.bak-DATE: Docker ignores it
            e.host.write_file(lay.trust_file, anchor(ctx), 0o644)
            done.append(f"wrote {lay.trust_file} (read per connection: no Docker restart)")
        for name, _err in change.stray:
            stray = f"{lay.trust_dir}/{name}"
            backup(ctx, e, stray, self.name)  # NAME.bak-DATE: Docker ignores it
            e.host.run(["rm", "-f", "--", stray])
            done.append(f"moved {name} aside (a CA file must end in .crt)")
        ctx.forget(e)
        return "; ".join(done)


def unread_diff(ctx: Ctx, e: HostEntry, path: str) -> FileDiff:
    """A dry run with no certificate yet: ``path`` gets what the certificate step makes
    (the local CA, else the self-signed certificate); the file there now is not read."""
    after = planned_summary(ctx, ca=ctx.plan.certificate.mode == "local-ca")
    return FileDiff(e.label, path, None, after, "now: not read (the certificate is made first)")
