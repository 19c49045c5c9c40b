"""Keys and certificates for the registry's TLS. Pure functions; nothing touches disk.

Server certificates always carry SANs (Go >= 1.15 ignores the CN). A self-signed
server certificate is its own trust anchor (CA:TRUE, like ``openssl req -x509``);
with a local CA the server certificate is CA:FALSE and clients trust the CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from regwizard.errors import PlanError, RegwizardError
from regwizard.plan import (
    KEY_KINDS,
    CertificateSpec,
    PlanErrors,
    check_common_name,
    check_country,
    check_days,
    check_email,
    check_ip,
    check_san,
    check_subject_text,
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CLOCK_SKEW = dt.timedelta(minutes=5)
LEGACY_CN = "x509: certificate relies on legacy Common Name field, use SANs instead"
EXPIRED = "x509: certificate has expired or is not yet valid"

_SUBJECT_OIDS = (
    ("C", NameOID.COUNTRY_NAME),
    ("ST", NameOID.STATE_OR_PROVINCE_NAME),
    ("L", NameOID.LOCALITY_NAME),
    ("O", NameOID.ORGANIZATION_NAME),
    ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("CN", NameOID.COMMON_NAME),
    ("email", NameOID.EMAIL_ADDRESS),
)


# --------------------------------------------------------------------------- keys


def generate_key(kind: str) -> PrivateKey:
    """A new private key: rsa-2048, rsa-4096 or ecdsa-p256."""
    if kind == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa-4096":
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise PlanError("certificate.key", "must be one of " + ", ".join(KEY_KINDS))


def key_to_pem(key: PrivateKey) -> bytes:
    """PKCS#8, unencrypted (the registry reads it without a passphrase)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes) -> PrivateKey:
    """A PEM private key (PKCS#8, PKCS#1 or SEC1). Raises RegwizardError."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise RegwizardError(
            "the private key is encrypted; the registry needs it without a passphrase",
            "decrypt it: openssl pkey -in KEY -out KEY.plain",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise RegwizardError("not a PEM private key", "pass the key file in PEM format") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise RegwizardError("unsupported private key type; use RSA or ECDSA")
    return key


def load_certs(data: bytes) -> list[x509.Certificate]:
    """All certificates in a PEM bundle (or one DER certificate). Raises RegwizardError."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise RegwizardError(
            "not a PEM certificate", "pass the certificate file in PEM format"
        ) from None


def load_cert(pem: bytes) -> x509.Certificate:
    """The first (leaf) certificate of a PEM bundle."""
    return load_certs(pem)[0]


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------- building


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def _name(attrs: Iterable[tuple[x509.ObjectIdentifier, str]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs if value])


def subject_cn(spec: CertificateSpec, domain: str) -> str:
    """The CN a server certificate gets: common_name, else the domain; "" if over 64 chars."""
    cn = spec.common_name or domain
    return cn if len(cn) <= 64 else ""


_SUBJECT_CHECKS = (
    ("country", check_country),
    ("state", check_subject_text),
    ("locality", check_subject_text),
    ("organization", check_subject_text),
    ("organizational_unit", check_subject_text),
    ("common_name", check_common_name),
    ("email", check_email),
)


def _refuse_bad_inputs(
    spec: CertificateSpec,
    names: Iterable[tuple[str, str]] = (),
    days: object = None,
) -> None:
    """Raise PlanError (all problems at once) for any value a certificate cannot carry.

    The plan's own checks, applied again here because not every caller validated a
    plan first: cryptography would otherwise write a DNS name with a 64-character label
    or a 300-character name into the certificate (clients then fail with an obscure
    x509 error), or raise ValueError / UnicodeEncodeError with a traceback.
    ``names`` are (plan key, value) pairs for the SANs; empty values are skipped."""
    errors: list[PlanError] = []
    for name, check in _SUBJECT_CHECKS:
        msg = check(getattr(spec, name))
        if msg:
            errors.append(PlanError(f"certificate.{name}", msg))
    for where, value in names:
        if not value:
            continue
        if where == "registry.ip":
            msg, fix = check_ip(value), "use an IPv4 or IPv6 address such as 10.0.0.2"
        else:
            msg, fix = check_san(value), "use a host name such as reg.example.test"
        if msg:
            errors.append(PlanError(where, msg, fix))
    if days is not None:
        msg = check_days(days)
        if msg:
            errors.append(PlanError("certificate.days", msg))
    if errors:
        raise PlanErrors.of(errors)


