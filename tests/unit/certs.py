"""Hand-made certificates for tests: the shapes regwizard itself never issues."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from regwizard import pki


def self_signed_pem(
    cn: str,
    *,
    dns_sans: Iterable[str] = (),
    ca: bool = False,
    eku: Iterable[x509.ObjectIdentifier] = (),
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A self-signed ECDSA P-256 certificate valid from yesterday for a year, with only
    the extensions asked for (no SAN at all by default, as the old tutorial's).
    ``dns_sans`` may hold IP addresses too."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if sans := [pki._general_name(s) for s in dns_sans]:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
    if usages := list(eku):
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), False)
    return pki.cert_to_pem(builder.sign(key, hashes.SHA256()))
