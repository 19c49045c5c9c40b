"""Browse and delete images: registry_api over a fake HTTP layer (paging, sizes, 405),
over a real TLS server on 127.0.0.1 (tls.request with Accept, HEAD, DELETE, max_body),
the allow_delete plan key through render/facts, and the CLI's refusals."""

from __future__ import annotations

import json
import string
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regwizard import problems, registry_api
from regwizard.errors import RegwizardError
from regwizard.facts import tls
from regwizard.facts.registry import interpret
from regwizard.registry_api import (
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryApi,
    next_last,
    parse_ref,
)

from .minireg import DOMAIN, PASSWORD, USER, MiniRegistry, digest_of, index, manifest

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


# --------------------------------------------------------------------------- a fake HTTP layer


class FakeHttp:
    """``send`` answering from a table of (method, path) -> (status, headers, body)."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, dict, bytes]]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, str, dict]] = []

    def __call__(self, method: str, path: str, headers: dict, limit: int):  # noqa: ANN204
        self.sent.append((method, path, headers))
        return self.answers.get((method, path), (404, {}, b"{}"))


def _api(answers) -> tuple[RegistryApi, FakeHttp]:  # noqa: ANN001
    http = FakeHttp(answers)
    return RegistryApi(http, DOMAIN, USER), http


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_catalog_pages_follow_the_link_header() -> None:
    api, http = _api(
        {
            ("GET", "/v2/_catalog?n=2"): (
                200,
                {"link": '</v2/_catalog?last=b&n=2>; rel="next"'},
                _json({"repositories": ["a", "b"]}),
            ),
            ("GET", "/v2/_catalog?n=2&last=b"): (
                200,
                {"link": '<https://elsewhere.example/v2/_catalog?n=2&last=team%2Fc>; rel="next"'},
                _json({"repositories": ["team/c", "d"]}),
            ),
            ("GET", "/v2/_catalog?n=2&last=team%2Fc"): (200, {}, _json({"repositories": ["e"]})),
        }
    )
    assert api.repositories(n=2) == registry_api.Page(("a", "b"), "b")
    assert list(api.all_repositories(n=2)) == ["a", "b", "team/c", "d", "e"]
    # only the link's `last` is used: every request went to our own registry's path
    assert all(p.startswith("/v2/_catalog?") for _m, p, _h in http.sent)


def test_a_link_that_loops_ends_the_listing() -> None:
    loop = {"link": '</v2/app/tags/list?last=x&n=1>; rel="next"'}
    api, _ = _api(
        {
            ("GET", "/v2/app/tags/list?n=1"): (200, loop, _json({"tags": ["x"]})),
            ("GET", "/v2/app/tags/list?n=1&last=x"): (200, loop, _json({"tags": ["y"]})),
        }
    )
    assert list(api.all_tags("app", n=1)) == ["x", "y"]


def test_tags_of_a_missing_repository_is_one_message() -> None:
    api, _ = _api({})
    with pytest.raises(RegwizardError, match="not found"):
        api.tags("nope")


def test_401_names_the_verify_user() -> None:
    api, _ = _api({("GET", "/v2/_catalog?n=100"): (401, {}, b"{}")})
    with pytest.raises(RegwizardError) as e:
        api.repositories()
    assert USER in e.value.cause and "REGWIZARD_PASSWORD" in e.value.fix


def _manifest_doc(media: str, config: int, *layers: tuple[str, int]) -> bytes:
    return _json(
        {
            "mediaType": media,
            "config": {"digest": D3, "size": config},
            "layers": [{"digest": d, "size": s} for d, s in layers],
        }
    )


@pytest.mark.parametrize("media", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_a_single_manifest_is_config_plus_layers(media: str) -> None:
    body = _manifest_doc(media, 1000, (D1, 20_000), (D2, 300))
    api, http = _api({("GET", "/v2/app/manifests/1"): (200, {"docker-content-digest": D1}, body)})
    info = api.tag_info("app", "1")
    assert (info.digest, info.media_type, info.size, info.error) == (D1, media, 21_300, "")
    assert http.sent[0][2] == {"Accept": ACCEPT}
    for m in (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST):
        assert m in ACCEPT


def test_without_a_digest_header_the_digest_is_the_body_hash() -> None:
    body = _manifest_doc(OCI_MANIFEST, 1, (D1, 2))
    api, _ = _api({("GET", "/v2/app/manifests/1"): (200, {}, body)})
    assert api.tag_info("app", "1").digest == digest_of(body)


@pytest.mark.parametrize("media", [OCI_INDEX, DOCKER_LIST])
def test_an_index_lists_platforms_and_counts_shared_layers_once(media: str) -> None:
    amd = _manifest_doc(OCI_MANIFEST, 100, (D1, 5000), (D2, 70))
    arm = _manifest_doc(OCI_MANIFEST, 100, (D1, 5000), ("sha256:" + "9" * 64, 30))
    da, dr = digest_of(amd), digest_of(arm)
    idx = _json(
        {
            "mediaType": media,
            "manifests": [
                {"digest": da, "platform": {"os": "linux", "architecture": "amd64"}},
                {"digest": dr, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
                {"digest": "not-a-digest"},
            ],
        }
    )
    api, _ = _api(
        {
            ("GET", "/v2/app/manifests/multi"): (200, {"docker-content-digest": D3}, idx),
            ("GET", f"/v2/app/manifests/{da}"): (200, {}, amd),
            ("GET", f"/v2/app/manifests/{dr}"): (200, {}, arm),
        }
    )
    info = api.tag_info("app", "multi")
    assert info.digest == D3 and info.media_type == media
    assert [(p.platform, p.size) for p in info.platforms] == [
        ("linux/amd64", 5170),
        ("linux/arm/v7", 5130),
    ]
    # config digests are the same fake digest here: counted once too
    assert info.size == 100 + 5000 + 70 + 30


def test_a_tag_that_cannot_be_read_carries_the_error() -> None:
    api, _ = _api({})
    info = api.tag_info("app", "gone")
    assert info.digest == "" and "does not exist" in info.error


def test_delete_without_allow_delete_says_how_to_enable_it() -> None:
    body = b'{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}'
    api, _ = _api({("DELETE", f"/v2/app/manifests/{D1}"): (405, {}, body)})
    with pytest.raises(RegwizardError) as e:
        api.delete("app", D1)
    assert e.value.cause == problems.DELETE_DISABLED.message
    assert "allow_delete = true" in e.value.fix and "regwizard apply" in e.value.fix
    assert "UNSUPPORTED" in e.value.evidence


def test_delete_accepted_and_not_found() -> None:
    api, http = _api({("DELETE", f"/v2/app/manifests/{D1}"): (202, {}, b"")})
    api.delete("app", D1)
    assert http.sent[-1][:2] == ("DELETE", f"/v2/app/manifests/{D1}")
    with pytest.raises(RegwizardError, match="already deleted"):
        api.delete("app", D2)
    with pytest.raises(RegwizardError, match="not a sha256 digest"):
        api.delete("app", "latest")


def test_resolve_uses_head_with_every_manifest_type() -> None:
    api, http = _api({("HEAD", "/v2/app/manifests/1"): (200, {"docker-content-digest": D2}, b"")})
    assert api.resolve("app", "1") == D2
    assert http.sent == [("HEAD", "/v2/app/manifests/1", {"Accept": ACCEPT})]
    assert api.resolve("app", D1) == D1  # a digest is its own answer


def test_names_from_the_registry_never_leave_the_path_grammar() -> None:
    api, http = _api({})
    with pytest.raises(RegwizardError):
        api.tags("../../etc")
    assert "is not a repository name" in api.tag_info("a/../b", "x").error
    assert http.sent == []


# --------------------------------------------------------------------------- parsers

_component = st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,5})?", fullmatch=True)
repos = st.lists(_component, min_size=1, max_size=4).map("/".join)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)


@given(repos, tags, st.booleans())
def test_parse_ref_round_trip(repo: str, tag: str, with_address: bool) -> None:
    text = f"{DOMAIN}:5000/{repo}:{tag}" if with_address else f"{repo}:{tag}"
    assert parse_ref(text, f"{DOMAIN}:5000") == (repo, tag)


@given(st.text(max_size=60))
def test_parse_ref_never_raises_anything_else(text: str) -> None:
    try:
        repo, ref = parse_ref(text)
    except RegwizardError as e:
        assert "\n" not in e.cause
        return
    assert registry_api.REPO_RE.fullmatch(repo)
    assert registry_api.TAG_RE.fullmatch(ref) or registry_api.DIGEST_RE.fullmatch(ref)


@given(repos, st.integers(1, 1000), st.sampled_from(["", "https://reg.example.test:5000"]))
def test_next_last_reads_the_link_the_registry_writes(last: str, n: int, base: str) -> None:
    link = f'<{base}/v2/_catalog?last={quote(last, safe="")}&n={n}>; rel="next"'
    assert next_last(link) == last
    assert next_last(f'<{base}/v2/x?last=a>; rel="prev"') == ""


@given(st.text(alphabet=string.printable, max_size=80))
def test_next_last_never_raises(link: str) -> None:
    assert isinstance(next_last(link), str)


def test_human_size() -> None:
    assert registry_api.human_size(999) == "999 B"
    assert registry_api.human_size(1536) == "1.5 KiB"
    assert registry_api.human_size(3 * 1024**3) == "3.0 GiB"


# --------------------------------------------------------------------------- the plan key


def _ctx(allow: bool):  # noqa: ANN202
    import threading

    from regwizard.plan import Plan
    from regwizard.steps.base import Ctx

    plan = Plan()
    plan.registry.allow_delete = allow
    return Ctx(plan, None, lambda e: None, threading.Event())  # type: ignore[arg-type]


def test_allow_delete_sets_storage_delete_enabled_and_the_settings_hash() -> None:
    from regwizard.facts.registry import parse_config
    from regwizard.steps.config import content_hash, render

    on, off = render(_ctx(True), "s"), render(_ctx(False), "s")
    assert parse_config(on.encode())[0]["storage"]["delete"]["enabled"] is True
    assert parse_config(off.encode())[0]["storage"]["delete"]["enabled"] is False
    # the container step recreates the registry when this hash changes
    assert content_hash(_ctx(True)) != content_hash(_ctx(False))


@pytest.mark.parametrize(
    ("env", "yaml", "want"),
    [
        ([], "storage:\n  delete:\n    enabled: true\n", True),
        ([], "storage:\n  delete:\n    enabled: false\n", False),
        ([], "version: 0.1\n", False),
        (["REGISTRY_STORAGE_DELETE_ENABLED=true"], "version: 0.1\n", True),
        (
            ["REGISTRY_STORAGE_DELETE_ENABLED=false"],
            "storage:\n  delete:\n    enabled: true\n",
            False,
        ),
        (["REGISTRY_STORAGE_DELETE_ENABLED=1"], "", True),
        (["REGISTRY_STORAGE_DELETE_ENABLED=yes"], "", False),  # Go's ParseBool refuses yes
    ],
)
def test_facts_read_delete_enabled(env: list[str], yaml: str, want: bool) -> None:
    attrs = {"Config": {"Image": "registry:2", "Cmd": ["/c.yml"], "Env": env}}
    facts = interpret(attrs, lambda p: (yaml.encode(), p))
    assert facts.delete_enabled is want


def test_the_example_plan_documents_allow_delete() -> None:
    from regwizard.plan import EXAMPLE_PLAN, parse_plan

    assert "allow_delete = false" in EXAMPLE_PLAN
    assert parse_plan(EXAMPLE_PLAN).registry.allow_delete is False


def test_allow_delete_must_be_a_boolean() -> None:
    from regwizard.errors import PlanError
    from regwizard.plan import EXAMPLE_PLAN, parse_plan

    bad = EXAMPLE_PLAN.replace("allow_delete = false", 'allow_delete = "yes"')
    with pytest.raises(PlanError, match="allow_delete"):
        parse_plan(bad)


# --------------------------------------------------------------------------- over real TLS


@pytest.fixture
def minireg(tmp_path: Path):  # noqa: ANN201
    reg = MiniRegistry(tmp_path)
    yield reg
    reg.close()


def _real_api(reg: MiniRegistry, anchor: bytes | None = None) -> RegistryApi:
    ep = registry_api.Endpoint(DOMAIN, "127.0.0.1", reg.port, anchor or reg.anchor, timeout=5)
    return registry_api.api_over_tls(ep, USER, PASSWORD)


def test_browse_and_delete_through_tls_request(minireg: MiniRegistry) -> None:
    for i in range(5):
        minireg.push(f"team/app{i}", "1", manifest(10, (D1, 1000 + i)))
    d = minireg.push("team/app0", "2", manifest(10, (D2, 50), media=DOCKER_MANIFEST))
    child = minireg.add_blob_manifest(manifest(5, (D1, 7)))
    minireg.push("multi", "latest", index((child, "linux", "amd64")))
    api = _real_api(minireg)
    api.login()
    assert api.repositories(n=2).next == "team/app0"
    assert list(api.all_repositories(n=2)) == ["multi"] + [f"team/app{i}" for i in range(5)]
    assert list(api.all_tags("team/app0", n=1)) == ["1", "2"]
    info = api.tag_info("team/app0", "2")
    assert (info.digest, info.size, info.media_type) == (d, 60, DOCKER_MANIFEST)
    multi = api.tag_info("multi", "latest")
    assert multi.size == 12 and [p.platform for p in multi.platforms] == ["linux/amd64"]
    assert api.resolve("team/app0", "2") == d
    # delete is off: 405, the Known problem's words
    with pytest.raises(RegwizardError) as e:
        api.delete("team/app0", d)
    assert e.value.cause == problems.DELETE_DISABLED.message
    minireg.delete_enabled = True
    api.delete("team/app0", d)
    assert list(api.all_tags("team/app0")) == ["1"]
    head = [h for m, _p, h in minireg.requests if m == "HEAD"]
    assert head and all(ACCEPT == h.get("Accept") for h in head)


def test_an_impostor_never_gets_the_password(minireg: MiniRegistry, tmp_path: Path) -> None:
    other = MiniRegistry(tmp_path / "..")  # another CA: not the plan's anchor
    try:
        with pytest.raises(RegwizardError, match="password was not sent"):
            _real_api(minireg, anchor=other.anchor).repositories()
        assert minireg.requests == []
    finally:
        other.close()


def test_request_reads_up_to_max_body(minireg: MiniRegistry) -> None:
    tags_ = [f"t{i:05d}" for i in range(12000)]
    minireg.repos["big"] = dict.fromkeys(tags_, b"{}")
    args = (DOMAIN, "127.0.0.1", minireg.port, minireg.anchor, "/v2/big/tags/list")
    _s, _h, short = tls.request(*args, auth=(USER, PASSWORD))
    assert len(short) == 65536  # the default: as before
    _s, _h, body = tls.request(*args, auth=(USER, PASSWORD), max_body=1 << 20)
    assert json.loads(body)["tags"] == tags_


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"method": "PATCH"}, "does not send 'PATCH'"),  # POST/PUT: the replica proof's
        ({"body": b"x"}, "sends no body with GET"),
        ({"headers": {"Authorization": "Basic eA=="}}, "Authorization"),
        ({"headers": {"host": "evil"}}, "host"),
        ({"headers": {"Accept": "a\r\nX-Evil: 1"}}, "Accept"),
    ],
)
def test_request_refuses_bodies_and_credential_headers(minireg, kw: dict, words: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=words):
        tls.request(DOMAIN, "127.0.0.1", minireg.port, minireg.anchor, "/v2/", **kw)
    assert minireg.requests == []