def _subject(spec: CertificateSpec, cn: str) -> x509.Name:
    country = spec.country.upper()
    if country and (len(country) != 2 or not country.isascii() or not country.isalpha()):
        raise PlanError("certificate.country", "Country must be 2 letters (ISO 3166), e.g. CN")
    values = {
        "C": country,
        "ST": spec.state,
        "L": spec.locality,
        "O": spec.organization,
        "OU": spec.organizational_unit,
        "CN": cn,
        "email": spec.email,
    }
    return _name((oid, values[k]) for k, oid in _SUBJECT_OIDS)


def _sign_hash(key: PrivateKey) -> hashes.HashAlgorithm:
    return hashes.SHA256()


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def san_names(domain: str, ip: str = "", extra_sans: Iterable[str] = ()) -> list[x509.GeneralName]:
    """DNS domain, the IP, then each extra SAN; duplicates removed, order kept."""
    out: list[x509.GeneralName] = []
    seen: set[tuple[str, str]] = set()
    for value in [domain, ip, *extra_sans]:
        if not value:
            continue
        gn = _general_name(value)
        ident = (type(gn).__name__, str(gn.value).lower())
        if ident not in seen:
            seen.add(ident)
            out.append(gn)
    return out


CA_DAYS = 3650  # a local CA's lifetime: ten years


def make_ca(
    spec: CertificateSpec,
    days: int = CA_DAYS,
    key_kind: str | None = None,
    *,
    domain: str = "",
    key: PrivateKey | None = None,
    now: dt.datetime | None = None,
) -> tuple[PrivateKey, x509.Certificate]:
    """A local CA: CA:TRUE (critical), keyCertSign + cRLSign, CN "<org or CN> regwizard CA".
    ``key`` uses a key generated earlier (else a new ``key_kind`` or ``spec.key`` one)."""
    _refuse_bad_inputs(spec, [("registry.domain", domain)], days)
    key = key or generate_key(key_kind or spec.key)
    base = spec.organization or spec.common_name or domain
    cn = (f"{base} regwizard CA" if base else "regwizard CA")[:64]
    subject = _name(
        [
            (NameOID.COUNTRY_NAME, spec.country.upper() if len(spec.country) == 2 else ""),
            (NameOID.ORGANIZATION_NAME, spec.organization),
            (NameOID.COMMON_NAME, cn),
        ]
    )
    start = _now(now) - CLOCK_SKEW
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CLOCK_SKEW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, _sign_hash(key))
    )
    return key, cert


