"""3. The TLS certificate: always with SANs; self-signed, from a local CA, or provided.

Key and certificate are replaced as one pair: a new pair is written into a fresh
generation directory, then ``certs/current`` is switched to it by one rename. A run cut
at any point leaves ``current`` on a complete pair, old or new.

No private key is read back to check it: the host computes the SHA-256 of the key's
public half (``openssl pkey -pubout``) and only that comes back. The CA key is read
into memory in one case only: when apply must sign a new server certificate with it.
"""

from __future__ import annotations

import os
import secrets
import shlex
import time
from dataclasses import dataclass, field
from typing import Literal

from regwizard import pki
from regwizard.diffs import cert_summary
from regwizard.events import FileDiff
from regwizard.facts.read import NO_OPENSSL, Snapshot, snapshot
from regwizard.layout import CURRENT, Layout
from regwizard.plan import cert_extra_sans, san_list
from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged, move_into


@dataclass(frozen=True)
class TlsFiles:
    """The plan's certificate files on the registry host."""

    pair: Literal["current", "legacy", ""]  # where the live pair is
    cert: bytes | None = None
    key: str | None = None  # the key's public half, SHA-256; None missing; "bad"; NO_OPENSSL
    generation: str = ""  # what certs/current points to
    ca: bytes | None = None
    ca_key: str | None = None
    ca_where: Literal["ca", "legacy", ""] = ""
    stray: tuple[str, ...] = ()  # entries of the mounted certs/ that must not be there
    entries: tuple[str, ...] = ()


def read_tls_files(host, lay: Layout) -> TlsFiles:  # noqa: ANN001
    snap = snapshot(
        host,
        files=[lay.cert_path, lay.legacy_cert, lay.ca_path, lay.legacy_ca],
        dirs=[lay.certs_dir],
        links=[lay.current_link],
        keys=[lay.key_path, lay.legacy_key, lay.ca_key_path, lay.legacy_ca_key],
    )
    return interpret_tls_files(snap, lay)


def interpret_tls_files(snap: Snapshot, lay: Layout) -> TlsFiles:
    gen = snap.links.get(lay.current_link) or ""
    entries = tuple(snap.dirs.get(lay.certs_dir) or ())
    if gen and snap.files.get(lay.cert_path) is not None:
        pair: Literal["current", "legacy", ""] = "current"
        cert, key = snap.files[lay.cert_path], snap.keys.get(lay.key_path)
    elif snap.files.get(lay.legacy_cert) is not None:
        pair, cert, key = "legacy", snap.files[lay.legacy_cert], snap.keys.get(lay.legacy_key)
    else:
        pair, cert, key = "", None, None
    if snap.files.get(lay.ca_path) is not None:
        ca_where: Literal["ca", "legacy", ""] = "ca"
        ca, ca_key = snap.files[lay.ca_path], snap.keys.get(lay.ca_key_path)
    elif snap.files.get(lay.legacy_ca) is not None or snap.keys.get(lay.legacy_ca_key):
        ca_where, ca, ca_key = (
            "legacy",
            snap.files.get(lay.legacy_ca),
            snap.keys.get(lay.legacy_ca_key),
        )
    else:
        ca_where, ca, ca_key = "", None, None
    keep = {CURRENT, gen}
    if pair == "legacy":
        keep |= {f"{lay.domain}.crt", f"{lay.domain}.key"}
    if ca_where == "legacy":
        keep |= {"ca.crt", "ca.key"}  # moved by their own change
    stray = tuple(n for n in entries if n not in keep)
    return TlsFiles(pair, cert, key, gen, ca, ca_key, ca_where, stray, entries)


def tls_files(ctx: Ctx, e: HostEntry | None = None) -> TlsFiles:
    """The certificate files on registry host ``e`` (default: the primary)."""
    e = e or ctx.registry
    return ctx.fact("tls-files", e, lambda: read_tls_files(e.host, ctx.layout))


def read_local(path: str) -> bytes:
    try:
        with open(os.path.expanduser(path), "rb") as fh:
            return fh.read()
    except OSError as ex:
        raise StepError(f"cannot read {path}: {ex.strerror}", "check the path in the plan") from ex


def trust_anchor(ctx: Ctx) -> bytes:
    """What clients must trust: the provided chain, the local CA, or the self-signed cert."""
    spec = ctx.plan.certificate
    if spec.mode == "provided":
        return read_local(spec.cert_file)
    f = tls_files(ctx)
    return (f.ca or b"") if spec.mode == "local-ca" else (f.cert or b"")


