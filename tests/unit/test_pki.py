"""regwizard.pki: keys, CA and server certificates, inspection and fit checks."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from regwizard import pki
from regwizard.errors import PlanError, RegwizardError
from regwizard.plan import CertificateSpec

from .certs import self_signed_pem

DOMAIN = "reg.example.test"
IP = "10.0.0.2"
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def spec(**kw: object) -> CertificateSpec:
    base: dict[str, object] = {"key": "ecdsa-p256", "organization": "Acme", "days": 825}
    base.update(kw)
    return CertificateSpec(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def self_signed() -> tuple[pki.PrivateKey, x509.Certificate]:
    s = spec(state="Beijing", locality="Haidian", organizational_unit="Ops", email="ops@x.test")
    return pki.make_server_cert(s, DOMAIN, IP, ["alt.example.test", "10.0.0.20", "fd00::2"])


@pytest.fixture(scope="module")
def ca() -> tuple[pki.PrivateKey, x509.Certificate]:
    return pki.make_ca(spec())


@pytest.fixture(scope="module")
def ca_signed(ca) -> tuple[pki.PrivateKey, x509.Certificate]:
    ca_key, ca_cert = ca
    return pki.make_server_cert(spec(), DOMAIN, IP, issuer_key=ca_key, issuer_cert=ca_cert)


def _pem(cert: x509.Certificate) -> bytes:
    return pki.cert_to_pem(cert)


def _ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def cn_only_cert(cn: str = DOMAIN) -> bytes:
    """What the old tutorial's openssl command made: a CN and no SAN."""
    return self_signed_pem(cn, ca=True)


# --------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("kind", "cls", "size"),
    [("rsa-2048", rsa.RSAPrivateKey, 2048), ("ecdsa-p256", ec.EllipticCurvePrivateKey, 256)],
)
def test_generate_key(kind: str, cls: type, size: int) -> None:
    key = pki.generate_key(kind)
    assert isinstance(key, cls)
    assert key.key_size == size


def test_generate_rsa_4096() -> None:
    key = pki.generate_key("rsa-4096")
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 4096
    _, cert = pki.make_server_cert(spec(key="rsa-4096"), DOMAIN, IP, key=key)
    assert pki.inspect_cert(_pem(cert)).key_type == "rsa-4096"


def test_generate_unknown_kind() -> None:
    with pytest.raises(PlanError, match="certificate.key"):
        pki.generate_key("dsa-1024")


def test_key_pem_roundtrip() -> None:
    key = pki.generate_key("ecdsa-p256")
    pem = pki.key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = pki.load_key(pem)
    assert pki.key_to_pem(loaded) == pem


def test_load_key_errors() -> None:
    key = pki.generate_key("ecdsa-p256")
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(RegwizardError, match="encrypted"):
        pki.load_key(encrypted)
    with pytest.raises(RegwizardError, match="not a PEM private key"):
        pki.load_key(b"garbage")


def test_load_cert_errors() -> None:
    with pytest.raises(RegwizardError, match="not a PEM certificate"):
        pki.load_cert(b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")
    with pytest.raises(RegwizardError):
        pki.load_cert(b"\x00\x01")


# --------------------------------------------------------------------- self-signed


def test_self_signed_sans(self_signed) -> None:
    _, cert = self_signed
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DOMAIN, "alt.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(IP),
        ipaddress.ip_address("10.0.0.20"),
        ipaddress.ip_address("fd00::2"),
    ]


def test_self_signed_is_its_own_anchor(self_signed) -> None:
    key, cert = self_signed
    cert.verify_directly_issued_by(cert)
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    assert cert.issuer == cert.subject
    assert pki.verify_signed_by(_pem(cert), _pem(cert))
    assert pki.key_matches_cert(pki.key_to_pem(key), _pem(cert))


