"""8. A mirror's upstream CA: ``registry.proxy_ca_file`` (on this machine) copied to
``CONFIG_DIR/upstream/ca.crt``, which the container mounts read-only and names in
``SSL_CERT_DIR``. The registry reads its roots once, at start: the container's label
carries the file's hash, so a new CA recreates the container. Nothing to do for an
ordinary registry, or a mirror whose upstream the image's system roots already trust.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass

from regwizard import pki
from regwizard.diffs import cert_summary
from regwizard.errors import RegwizardError
from regwizard.events import FileDiff
from regwizard.facts.read import snapshot
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged, backup


def upstream_ca(ctx: Ctx) -> bytes:
    """The plan's upstream CA (PEM, certificates only), b"" when there is none.

    Raises StepError for a file that cannot be read or holds no certificate."""
    path = ctx.plan.registry.proxy_ca_file
    if not path:
        return b""
    fix = "set registry.proxy_ca_file to a PEM file with the upstream's CA certificate"
    try:
        with open(os.path.expanduser(path), "rb") as fh:
            data = fh.read(1 << 20)
    except OSError as ex:
        raise StepError(f"cannot read the upstream CA {path}: {ex.strerror}", fix) from ex
    try:
        certs = pki.load_certs(data)
    except RegwizardError:
        certs = []
    if not certs or b"-----BEGIN CERTIFICATE-----" not in data:
        raise StepError(f"the upstream CA {path} holds no PEM certificate", fix)
    # certificates only: a private key pasted into the same file never leaves this machine
    return b"".join(pki.cert_to_pem(c) for c in certs)


def upstream_ca_hash(ctx: Ctx) -> str:
    """For the container's label ("" without a CA file; "unreadable" when it cannot be
    read: this step then says why)."""
    try:
        data = upstream_ca(ctx)
    except StepError:
        return "unreadable"
    return hashlib.sha256(data).hexdigest()[:16] if data else ""


@dataclass(frozen=True)
class UpstreamCAChange(Change):
    pem: bytes = b""


class UpstreamCA(Step[UpstreamCAChange]):
    name = "upstream-ca"
    title = "Upstream CA (mirror)"

    def targets(self, ctx: Ctx) -> list[HostEntry]:
        """Only a mirror with its own CA file: other runs never show this step."""
        reg = ctx.plan.registry
        return [ctx.registry] if reg.proxy_remote_url and reg.proxy_ca_file else []

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        reg, lay = ctx.plan.registry, ctx.layout
        if not (reg.proxy_remote_url and reg.proxy_ca_file):
            return ()
        return (
            shlex.join(["mkdir", "-p", "-m", "755", lay.upstream_dir]),
            f"install -m 644 {shlex.quote(reg.proxy_ca_file)} {shlex.quote(lay.upstream_ca_path)}"
            "   # copied from this machine",
        )

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | UpstreamCAChange:
        reg, lay = ctx.plan.registry, ctx.layout
        if not reg.proxy_remote_url:
            return Unchanged("not a mirror")
        want = upstream_ca(ctx)
        if not want:
            return Unchanged("the upstream is trusted through the image's system roots")
        have = snapshot(e.host, files=[lay.upstream_ca_path]).files.get(lay.upstream_ca_path)
        if have == want:
            return Unchanged(f"{lay.upstream_ca_path} is current")
        verb = "write" if have is None else "replace"
        diff = FileDiff(e.label, lay.upstream_ca_path, cert_summary(have), cert_summary(want))
        return UpstreamCAChange(
            f"{verb} {lay.upstream_ca_path} from {reg.proxy_ca_file}",
            self.script(ctx),
            want,
            diffs=(diff,),
        )

    def apply(self, ctx: Ctx, e: HostEntry, change: UpstreamCAChange) -> str:
        lay = ctx.layout
        e.host.makedirs(lay.config_dir, 0o700)
        e.host.makedirs(lay.upstream_dir, 0o755)
        backup(ctx, e, lay.upstream_ca_path, self.name, into=lay.backups_dir)
        e.host.write_file(lay.upstream_ca_path, change.pem, 0o644)
        ctx.forget(e)
        return change.detail