def _key_problem(key: str | None, cert: bytes, what: str = "key") -> str | None:
    if key is None:
        return f"the {what} is missing"
    if key == "bad":
        return f"the {what} cannot be read (not a PEM key without a passphrase)"
    if key == NO_OPENSSL:
        return None  # the host cannot tell; the TLS handshake proves it once served
    if key != pki.public_key_sha256(cert):
        return f"the {what} does not match its certificate"
    return None


def new_generation() -> str:
    return f"g-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class CertificateChange(Change):
    issue: bool = False  # make a new pair (from the plan, or install the provided one)
    provided: tuple[bytes, bytes] | None = None  # mode provided: (cert, key) to install
    new_ca: bool = False
    move_ca: bool = False  # an earlier version's CA in certs/: move it to ca/
    move_legacy: bool = False  # an earlier version's pair in certs/: into a generation
    tidy: tuple[str, ...] = field(default_factory=tuple)  # entries of certs/ to move out
    from_primary: bool = False  # a replica: copy the primary's pair (read in apply only)


class Certificate(Step[CertificateChange]):
    name = "certificate"
    title = "TLS certificate"

    # -- the shell equivalent (no secrets; "$GEN" is the new generation's name)

    def script(self, ctx: Ctx) -> tuple[str, ...]:
        lay, spec, reg = ctx.layout, ctx.plan.certificate, ctx.plan.registry
        q = shlex.quote
        gen = f'{q(lay.certs_dir)}/"$GEN"'
        key, crt = f"{gen}/{q(reg.domain + '.key')}", f"{gen}/{q(reg.domain + '.crt')}"
        out = [
            "GEN=g-$(date +%Y%m%d-%H%M%S)",
            shlex.join(["mkdir", "-p", "-m", "700", lay.certs_dir]) + f" {gen}",
        ]
        newkey = (
            "ec -pkeyopt ec_paramgen_curve:P-256"
            if spec.key == "ecdsa-p256"
            else "rsa:" + spec.key.split("-")[1]
        )
        san = q("subjectAltName=" + ",".join(san_list(ctx.plan)))
        subj = q(subject_text(ctx))
        if spec.mode == "provided":
            out.append(f"install -m 600 {q(spec.key_file)} {key}")
            out.append(f"install -m 644 {q(spec.cert_file)} {crt}")
        elif spec.mode == "local-ca":
            ca, cakey = q(lay.ca_path), q(lay.ca_key_path)
            out.append(
                f"[ -f {ca} ] || {{ mkdir -p -m 700 {q(lay.ca_dir)} && openssl req -x509 "
                f"-newkey {newkey} -nodes -sha256 -days {pki.CA_DAYS} -keyout {cakey} -out {ca} "
                f"-subj {q(ca_subject_text(ctx))} "
                "-addext basicConstraints=critical,CA:TRUE,pathlen:0; }"
            )
            out.append(
                f"openssl req -new -newkey {newkey} -nodes -keyout {key} -out {gen}/req.csr "
                f"-subj {subj}"
            )
            out.append(f"printf '%s\\n' {san} > {gen}/san.ext")
            out.append(
                f"openssl x509 -req -in {gen}/req.csr -CA {ca} -CAkey {cakey} -CAcreateserial "
                f"-sha256 -days {spec.days} -extfile {gen}/san.ext -out {crt}"
            )
        else:
            out.append(
                f"openssl req -x509 -newkey {newkey} -nodes -sha256 -days {spec.days} "
                f"-keyout {key} -out {crt} -subj {subj} -addext {san}"
            )
        out.append(f"chmod 600 {key}")
        out.append(f'ln -sfn "$GEN" {q(lay.current_link)}')
        return tuple(out)

    # -- check

    def prepare(self, ctx: Ctx) -> None:
        """Generate the keys this run will issue while the steps before this one run
        (an RSA-4096 key takes 0.2-1 s of CPU). Only when this step's own check, made
        now, says a new pair is due: a healthy rerun generates nothing."""
        spec = ctx.plan.certificate

        def decide() -> None:
            change = self.check(ctx, ctx.registry)
            if not isinstance(change, CertificateChange) or change.provided is not None:
                return
            if change.new_ca:
                ctx.start_ahead(f"key:ca:{spec.key}", lambda: pki.generate_key(spec.key))
            if change.issue:
                ctx.start_ahead(f"key:server:{spec.key}", lambda: pki.generate_key(spec.key))

        if spec.mode != "provided":
            ctx.start_ahead("certificate:decide", decide)

    def _key_ahead(self, ctx: Ctx, role: str):  # noqa: ANN202 - a PrivateKey or None
        ctx.take_ahead("certificate:decide")  # it may still be starting the key's work
        return ctx.take_ahead(f"key:{role}:{ctx.plan.certificate.key}")

    def check(self, ctx: Ctx, e: HostEntry) -> Unchanged | CertificateChange:
        if e.is_replica:
            return self._check_replica(ctx, e)
        plan, lay = ctx.plan, ctx.layout
        spec, reg = plan.certificate, plan.registry
        f = tls_files(ctx)
        tidy = f.stray
        moves = []
        if tidy:
            moves.append(
                f"move {', '.join(tidy)} out of the mounted {lay.certs_dir} into "
                f"{lay.backups_dir} (old keys must not sit where the registry can read them)"
            )
        move_ca = f.ca_where == "legacy"
        if move_ca:
            moves.append(f"move the CA from {lay.certs_dir} to {lay.ca_dir} (never mounted)")
        if spec.mode == "provided":
            want_cert, want_key = read_local(spec.cert_file), read_local(spec.key_file)
            problems = pki.validate_provided(
                want_cert,
                want_key,
                reg.domain,
                reg.ip,
                extra_sans=cert_extra_sans(plan),
                min_days=pki.renew_days(spec.days),
            )
            if problems:
                raise StepError(
                    f"the provided certificate does not fit: {'; '.join(problems)}",
                    "give a certificate+key pair whose SANs cover the domain, the IP and "
                    "every extra_sans entry",
                )
            want_pub = pki.public_key_sha256(want_key, private=True)
            same = f.cert == want_cert and f.key in (want_pub, NO_OPENSSL)
            if same and f.pair == "current" and not moves:
                return Unchanged("the provided certificate is installed")
            detail = "; ".join(([] if same else ["install the provided certificate"]) + moves)
            diffs = () if same else _issue_diffs(ctx, e, f, cert_summary(want_cert))
            return CertificateChange(
                detail or "install the provided certificate",
                self.script(ctx) if not same else (),
                issue=not same,
                provided=(want_cert, want_key),
                move_ca=move_ca,
                move_legacy=same and f.pair == "legacy",
                tidy=tidy,
                diffs=diffs + _notes(ctx, e, moves),
            )
        reasons: list[str] = []
        info = None
        if f.cert is None:
            reasons.append("no certificate yet")
        else:
            try:
                info = pki.inspect_cert(f.cert)
            except Exception:  # noqa: BLE001 - unreadable = replace
                reasons.append("the certificate on the host cannot be read")
            if info is not None:
                from regwizard import problems

                reasons += [p.message for p in problems.certificate(info, plan, "")]
                kp = _key_problem(f.key, f.cert)
                if kp:
                    reasons.append(kp)
                want_cn = pki.subject_cn(spec, reg.domain)
                if info.subject.get("CN", "") != want_cn:
                    reasons.append(f"CN is {info.subject.get('CN')!r}, plan says {want_cn!r}")
                if info.key_type != spec.key:
                    reasons.append(f"key is {info.key_type}, plan says {spec.key}")
                if spec.mode == "self-signed" and not info.self_signed:
                    # clients trust this very certificate: a CA-signed leaf as its own
                    # anchor fails verification (OpenSSL, hence regwizard's own checks)
                    reasons.append("the certificate is signed by a CA, the plan says self-signed")
        new_ca = False
        if spec.mode == "local-ca":
            usable = f.ca is not None and self._ca_usable(f)
            if not usable:
                new_ca = True
                reasons.append("no usable local CA yet")
            elif f.cert and not reasons and not pki.verify_signed_by(f.cert, f.ca or b""):
                reasons.append("the certificate is not signed by the local CA")
        if not reasons and f.pair == "current" and not moves:
            return Unchanged(f"valid, {info.days_left} days left")  # type: ignore[union-attr]
        if not reasons and f.pair == "legacy":
            moves.insert(0, f"move the certificate into {lay.current_link}/ (switched as one pair)")
        diffs: tuple[FileDiff, ...] = ()
        if new_ca:
            diffs += (
                FileDiff(
                    e.label, lay.ca_path, cert_summary(f.ca), planned_summary(ctx, ca=True),
                    "a new local CA; its key is made on this machine and never shown",
                ),
            )  # fmt: skip
        if reasons:
            diffs += _issue_diffs(ctx, e, f, planned_summary(ctx))
        return CertificateChange(
            "; ".join(reasons + moves),
            self.script(ctx) if reasons else (),
            issue=bool(reasons),
            new_ca=new_ca,
            move_ca=move_ca and not new_ca,
            move_legacy=not reasons and f.pair == "legacy",
            tidy=tidy,
            diffs=diffs + _notes(ctx, e, moves),
        )

    def _check_replica(self, ctx: Ctx, e: HostEntry) -> Unchanged | CertificateChange:
        """A replica serves the primary's very pair: compared by the certificate's bytes
        and the key's public-half hash (no key is read here); the CA stays on the primary."""
        lay, primary = ctx.layout, ctx.registry
        want, f = tls_files(ctx), tls_files(ctx, e)
        tidy = f.stray
        moves = (
            [f"move {', '.join(tidy)} out of the mounted {lay.certs_dir} into {lay.backups_dir}"]
            if tidy
            else []
        )
        if want.cert is None:
            if not ctx.dry_run:
                raise StepError(
                    f"{primary.label} has no certificate to copy to {e.label}",
                    "rerun: the certificate is made on the primary registry host first",
                )
            why = f"copy the pair {primary.label} makes (it has none yet)"
        else:
            same = f.cert == want.cert and f.key is not None and f.key == want.key
            if same and f.pair == "current" and not moves:
                return Unchanged(f"the same certificate as {primary.label}")
            if same and f.pair == "current":
                why = ""
            elif f.cert is None:
                why = f"no certificate yet: copy {primary.label}'s pair"
            elif f.cert != want.cert:
                why = f"another certificate than {primary.label}'s: copy its pair"
            else:
                why = f"the key differs from {primary.label}'s: copy its pair"
        issue = bool(why)
        diffs = _issue_diffs(ctx, e, f, cert_summary(want.cert) if want.cert else None)
        return CertificateChange(
            "; ".join(([why] if why else []) + moves),
            self._copy_script(ctx) if issue else (),
            issue=issue,
            tidy=tidy,
            from_primary=issue,
            diffs=(diffs if issue else ()) + _notes(ctx, e, moves),
        )

    def _copy_script(self, ctx: Ctx) -> tuple[str, ...]:
        lay, dom = ctx.layout, ctx.plan.registry.domain
        q = shlex.quote
        gen = f'{q(lay.certs_dir)}/"$GEN"'
        return (
            "GEN=g-$(date +%Y%m%d-%H%M%S)",
            shlex.join(["mkdir", "-p", "-m", "700", lay.certs_dir]) + f" {gen}",
            f"scp PRIMARY:{q(lay.key_path)} PRIMARY:{q(lay.cert_path)} {gen}/",
            f"chmod 600 {gen}/{q(dom + '.key')}",
            f'ln -sfn "$GEN" {q(lay.current_link)}',
        )

    @staticmethod
    def _ca_usable(f: TlsFiles) -> bool:
        try:
            info = pki.inspect_cert(f.ca or b"")
        except Exception:  # noqa: BLE001
            return False
        return (
            info.is_ca
            and info.days_left > pki.renew_days(pki.CA_DAYS)
            and _key_problem(f.ca_key, f.ca or b"", "CA key") is None
        )

    # -- apply

    def apply(self, ctx: Ctx, e: HostEntry, change: CertificateChange) -> str:
        plan, lay, h = ctx.plan, ctx.layout, e.host
        spec, reg = plan.certificate, plan.registry
        before = tls_files(ctx, e)  # read by check; forgotten once this apply is done
        h.makedirs(lay.config_dir, 0o700)
        h.makedirs(lay.certs_dir, 0o700)
        done: list[str] = []
        if change.move_ca:
            self._move_ca(ctx, e)
            done.append(f"moved the CA to {lay.ca_dir}")
        ca_key_pem = ca_cert_pem = None
        if change.new_ca:
            k, c = pki.make_ca(spec, domain=reg.domain, key=self._key_ahead(ctx, "ca"))
            ca_key_pem, ca_cert_pem = pki.key_to_pem(k), pki.cert_to_pem(c)
            h.makedirs(lay.ca_dir, 0o700)
            for p in (lay.ca_path, lay.ca_key_path, lay.legacy_ca, lay.legacy_ca_key):
                move_into(h, p, lay.backups_dir)
            h.write_file(lay.ca_key_path, ca_key_pem, 0o600)
            h.write_file(lay.ca_path, ca_cert_pem, 0o644)
            ctx.log(self.name, e, f"created a local CA in {lay.ca_dir}")
            done.append("created a local CA")
        if change.issue and change.from_primary:
            # the one read of the server key: held in memory, written 0600 on the replica
            src = ctx.registry.host
            key, cert = src.read_file(lay.key_path), src.read_file(lay.cert_path)
            if not key or not cert:
                raise StepError(
                    f"{ctx.registry.label} has no complete pair in {lay.current_link}/",
                    "rerun: the primary's certificate step makes it first",
                )
            gen = self._write_generation(ctx, e, key, cert)
            self._switch(ctx, e, gen)
            done.append(f"copied {ctx.registry.label}'s certificate and key")
        elif change.issue:
            if change.provided is not None:
                cert, key = change.provided
                done.append("installed the provided certificate")
            else:
                issuer_key = issuer_cert = None
                if spec.mode == "local-ca":
                    if ca_key_pem is None:  # the one read of a private key: to sign with it
                        ca_key_pem = h.read_file(lay.ca_key_path)
                        ca_cert_pem = h.read_file(lay.ca_path)
                    if not ca_key_pem or not ca_cert_pem:
                        raise StepError(
                            f"the local CA in {lay.ca_dir} is incomplete",
                            "rerun: a new CA is made when none is usable",
                        )
                    issuer_key, issuer_cert = pki.load_key(ca_key_pem), pki.load_cert(ca_cert_pem)
                k, c = pki.make_server_cert(
                    spec, reg.domain, reg.ip, cert_extra_sans(plan),
                    issuer_key=issuer_key, issuer_cert=issuer_cert,
                    key=self._key_ahead(ctx, "server"),
                )  # fmt: skip
                key, cert = pki.key_to_pem(k), pki.cert_to_pem(c)
                done.append(f"issued for {','.join(san_list(plan))}, {spec.days} days")
            gen = self._write_generation(ctx, e, key, cert)
            self._switch(ctx, e, gen)
        elif change.move_legacy:
            gen = new_generation()
            d = lay.generation_dir(gen)
            script = (
                'mkdir -m 700 -- "$1" && cp -p -- "$2" "$1/$4.key" && cp -p -- "$3" "$1/$4.crt"'
            )
            h.run(["sh", "-c", script, "sh", d, lay.legacy_key, lay.legacy_cert, reg.domain])
            self._switch(ctx, e, gen)
            done.append(f"moved the certificate into {lay.current_link}/")
        # out of the mounted directory: the pair replaced, an earlier version's files,
        # key backups, and whatever else does not belong there
        leave = set(change.tidy)
        if change.issue or change.move_legacy:
            if before.generation:
                leave.add(before.generation)
            if before.pair == "legacy":
                leave |= {f"{reg.domain}.crt", f"{reg.domain}.key"}
        for name in sorted(leave):
            if name in (CURRENT, ""):
                continue
            moved = move_into(h, f"{lay.certs_dir}/{name}", f"{lay.backups_dir}/certs")
            if moved:
                ctx.log(self.name, e, f"moved {lay.certs_dir}/{name} -> {moved}")
        ctx.forget(e)
        return "; ".join(done) or "tidied the certificate directory"

    def _write_generation(self, ctx: Ctx, e: HostEntry, key: bytes, cert: bytes) -> str:
        lay, dom = ctx.layout, ctx.plan.registry.domain
        gen = new_generation()
        d = lay.generation_dir(gen)
        e.host.makedirs(d, 0o700)
        e.host.write_file(f"{d}/{dom}.key", key, 0o600)
        e.host.write_file(f"{d}/{dom}.crt", cert, 0o644)
        return gen

    def _switch(self, ctx: Ctx, e: HostEntry, gen: str) -> None:
        """Point certs/current at ``gen`` with one rename: the pair changes at once."""
        lay = ctx.layout
        tmp = f"{lay.certs_dir}/.{CURRENT}.{secrets.token_hex(3)}"
        e.host.run(["sh", "-c", 'ln -s -- "$1" "$2" && mv -Tf -- "$2" "$3"', "sh", gen, tmp,
                    lay.current_link])  # fmt: skip
        ctx.log(self.name, e, f"{lay.current_link} -> {gen}")

    def _move_ca(self, ctx: Ctx, e: HostEntry) -> None:
        lay, h = ctx.layout, e.host
        h.makedirs(lay.ca_dir, 0o700)
        for src, dst in ((lay.legacy_ca_key, lay.ca_key_path), (lay.legacy_ca, lay.ca_path)):
            script = (
                '[ -e "$1" ] || exit 0\n'
                '[ ! -e "$2" ] || exit 3\n'
                'mv -- "$1" "$2"\n'
            )  # fmt: skip
            r = h.run(["sh", "-c", script, "sh", src, dst], check=False)
            if r.rc == 3:
                move_into(h, src, lay.backups_dir)  # both places: keep the one in ca/
            elif r.rc != 0:
                raise StepError(
                    f"cannot move {src} to {dst}: {r.stderr.decode(errors='replace')[-200:]}",
                    "check the registry host's disk and permissions, then rerun",
                )
            ctx.log(self.name, e, f"moved {src} -> {dst}")


