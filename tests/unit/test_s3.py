"""facts/s3: the SigV4 signer against AWS's published examples, and the bucket probe's
pure parts. The probe against a real SeaweedFS is tests/hosts/test_s3_seaweed.py."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from regwizard.facts import s3

# AWS's worked examples (S3 API reference, "Signature Calculations for the Authorization
# Header: Transferring Payload in a Single Chunk"): these keys, this time, this bucket.
KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime(2013, 5, 24, tzinfo=UTC)
HOST = "https://examplebucket.s3.amazonaws.com"


def _signature(headers: dict[str, str]) -> str:
    return headers["Authorization"].rsplit("Signature=", 1)[1]


@pytest.mark.parametrize(
    ("url", "extra", "want"),
    [
        # GET Object, with a Range header
        (f"{HOST}/test.txt", {"Range": "bytes=0-9"},
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        # GET Bucket lifecycle: a query name without a value
        (f"{HOST}/?lifecycle", {},
         "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        # GET Bucket (List Objects), query given out of order: the signer sorts it
        (f"{HOST}/?prefix=J&max-keys=2", {},
         "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ],
)  # fmt: skip
def test_aws_published_examples(url: str, extra: dict[str, str], want: str) -> None:
    headers = s3.sign("GET", url, "us-east-1", KEY, SECRET, NOW, headers=extra)
    assert _signature(headers) == want
    assert headers["x-amz-date"] == "20130524T000000Z"
    assert headers["x-amz-content-sha256"] == s3.EMPTY_SHA256
    assert headers["Host"] == "examplebucket.s3.amazonaws.com"
    assert f"Credential={KEY}/20130524/us-east-1/s3/aws4_request" in headers["Authorization"]


def test_time_forms_agree_and_a_port_is_in_host() -> None:
    a = s3.sign("GET", "http://127.0.0.1:8333/b", "us-east-1", KEY, SECRET, NOW)
    b = s3.sign("GET", "http://127.0.0.1:8333/b", "us-east-1", KEY, SECRET, NOW.timestamp())
    c = s3.sign(
        "GET", "http://127.0.0.1:8333/b", "us-east-1", KEY, SECRET, NOW.replace(tzinfo=None)
    )
    assert a == b == c
    assert a["Host"] == "127.0.0.1:8333"
    assert s3.sign("GET", "http://h:80/b", "r", KEY, SECRET, NOW)["Host"] == "h"


def test_a_path_given_encoded_is_encoded_once() -> None:
    a = s3.sign("GET", "http://h/a%20b/c", "r", KEY, SECRET, NOW)
    b = s3.sign("GET", "http://h/a b/c", "r", KEY, SECRET, NOW)
    assert a == b
    creq, _ = s3.canonical_request("GET", "http://h/a b/%E2%82%AC?z=&a=1", {"Host": "h"}, "x")
    assert creq.splitlines()[1:3] == ["/a%20b/%E2%82%AC", "a=1&z="]


_text = st.text(max_size=40)
_segment = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "get"]),
    segments=st.lists(_segment, max_size=4),
    query=st.lists(st.tuples(_segment, _segment), max_size=4),
    region=_text,
    access_key=_text,
    secret=st.text(min_size=8, max_size=60),
    when=st.integers(min_value=0, max_value=2**33),
    extra=st.dictionaries(
        st.from_regex(r"x-amz-meta-[a-z]{1,8}", fullmatch=True), _text, max_size=3
    ),
)
def test_sign_is_total_deterministic_and_never_shows_the_secret(
    method, segments, query, region, access_key, secret, when, extra
) -> None:
    from urllib.parse import quote, urlencode

    url = "http://127.0.0.1:8333/" + "/".join(quote(s, safe="") for s in segments)
    if query:
        url += "?" + urlencode(query)
    for value in (url, region, access_key, *extra.values()):
        assume(secret not in value)
    one = s3.sign(method, url, region, access_key, secret, when, headers=extra)
    two = s3.sign(method, url, region, access_key, secret, when, headers=dict(extra))
    assert one == two
    # text that is there whatever the secret (a header name, the date) is no leak
    other = s3.sign(method, url, region, access_key, "\x00" * len(secret), when, headers=extra)
    fixed = " ".join([*other, *other.values()])
    assert all(secret in fixed or secret not in k + " " + v for k, v in one.items())
    assert len(_signature(one)) == 64


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (200, "", "ok"),
        (404, "NoSuchBucket", "no-such-bucket"),
        (404, "", "no-such-bucket"),
        (403, "InvalidAccessKeyId", "access-denied"),
        (403, "SignatureDoesNotMatch", "access-denied"),
        (403, "AccessDenied", "access-denied"),
        (403, "", "access-denied"),
        (400, "AuthorizationHeaderMalformed", "error"),
        (301, "PermanentRedirect", "error"),
        (500, "InternalError", "error"),
    ],
)
def test_classify(status: int, code: str, kind: str) -> None:
    assert s3.classify(status, code) == kind


@pytest.mark.parametrize(
    "endpoint",
    ["", "127.0.0.1:8333", "ftp://h", "http://", "http://h:99999", "http://u:p@h:1",
     "http://h:1/registry", "http://[::1", "http://h:0"],
)  # fmt: skip
def test_a_bad_endpoint_is_an_error_not_a_request(endpoint: str) -> None:
    got = s3.bucket_status(endpoint, "registry", "us-east-1", KEY, SECRET, timeout=1)
    assert got.kind == "error" and "storage.endpoint" in got.evidence
    assert SECRET not in got.evidence


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as s:  # a port that was free a moment ago, closed again
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = s3.bucket_status(f"http://127.0.0.1:{port}", "registry", "us-east-1", KEY, SECRET,
                           timeout=2)  # fmt: skip
    assert got.kind == "unreachable", got
    assert got.evidence.startswith(f"GET http://127.0.0.1:{port}/registry?max-keys=1: ")


def test_error_body_and_scrub() -> None:
    body = b"<Error><Code>NoSuchBucket</Code><Message>no bucket</Message></Error>"
    assert s3._code_and_message(body) == ("NoSuchBucket", "no bucket")
    assert s3._code_and_message(b"\xff<html>") == ("", "")
    assert s3._scrub(f"said {SECRET}\n twice {SECRET}", SECRET) == "said *** twice ***"