def test_self_signed_extensions(self_signed) -> None:
    _, cert = self_signed
    eku = _ext(cert, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    ku = _ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and ku.key_cert_sign


def test_subject_fields(self_signed) -> None:
    _, cert = self_signed
    info = pki.inspect_cert(_pem(cert))
    assert info.subject == {
        "C": "CN",
        "ST": "Beijing",
        "L": "Haidian",
        "O": "Acme",
        "OU": "Ops",
        "CN": DOMAIN,
        "email": "ops@x.test",
    }


def test_empty_subject_fields_skipped_and_cn_override() -> None:
    _, cert = pki.make_server_cert(
        spec(organization="", country="", common_name="My Registry"), DOMAIN
    )
    info = pki.inspect_cert(_pem(cert))
    assert info.subject == {"CN": "My Registry"}
    assert info.dns_sans == [DOMAIN] and info.ip_sans == []


def test_long_domain_leaves_cn_out() -> None:
    domain = ("a" * 60 + ".") * 2 + "test"
    _, cert = pki.make_server_cert(spec(), domain)
    info = pki.inspect_cert(_pem(cert))
    assert "CN" not in info.subject
    assert info.dns_sans == [domain]
    assert pki.subject_cn(spec(), domain) == ""
    assert pki.subject_cn(spec(), DOMAIN) == DOMAIN
    assert pki.subject_cn(spec(common_name="X"), DOMAIN) == "X"


def test_lowercase_country_is_uppercased() -> None:
    _, cert = pki.make_server_cert(spec(country="de"), DOMAIN)
    assert pki.inspect_cert(_pem(cert)).subject["C"] == "DE"


def test_bad_country_is_plan_error() -> None:
    with pytest.raises(PlanError, match="2 letters"):
        pki.make_server_cert(spec(country="CHN"), DOMAIN)


def test_validity_and_clock_skew() -> None:
    _, cert = pki.make_server_cert(spec(days=30), DOMAIN, now=NOW)
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=30)
    _, cert = pki.make_server_cert(spec(days=30), DOMAIN, now=NOW, days=10)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=10)


def test_serials_are_random() -> None:
    key = pki.generate_key("ecdsa-p256")
    a = pki.make_server_cert(spec(), DOMAIN, key=key)[1].serial_number
    b = pki.make_server_cert(spec(), DOMAIN, key=key)[1].serial_number
    assert a != b and a > 2**64


def test_duplicate_sans_removed() -> None:
    _, cert = pki.make_server_cert(spec(), DOMAIN, IP, [DOMAIN.upper(), IP, "x.test"])
    info = pki.inspect_cert(_pem(cert))
    assert info.dns_sans == [DOMAIN, "x.test"] and info.ip_sans == [IP]


# --------------------------------------------------------------------- CA


def test_ca_certificate(ca) -> None:
    _, cert = ca
    bc = _ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert pki.inspect_cert(_pem(cert)).common_name == "Acme regwizard CA"
    cert.verify_directly_issued_by(cert)


def test_ca_name_without_org() -> None:
    _, cert = pki.make_ca(spec(organization=""), key_kind="ecdsa-p256", domain=DOMAIN)
    assert pki.inspect_cert(_pem(cert)).common_name == f"{DOMAIN} regwizard CA"


def test_ca_signed_chain(ca, ca_signed) -> None:
    ca_key, ca_cert = ca
    key, cert = ca_signed
    cert.verify_directly_issued_by(ca_cert)
    assert pki.verify_signed_by(_pem(cert), _pem(ca_cert))
    assert not _ext(cert, x509.BasicConstraints).value.ca
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == _ext(ca_cert, x509.SubjectKeyIdentifier).value.digest
    info = pki.inspect_cert(_pem(cert))
    assert not info.self_signed and not info.is_ca
    assert info.issuer_cn == "Acme regwizard CA"
    assert pki.cert_problems(info, domain=DOMAIN, ip=IP) == []


def test_verify_signed_by_other_ca_is_false(ca_signed) -> None:
    _, other = pki.make_ca(spec())
    assert not pki.verify_signed_by(_pem(ca_signed[1]), _pem(other))
    assert not pki.verify_signed_by(b"junk", _pem(other))


def test_issuer_key_must_match_cert(ca) -> None:
    with pytest.raises(RegwizardError, match="does not match"):
        pki.make_server_cert(
            spec(), DOMAIN, issuer_key=pki.generate_key("ecdsa-p256"), issuer_cert=ca[1]
        )
    with pytest.raises(ValueError):
        pki.make_server_cert(spec(), DOMAIN, issuer_key=ca[0])