def _subj(parts: tuple[tuple[str, str], ...]) -> str:
    """A subject as openssl's -subj takes it (/K=V/...; / + \\ escaped)."""

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("/", "\\/").replace("+", "\\+")

    return "/" + "/".join(f"{k}={esc(v)}" for k, v in parts if v)


def ca_subject_text(ctx: Ctx) -> str:
    """The local CA's subject, as pki.make_ca makes it."""
    spec, reg = ctx.plan.certificate, ctx.plan.registry
    base = spec.organization or spec.common_name or reg.domain
    cn = (f"{base} regwizard CA" if base else "regwizard CA")[:64]
    country = spec.country.upper() if len(spec.country) == 2 else ""
    return _subj((("C", country), ("O", spec.organization), ("CN", cn)))


def subject_text(ctx: Ctx) -> str:
    """The certificate's subject as openssl's -subj takes it."""
    cert, reg = ctx.plan.certificate, ctx.plan.registry
    parts = (
        ("C", cert.country.upper()),
        ("ST", cert.state),
        ("L", cert.locality),
        ("O", cert.organization),
        ("OU", cert.organizational_unit),
        ("CN", pki.subject_cn(cert, reg.domain)),
    )
    return _subj(parts)


# --------------------------------------------------------------------------- diffs


def planned_summary(ctx: Ctx, *, ca: bool = False) -> str:
    """What apply will make (it does not exist yet), in ``diffs.cert_summary``'s form."""
    spec, plan = ctx.plan.certificate, ctx.plan
    if ca:
        lines = [
            "certificate 1 of 1 (a CA) (new: made by apply)",
            f"  subject: {ca_subject_text(ctx)}",
            "  issuer:  itself (self-signed)",
            f"  valid:   {pki.CA_DAYS} days from apply",
            f"  key:     {spec.key}",
        ]
    else:
        lines = [
            "certificate 1 of 1 (new: made by apply)",
            f"  subject: {subject_text(ctx)}",
            "  issuer:  "
            + (ca_subject_text(ctx) if spec.mode == "local-ca" else "itself (self-signed)"),
            f"  SANs:    {', '.join(san_list(plan))}",
            f"  valid:   {spec.days} days from apply",
            f"  key:     {spec.key}",
        ]
    return "".join(f"{line}\n" for line in lines)


def _issue_diffs(ctx: Ctx, e: HostEntry, f: TlsFiles, after: str | None) -> tuple[FileDiff, ...]:
    """A new pair: the certificate's summary before and after; the key only named."""
    lay = ctx.layout
    return (
        FileDiff(e.label, lay.cert_path, cert_summary(f.cert), after),
        FileDiff(
            e.label, lay.key_path, None, None,
            "its private key, written 0600 next to it (never shown)",
        ),
    )  # fmt: skip


def _notes(ctx: Ctx, e: HostEntry, moves: list[str]) -> tuple[FileDiff, ...]:
    return tuple(FileDiff(e.label, ctx.layout.certs_dir, None, None, m) for m in moves)
