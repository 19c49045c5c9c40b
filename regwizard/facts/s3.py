"""Does the plan's S3 bucket answer? One signed request, read as a person would read it.

``sign`` is AWS Signature Version 4 (header form), pure: the same inputs give the same
headers, and the secret key is only ever an HMAC key (it never appears in a header).
``bucket_status`` sends one ``GET /BUCKET?max-keys=1`` (path style, as distribution's
driver does with ``regionendpoint``) and sorts the answer into a kind:
``ok | no-such-bucket | access-denied | unreachable | error``, with short evidence
that never holds the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"
KINDS = ("ok", "no-such-bucket", "access-denied", "unreachable", "error")
# S3 error codes that mean "these keys may not do this": wrong key id, wrong secret, or
# an identity without the right on this bucket
DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurity"}
)
_MAX_BODY = 64 * 1024
_MAX_EVIDENCE = 300


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _encode(text: str, safe: str = "") -> str:
    # SigV4's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex)
    return quote(text, safe="-_.~" + safe)


def _amz_date(now: datetime | float) -> str:
    if not isinstance(now, datetime):
        now = datetime.fromtimestamp(float(now), UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # a naive time is taken as UTC, never as local time
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _host_header(scheme: str, netloc: str) -> str:
    hostport = netloc.rpartition("@")[2].lower()
    default = {"http": ":80", "https": ":443"}.get(scheme.lower(), "")
    if default and hostport.endswith(default):
        hostport = hostport[: -len(default)]
    return hostport


def canonical_request(
    method: str, url: str, headers: dict[str, str], payload_hash: str
) -> tuple[str, str]:
    """(canonical request, signed header names) for already-complete ``headers``."""
    parts = urlsplit(url)
    # encode once: a path given encoded is decoded first, so %20 stays %20 (not %2520)
    path = _encode(unquote(parts.path or "/"), safe="/")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))
    canon = {}
    for name, value in headers.items():
        canon[name.strip().lower()] = " ".join(str(value).split())
    names = sorted(canon)
    head = "".join(f"{n}:{canon[n]}\n" for n in names)
    signed = ";".join(names)
    return "\n".join([method.upper(), path, query, head, signed, payload_hash]), signed


def sign(
    method: str,
    url: str,
    region: str,
    access_key: str,
    secret_key: str,
    now: datetime | float,
    payload_hash: str = EMPTY_SHA256,
    service: str = "s3",
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers that sign one request: ``headers`` (signed too), Host, x-amz-date,
    x-amz-content-sha256 and Authorization. Pure and deterministic."""
    parts = urlsplit(url)
    stamp = _amz_date(now)
    day = stamp[:8]
    out = {"Host": _host_header(parts.scheme, parts.netloc)}
    out.update(headers or {})
    out["x-amz-date"] = stamp
    out["x-amz-content-sha256"] = payload_hash
    creq, signed = canonical_request(method, url, out, payload_hash)
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(creq.encode("utf-8")).hexdigest()])
    key = _hmac(("AWS4" + secret_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return out


@dataclass(frozen=True)
class BucketStatus:
    """What one signed request to the bucket got back."""

    kind: str  # one of KINDS
    endpoint: str
    bucket: str
    evidence: str  # short, for a person; never the secret
    status: int = 0  # the HTTP status (0: no answer)
    code: str = ""  # the S3 error code (NoSuchBucket, InvalidAccessKeyId, ...)

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def bucket_url(endpoint: str, bucket: str) -> str:
    """Path style: ENDPOINT/BUCKET (what distribution's driver uses with regionendpoint)."""
    return f"{endpoint.rstrip('/')}/{_encode(bucket)}"


def check_endpoint(endpoint: str) -> str | None:
    """Why ``endpoint`` is not an S3 endpoint URL we can ask, or None."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as e:  # a port out of range, a broken [IPv6]
        return f"is not a URL ({e})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "names no host"
    if parts.username or parts.password:
        return "must not hold a user or password (the keys go in the plan and the secret file)"
    if parts.path.strip("/") or parts.query or parts.fragment:
        return "must be just SCHEME://HOST[:PORT] (the bucket is storage.bucket)"
    if port == 0:
        return "names port 0"
    return None


def _code_and_message(body: bytes) -> tuple[str, str]:
    text = body.decode("utf-8", errors="replace")
    code = re.search(r"<Code>([^<]{1,100})</Code>", text)
    msg = re.search(r"<Message>([^<]{1,200})</Message>", text)
    return (code.group(1).strip() if code else ""), (msg.group(1).strip() if msg else "")


def classify(status: int, code: str) -> str:
    """The kind of an HTTP answer to GET /BUCKET?max-keys=1 (pure)."""
    if status == 200:
        return "ok"
    if code == "NoSuchBucket" or (status == 404 and not code):
        return "no-such-bucket"
    if code in DENIED_CODES or (status == 403 and not code):
        return "access-denied"
    return "error"


def _scrub(text: str, secret: str) -> str:
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    return text[:_MAX_EVIDENCE]


def bucket_status(
    endpoint: str,
    bucket: str,
    region: str,
    access_key: str,
    secret_key: str,
    *,
    timeout: float,
    now: datetime | float | None = None,
) -> BucketStatus:
    """Ask the object store whether ``bucket`` answers to these keys. Never raises."""

    def status(kind: str, evidence: str, code_: int = 0, s3code: str = "") -> BucketStatus:
        return BucketStatus(kind, endpoint, bucket, _scrub(evidence, secret_key), code_, s3code)

    why = check_endpoint(endpoint)
    if why:
        return status("error", f"storage.endpoint {endpoint!r} {why}")
    if not bucket:
        return status("error", "no bucket named (storage.bucket is empty)")
    url = bucket_url(endpoint, bucket) + "?max-keys=1"
    parts = urlsplit(url)
    what = f"GET {url}"
    headers = sign(
        "GET", url, region, access_key, secret_key, now if now is not None else datetime.now(UTC)
    )
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        # verified against the system's trust store (or SSL_CERT_FILE), with the host name
        ctx = ssl.create_default_context()
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ctx
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}", headers=headers)
        resp = conn.getresponse()
        body = resp.read(_MAX_BODY)
    except ssl.SSLError as e:
        return status("error", f"{what}: TLS failed: {e}")
    except TimeoutError:
        return status("unreachable", f"{what}: no answer within {timeout:g}s")
    except OSError as e:
        return status("unreachable", f"{what}: {e.strerror or e}")
    except (http.client.HTTPException, ValueError, UnicodeError) as e:
        return status("error", f"{what}: not an HTTP answer ({type(e).__name__})")
    finally:
        conn.close()
    code, message = _code_and_message(body)
    kind = classify(resp.status, code)
    said = f"{resp.status} {code or resp.reason}" + (f" ({message})" if message else "")
    return status(kind, f"{what}: {said}", resp.status, code)