def test_rsa_ca_signs_ecdsa_leaf() -> None:
    ca_key, ca_cert = pki.make_ca(spec(), key_kind="rsa-2048")
    _, cert = pki.make_server_cert(spec(), DOMAIN, issuer_key=ca_key, issuer_cert=ca_cert)
    cert.verify_directly_issued_by(ca_cert)
    assert pki.inspect_cert(_pem(ca_cert)).key_type == "rsa-2048"


# --------------------------------------------------------------------- inspect


def test_inspect(self_signed) -> None:
    _, cert = self_signed
    info = pki.inspect_cert(_pem(cert))
    assert info.has_san and info.is_ca and info.self_signed
    assert info.dns_sans == [DOMAIN, "alt.example.test"]
    assert info.ip_sans == [IP, "10.0.0.20", "fd00::2"]
    assert info.key_type == "ecdsa-p256"
    assert info.not_before.tzinfo is not None and info.not_after.tzinfo is not None
    assert 823 <= info.days_left <= 825
    assert info.sha256.count(":") == 31 and info.sha256 == info.sha256.upper()
    assert info.fingerprint == "SHA256:" + info.sha256
    assert info.sha256.replace(":", "").lower() == cert.fingerprint(hashes.SHA256()).hex()
    assert info.issuer_cn == DOMAIN
    assert info.server_auth and info.signature_hash == "sha256"


def test_inspect_der_and_chain(self_signed, ca, ca_signed) -> None:
    der = ca_signed[1].public_bytes(serialization.Encoding.DER)
    assert pki.inspect_cert(der).dns_sans == [DOMAIN]
    chain = _pem(ca_signed[1]) + _pem(ca[1])
    assert pki.inspect_cert(chain).dns_sans == [DOMAIN]


# --------------------------------------------------------------------- cert_problems


def test_good_cert_has_no_problems(self_signed) -> None:
    info = pki.inspect_cert(_pem(self_signed[1]))
    extra = ["alt.example.test", "10.0.0.20"]
    assert pki.cert_problems(info, domain=DOMAIN, ip=IP, extra_sans=extra) == []
    assert pki.cert_problems(info, domain="ALT.example.test", ip="fd00:0::2") == []


def test_cn_only_cert_is_legacy() -> None:
    info = pki.inspect_cert(cn_only_cert())
    assert not info.has_san
    problems = pki.cert_problems(info, domain=DOMAIN, ip=IP)
    assert len(problems) == 1
    assert pki.LEGACY_CN in problems[0]


def test_wrong_name(self_signed) -> None:
    info = pki.inspect_cert(_pem(self_signed[1]))
    (msg,) = pki.cert_problems(info, domain="other.example.test", ip=IP)
    assert (
        f"x509: certificate is valid for {DOMAIN}, alt.example.test, not other.example.test" in msg
    )


def test_ip_only_cert_wrong_name() -> None:
    _, cert = pki.make_server_cert(spec(), DOMAIN, IP)
    info = pki.inspect_cert(_pem(cert))
    info.dns_sans = []
    (msg,) = pki.cert_problems(info, domain=DOMAIN, ip=IP)
    assert "is not valid for any names" in msg


def test_wrong_ip(self_signed) -> None:
    info = pki.inspect_cert(_pem(self_signed[1]))
    (msg,) = pki.cert_problems(info, domain=DOMAIN, ip="10.0.0.9")
    assert "not valid for IP 10.0.0.9" in msg
    assert "x509: certificate is valid for 10.0.0.2, 10.0.0.20, fd00::2, not 10.0.0.9" in msg


def test_no_ip_sans() -> None:
    _, cert = pki.make_server_cert(spec(), DOMAIN)
    info = pki.inspect_cert(_pem(cert))
    (msg,) = pki.cert_problems(info, domain=DOMAIN, ip=IP)
    assert "doesn't contain any IP SANs" in msg
    assert pki.cert_problems(info, domain=DOMAIN, ip="") == []


