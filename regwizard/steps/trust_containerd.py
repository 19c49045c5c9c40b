"""6. containerd trust: ``<config_path>/<domain>[:port]/ca.crt`` and a hosts.toml whose
[host] section names it (read per pull: no restart)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from regwizard.diffs import cert_summary, redact
from regwizard.events import FileDiff
from regwizard.facts import runtimes
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged, backup
from regwizard.steps.containerd_config import containerd_facts
from regwizard.steps.trust import anchor, unread_diff


@dataclass(frozen=True)
class ContainerdTrustChange(Change):
    directory: str = ""
    write_ca: bool = True
    write_hosts: bool = True


class TrustContainerd(Step[ContainerdTrustChange]):
    name = "trust-containerd"
    title = "containerd trust (hosts.toml)"
    scope = "clients"
    runtime = "containerd"

    def _dir(self, base: str, ctx: Ctx) -> str:
        return f"{base}/{ctx.plan.registry.address}"

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        return self._commands(ctx, runtimes.CONTAINERD_CERTS_D)

    def _commands(self, ctx: Ctx, base: str) -> tuple[str, ...]:
        """What apply does, for the hosts directory this containerd reads."""
        d = self._dir(base, ctx)
        toml = runtimes.hosts_toml(ctx.plan.registry.address, f"{d}/ca.crt")
        return (
            shlex.join(["mkdir", "-p", d]),
            shlex.join(["scp", f"REGISTRY:{_anchor_source(ctx)}", f"{d}/ca.crt"]),
            f"cat > {shlex.quote(d + '/hosts.toml')} <<'EOF'\n{toml}EOF",
        )

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | ContainerdTrustChange:
        want = anchor(ctx)
        f = containerd_facts(ctx, e)
        d = self._dir(f.hosts_dir, ctx)
        toml = runtimes.hosts_toml(ctx.plan.registry.address, f"{d}/ca.crt")
        toml_diff = FileDiff(e.label, f"{d}/hosts.toml", _text(f.hosts_toml), toml)
        if not want:
            if ctx.dry_run:
                ca_diff = FileDiff(
                    e.label,
                    f"{d}/ca.crt",
                    cert_summary(f.ca),
                    unread_diff(ctx, e, f"{d}/ca.crt").after,
                )
                return ContainerdTrustChange(
                    "the certificate will be created first",
                    self._commands(ctx, f.hosts_dir),
                    d,
                    diffs=(ca_diff, toml_diff),
                )
            raise StepError("no certificate to trust yet", "run the certificate step first")
        toml_problem = runtimes.hosts_toml_names(
            f.hosts_toml, ctx.plan.registry.address, f"{d}/ca.crt"
        )
        if f.ca == want and not toml_problem:
            return Unchanged(f"{d}/ca.crt and hosts.toml are current")
        why = []
        if f.ca != want:
            why.append(f"{d}/ca.crt {'missing' if f.ca is None else 'differs'}")
        if toml_problem:
            why.append(toml_problem)
        diffs = ()
        if f.ca != want:
            diffs += (FileDiff(e.label, f"{d}/ca.crt", cert_summary(f.ca), cert_summary(want)),)
        if toml_problem:
            diffs += (toml_diff,)
        return ContainerdTrustChange(
            "; ".join(why),
            self._commands(ctx, f.hosts_dir),
            d,
            f.ca != want,
            bool(toml_problem),
            diffs=diffs,
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: ContainerdTrustChange) -> str:
        d = change.directory
        e.host.makedirs(d, 0o755)
        done = []
        if change.write_ca:
            backup(ctx, e, f"{d}/ca.crt", self.name)
            e.host.write_file(f"{d}/ca.crt", anchor(ctx), 0o644)
            done.append(f"wrote {d}/ca.crt")
        if change.write_hosts:
            backup(ctx, e, f"{d}/hosts.toml", self.name)
            toml = runtimes.hosts_toml(ctx.plan.registry.address, f"{d}/ca.crt")
            e.host.write_file(f"{d}/hosts.toml", toml.encode(), 0o644)
            done.append("wrote hosts.toml")
        ctx.forget(e)
        return "; ".join(done) + " (read per pull: no restart)"


def _anchor_source(ctx: Ctx) -> str:
    lay = ctx.layout
    return lay.ca_path if ctx.plan.certificate.mode == "local-ca" else lay.cert_path


def _text(data: bytes | None) -> str | None:
    """A TOML file as it is, for a diff (secret-like values redacted); None: missing."""
    return None if data is None else redact(data.decode(errors="replace"))