def make_server_cert(
    spec: CertificateSpec,
    domain: str,
    ip: str = "",
    extra_sans: Iterable[str] = (),
    *,
    issuer_key: PrivateKey | None = None,
    issuer_cert: x509.Certificate | None = None,
    key: PrivateKey | None = None,
    days: int | None = None,
    now: dt.datetime | None = None,
) -> tuple[PrivateKey, x509.Certificate]:
    """The registry's TLS certificate; self-signed when no issuer is given.

    ``key`` reuses an existing key (else a new ``spec.key`` one); ``days`` overrides
    ``spec.days``; ``now`` is for tests.
    """
    if (issuer_key is None) != (issuer_cert is None):
        raise ValueError("give both issuer_key and issuer_cert, or neither")
    if not domain:
        raise PlanError("registry.domain", "Domain is required", "use a host name")
    extra_sans = list(extra_sans)
    _refuse_bad_inputs(
        spec,
        [("registry.domain", domain), ("registry.ip", ip)]
        + [(f"certificate.extra_sans[{i}]", v) for i, v in enumerate(extra_sans)],
        days if days is not None else spec.days,
    )
    if issuer_key is not None and issuer_cert is not None:
        if _spki(issuer_key.public_key()) != _spki(issuer_cert.public_key()):
            raise RegwizardError("the CA key does not match the CA certificate")
    key = key or generate_key(spec.key)
    self_signed = issuer_cert is None
    subject = _subject(spec, subject_cn(spec, domain))  # a too-long name: the SANs carry it
    start = _now(now) - CLOCK_SKEW
    validity = dt.timedelta(days=days if days is not None else spec.days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    if issuer_cert is None:
        issuer_name = subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        issuer_name = issuer_cert.subject
        try:
            ca_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())  # type: ignore[arg-type]
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CLOCK_SKEW + validity)
        .add_extension(x509.SubjectAlternativeName(san_names(domain, ip, extra_sans)), False)
        .add_extension(x509.BasicConstraints(ca=self_signed, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=is_rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=self_signed,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    signer = key if issuer_key is None else issuer_key
    return key, builder.sign(signer, _sign_hash(signer))


# --------------------------------------------------------------------------- inspecting


@dataclass
class CertInfo:
    subject: dict[str, str]  # keys among C, ST, L, O, OU, CN, email
    issuer: dict[str, str]
    dns_sans: list[str]
    ip_sans: list[str]
    has_san: bool
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime  # aware, UTC
    days_left: int  # whole days until not_after (negative once expired)
    is_ca: bool
    self_signed: bool
    key_type: str  # rsa-2048 | rsa-4096 | ecdsa-p256 | rsa-N | ecdsa-CURVE | ed25519 | other
    key_bits: int
    sha256: str  # "AB:CD:..." as openssl x509 -fingerprint -sha256 prints it
    serial: str  # hex
    signature_hash: str  # sha256, sha1, ... ("" when the algorithm has none, e.g. Ed25519)
    server_auth: bool  # EKU absent, or allows serverAuth
    ekus: list[str] = field(default_factory=list)

    @property
    def common_name(self) -> str:
        return self.subject.get("CN", "")

    @property
    def issuer_cn(self) -> str:
        return self.issuer.get("CN", "")

    @property
    def fingerprint(self) -> str:
        return "SHA256:" + self.sha256


def _name_dict(name: x509.Name) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, oid in _SUBJECT_OIDS:
        attrs = name.get_attributes_for_oid(oid)
        if attrs:
            value = attrs[0].value
            out[k] = value if isinstance(value, str) else value.decode("latin-1")
    return out


def _key_type(pub: object) -> tuple[str, int]:
    if isinstance(pub, rsa.RSAPublicKey):
        return f"rsa-{pub.key_size}", pub.key_size
    if isinstance(pub, ec.EllipticCurvePublicKey):
        name = "p256" if pub.curve.name == "secp256r1" else pub.curve.name
        return f"ecdsa-{name}", pub.curve.key_size
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "ed25519", 256
    if isinstance(pub, ed448.Ed448PublicKey):
        return "ed448", 456
    return "other", 0


def _directly_issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _cert_info(cert: x509.Certificate, now: dt.datetime | None = None) -> CertInfo:
    dns: list[str] = []
    ips: list[str] = []
    has_san = False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = list(san.get_values_for_type(x509.DNSName))
        ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
        has_san = len(san) > 0
    except x509.ExtensionNotFound:
        pass
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        ekus = [
            o.dotted_string
            for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ]
        server_auth = (
            ExtendedKeyUsageOID.SERVER_AUTH.dotted_string in ekus
            or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string in ekus
        )
    except x509.ExtensionNotFound:
        ekus, server_auth = [], True
    try:
        key_type, bits = _key_type(cert.public_key())
    except (ValueError, UnsupportedAlgorithm):
        key_type, bits = "other", 0
    algo = cert.signature_hash_algorithm
    not_after = cert.not_valid_after_utc
    left = (not_after - _now(now)).total_seconds()
    return CertInfo(
        subject=_name_dict(cert.subject),
        issuer=_name_dict(cert.issuer),
        dns_sans=dns,
        ip_sans=ips,
        has_san=has_san,
        not_before=cert.not_valid_before_utc,
        not_after=not_after,
        days_left=int(left // 86400),
        is_ca=is_ca,
        self_signed=cert.issuer == cert.subject and _directly_issued(cert, cert),
        key_type=key_type,
        key_bits=bits,
        sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        serial=format(cert.serial_number, "x"),
        signature_hash=algo.name if algo is not None else "",
        server_auth=server_auth,
        ekus=ekus,
    )


def inspect_cert(pem: bytes, *, now: dt.datetime | None = None) -> CertInfo:
    """Facts about the first certificate in ``pem``. Raises RegwizardError if unreadable."""
    return _cert_info(load_cert(pem), now)


def _dns_match(pattern: str, host: str) -> bool:
    """Go's rule: case-insensitive; ``*`` only as the whole leftmost label, one label."""
    p = pattern.lower().rstrip(".").split(".")
    h = host.lower().rstrip(".").split(".")
    if len(p) != len(h) or not all(h):
        return False
    return all(
        (i == 0 and pp == "*") or pp == hh for i, (pp, hh) in enumerate(zip(p, h, strict=True))
    )


def _covers_name(info: CertInfo, name: str) -> bool:
    if name.startswith("*."):  # a wildcard wanted: the exact SAN must be there
        return name.lower() in (d.lower() for d in info.dns_sans)
    return any(_dns_match(d, name) for d in info.dns_sans)


def _name_problem(info: CertInfo, name: str) -> str | None:
    if _covers_name(info, name):
        return None
    if not info.dns_sans:
        go = f"x509: certificate is not valid for any names, but wanted to match {name}"
    else:
        go = f"x509: certificate is valid for {', '.join(info.dns_sans)}, not {name}"
    return f'the certificate does not cover the name {name}; Docker reports "{go}"'


def _ip_problem(info: CertInfo, ip: str) -> str | None:
    want = ipaddress.ip_address(ip)
    have = []
    for s in info.ip_sans:
        try:
            have.append(ipaddress.ip_address(s))
        except ValueError:
            continue
    if want in have:
        return None
    if not have:
        go = f"x509: cannot validate certificate for {ip} because it doesn't contain any IP SANs"
        return f'the certificate is not valid for IP {ip} (no IP SANs); Docker reports "{go}"'
    go = f"x509: certificate is valid for {', '.join(info.ip_sans)}, not {ip}"
    return f'the certificate is not valid for IP {ip}; Docker reports "{go}"'


RENEW_DAYS = 30  # renew a certificate with fewer days left than this ...


def renew_days(days: int) -> int:
    """... or a third of its lifetime when that is shorter: a fresh certificate of any
    accepted lifetime (1 day up) is always far from its renewal, so it verifies."""
    return max(0, min(RENEW_DAYS, days // 3))


def cert_problems(
    info: CertInfo,
    *,
    domain: str,
    ip: str = "",
    extra_sans: Iterable[str] = (),
    min_days: int = RENEW_DAYS,
    now: dt.datetime | None = None,
) -> list[str]:
    """Why this certificate does NOT fit the plan, in words. Empty list = keep it.

    ``min_days``: fewer days left than this is a problem ("renew it now"). Callers that
    judge a planned certificate pass ``renew_days(plan days)``, so a certificate freshly
    issued for the plan never needs renewing."""
    out: list[str] = []
    if not info.has_san:
        out.append(
            "the certificate has no subjectAltName (only a Common Name); Docker rejects it: "
            f'"{LEGACY_CN}"'
        )
    else:
        for value in [domain, ip, *extra_sans]:
            if not value:
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError:
                msg = _name_problem(info, value)
            else:
                msg = _ip_problem(info, value)
            if msg:
                out.append(msg)
    if not info.server_auth:
        out.append(
            "the certificate's extended key usage does not allow TLS servers (serverAuth); "
            'Docker reports "x509: certificate specifies an incompatible key usage"'
        )
    if info.signature_hash in ("sha1", "md5"):
        out.append(
            f"the certificate is signed with {info.signature_hash.upper()}, which Docker rejects "
            "as insecure"
        )
    if info.key_type.startswith("rsa-") and info.key_bits < 2048:
        out.append(f"the RSA key has only {info.key_bits} bits; use at least 2048")
    t = _now(now)
    if t < info.not_before:
        out.append(
            f"the certificate is not valid until {info.not_before:%Y-%m-%d %H:%M} UTC (clock "
            f'skew?); Docker reports "{EXPIRED}"'
        )
    elif t >= info.not_after:
        out.append(
            f'the certificate expired on {info.not_after:%Y-%m-%d}; Docker reports "{EXPIRED}"'
        )
    elif info.not_after - t < dt.timedelta(days=min_days):
        days = int((info.not_after - t).total_seconds() // 86400)
        out.append(
            f"the certificate expires on {info.not_after:%Y-%m-%d}, in {days} days "
            f"(less than {min_days}); renew it now"
        )
    return out


def public_key_sha256(pem: bytes, *, private: bool = False) -> str:
    """SHA-256 (hex) of the DER public half of a certificate (or of a private key).

    The same value ``openssl pkey -in KEY -pubout -outform DER | sha256sum`` prints on a
    host, so a key there is matched to its certificate without the key leaving the host.
    "" when unreadable."""
    import hashlib

    try:
        pub = load_key(pem).public_key() if private else load_cert(pem).public_key()
    except (RegwizardError, ValueError, UnsupportedAlgorithm):
        return ""
    return hashlib.sha256(_spki(pub)).hexdigest()


def key_matches_cert(key_pem: bytes, cert_pem: bytes) -> bool:
    """True when the private key belongs to the (first) certificate."""
    try:
        key = load_key(key_pem)
        cert = load_cert(cert_pem)
        return _spki(key.public_key()) == _spki(cert.public_key())
    except (RegwizardError, ValueError, UnsupportedAlgorithm):
        return False


def verify_signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """True when the CA's key signed the certificate (names and signature checked)."""
    try:
        cert, ca = load_cert(cert_pem), load_cert(ca_pem)
    except RegwizardError:
        return False
    return _directly_issued(cert, ca)


def validate_provided(
    cert_pem: bytes,
    key_pem: bytes,
    domain: str,
    ip: str = "",
    *,
    extra_sans: Iterable[str] = (),
    min_days: int = RENEW_DAYS,
    now: dt.datetime | None = None,
) -> list[str]:
    """Problems with a user-provided certificate + key for this registry. Empty = usable."""
    problems: list[str] = []
    try:
        certs = load_certs(cert_pem)
    except RegwizardError as e:
        return [f"certificate file: {e.cause}"]
    try:
        key = load_key(key_pem)
    except RegwizardError as e:
        problems.append(f"key file: {e.cause}")
        key = None
    leaf = certs[0]
    if key is not None and _spki(key.public_key()) != _spki(leaf.public_key()):
        problems.append(
            "the private key does not belong to the certificate (the first one in the file)"
        )
    for i, (child, parent) in enumerate(zip(certs, certs[1:], strict=False), 1):
        if not _directly_issued(child, parent):
            problems.append(f"certificate {i + 1} in the file did not sign certificate {i}")
    info = _cert_info(leaf, now)
    problems.extend(
        cert_problems(info, domain=domain, ip=ip, extra_sans=extra_sans, min_days=min_days, now=now)
    )
    return problems