def test_missing_extra_san(self_signed) -> None:
    info = pki.inspect_cert(_pem(self_signed[1]))
    problems = pki.cert_problems(info, domain=DOMAIN, ip=IP, extra_sans=["new.test", "10.9.9.9"])
    assert len(problems) == 2


def test_wildcard_san() -> None:
    _, cert = pki.make_server_cert(spec(common_name="wild"), "*.example.test")
    info = pki.inspect_cert(_pem(cert))
    assert pki.cert_problems(info, domain="reg.example.test") == []
    assert pki.cert_problems(info, domain="a.b.example.test")
    assert pki.cert_problems(info, domain="example.test")
    assert pki.cert_problems(info, domain="r.example.test", extra_sans=["*.example.test"]) == []
    assert pki.cert_problems(info, domain="r.example.test", extra_sans=["*.other.test"])


def test_expiring_soon_and_expired() -> None:
    _, cert = pki.make_server_cert(spec(days=825), DOMAIN, now=NOW)
    info = pki.inspect_cert(_pem(cert), now=NOW)
    assert pki.cert_problems(info, domain=DOMAIN, now=NOW) == []
    soon = NOW + dt.timedelta(days=815)
    (msg,) = pki.cert_problems(info, domain=DOMAIN, now=soon)
    assert "in 10 days" in msg and "less than 30" in msg
    assert pki.cert_problems(info, domain=DOMAIN, now=soon, min_days=5) == []
    later = NOW + dt.timedelta(days=900)
    (msg,) = pki.cert_problems(info, domain=DOMAIN, now=later)
    assert "expired" in msg and pki.EXPIRED in msg
    before = NOW - dt.timedelta(days=1)
    (msg,) = pki.cert_problems(info, domain=DOMAIN, now=before)
    assert "not valid until" in msg and "clock" in msg


def test_days_left_negative_when_expired() -> None:
    _, cert = pki.make_server_cert(spec(days=1), DOMAIN, now=NOW)
    info = pki.inspect_cert(_pem(cert), now=NOW + dt.timedelta(days=3))
    assert info.days_left < 0


def test_client_auth_only_eku_flagged() -> None:
    pem = self_signed_pem(DOMAIN, dns_sans=[DOMAIN], eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    info = pki.inspect_cert(pem)
    (msg,) = pki.cert_problems(info, domain=DOMAIN)
    assert "incompatible key usage" in msg


# --------------------------------------------------------------------- matching + provided


def test_key_matches_cert(self_signed, ca_signed) -> None:
    key, cert = self_signed
    assert pki.key_matches_cert(pki.key_to_pem(key), _pem(cert))
    assert not pki.key_matches_cert(pki.key_to_pem(key), _pem(ca_signed[1]))
    assert not pki.key_matches_cert(b"junk", _pem(cert))
    assert not pki.key_matches_cert(pki.key_to_pem(key), b"junk")


def test_validate_provided(ca, ca_signed) -> None:
    key, cert = ca_signed
    key_pem = pki.key_to_pem(key)
    assert pki.validate_provided(_pem(cert), key_pem, DOMAIN, IP) == []
    assert pki.validate_provided(_pem(cert) + _pem(ca[1]), key_pem, DOMAIN, IP) == []

    other = pki.key_to_pem(pki.generate_key("ecdsa-p256"))
    (msg,) = pki.validate_provided(_pem(cert), other, DOMAIN, IP)
    assert "does not belong" in msg

    problems = pki.validate_provided(_pem(ca[1]) + _pem(cert), key_pem, DOMAIN, IP)
    assert any("did not sign" in p for p in problems)
    assert any("does not belong" in p for p in problems)

    assert pki.validate_provided(b"junk", key_pem, DOMAIN, IP)[0].startswith("certificate file")
    assert pki.validate_provided(_pem(cert), b"junk", DOMAIN, IP)[0].startswith("key file")
    assert "doesn't contain any IP SANs" not in " ".join(
        pki.validate_provided(_pem(cert), key_pem, DOMAIN, "")
    )
    assert pki.validate_provided(cn_only_cert(), key_pem, DOMAIN, IP)
