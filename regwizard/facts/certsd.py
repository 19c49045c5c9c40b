"""Docker's certs.d, interpreted once: which directory Docker reads, and what breaks it.

Docker looks for a registry's CAs in ``/etc/docker/certs.d/<host>[:port]/`` (no port for
443) and reads it at every connection. Each ``*.crt`` there is a CA; a ``*.cert`` +
``*.key`` pair is a client certificate; a ``.cert`` without its ``.key`` (a CA saved as
``ca.cert``), or the reverse, makes Docker refuse the whole directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CERTS_D = "/etc/docker/certs.d"


def trust_dir(address: str) -> str:
    """The directory Docker reads for a registry at ``address`` (domain[:port])."""
    return f"{CERTS_D}/{address}"


def trust_file(address: str) -> str:
    return f"{trust_dir(address)}/ca.crt"


@dataclass(frozen=True)
class CertsD:
    """One host's certs.d as it concerns one registry."""

    address: str  # what clients type: domain, or domain:port
    dirs: tuple[str, ...] = ()  # every entry of /etc/docker/certs.d
    files: tuple[str, ...] = ()  # entries of the registry's own directory
    ca: bytes | None = None  # its ca.crt (None: missing)
    bundle: bytes = b""  # every *.crt there, concatenated (what Docker trusts)
    stray: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (name, Docker's error)

    @property
    def exists(self) -> bool:
        return self.address in self.dirs


def stray_files(names: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Files that make Docker refuse the directory: (name, the error Docker prints)."""
    have = set(names) - {""}
    out = []
    for n in sorted(have):
        if n.endswith(".cert") and n[: -len(".cert")] + ".key" not in have:
            key = n[: -len(".cert")] + ".key"
            out.append(
                (n, f"missing key {key} for client certificate {n}. "
                    "CA certificates must use the extension .crt")
            )  # fmt: skip
        elif n.endswith(".key") and n[: -len(".key")] + ".cert" not in have:
            out.append((n, f"missing client certificate {n[: -len('.key')]}.cert for key {n}"))
    return tuple(out)


def misnamed(dirs: tuple[str, ...], domain: str, ip: str, port: int) -> list[str]:
    """Directories meant for this registry that Docker never reads for it.

    The same registry spelled another way: ``domain:443`` for a registry on 443, no port
    for one on another port, the short name, the IP. A directory for another port is
    another registry, and is left alone.
    """
    address = domain if port == 443 else f"{domain}:{port}"
    short = domain.split(".")[0]
    out = []
    for d in sorted(dirs):
        host_part, _, port_part = d.partition(":")
        if (
            d != address
            and host_part.lower() in {domain.lower(), short.lower(), ip} - {""}
            and port_part in ("", "443", str(port))
        ):
            out.append(d)
    return out


def trusts(bundle: bytes | None, served_pem: bytes) -> bool:
    """True when these CA files make Docker accept the served certificate."""
    from regwizard import pki
    from regwizard.errors import RegwizardError

    if not bundle or not served_pem:
        return False
    try:
        leaf = pki.load_cert(served_pem)
        cas = pki.load_certs(bundle)
    except RegwizardError:
        return False
    for ca in cas:
        if ca == leaf or pki.verify_signed_by(served_pem, pki.cert_to_pem(ca)):
            return True
    return False
