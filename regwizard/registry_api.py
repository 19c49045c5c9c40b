"""What a registry stores, read (and deleted) through its HTTP API, page by page.

Every call goes through ``facts.tls.request``: the server is verified against the
plan's trust anchor and name before the verify user's password is sent. ``open_api``
reads that anchor (from the registry host over SSH, or the provided chain on this
machine) and returns a :class:`RegistryApi`; offline tests build one over a fake
``send``.

Paging follows distribution: ``?n=N&last=NAME``, and a ``Link: <...>; rel="next"``
header while there is more. Only the ``last`` of that link is used, never its host, so a
crafted link cannot send the password elsewhere.

Sizes: a single manifest's size is its config blob plus its layers, as pushed
(compressed). An index (multi-platform) lists each platform's size in ``platforms`` and
its ``size`` is the sum over the distinct blobs of every platform (a layer two platforms
share is counted once): what the tag holds on the registry's disk, less the manifests.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

from regwizard import problems
from regwizard.errors import Cancelled, RegwizardError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*INDEXES, *MANIFESTS))

PAGE = 100  # repositories or tags asked for at once
MAX_LIST_BODY = 4 << 20  # a page of names
MAX_MANIFEST_BODY = 4 << 20  # distribution refuses manifests over 4 MiB
MAX_PLATFORMS = 64  # child manifests read for one index

# a repository name (distribution's reference grammar) and a tag
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPO_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

# method, path, extra headers, max body -> (status, lower-case headers, body)
Send = Callable[[str, str, dict[str, str], int], "tuple[int, dict[str, str], bytes]"]


@dataclass(frozen=True)
class Page:
    """One page of names; ``next`` is the ``last`` to ask for the next page ("" = none)."""

    items: tuple[str, ...]
    next: str = ""


@dataclass(frozen=True)
class Platform:
    platform: str  # os/arch[/variant] ("unknown/unknown": an attestation)
    digest: str
    size: int  # its config + layers


@dataclass(frozen=True)
class TagInfo:
    repo: str
    tag: str
    digest: str = ""
    media_type: str = ""
    size: int = 0  # see the module's doc for an index
    platforms: tuple[Platform, ...] = ()
    error: str = ""  # why digest/size could not be read ("" = read)

    def to_json(self) -> dict:
        return {
            "repository": self.repo,
            "tag": self.tag,
            "digest": self.digest,
            "media_type": self.media_type,
            "size": self.size,
            "platforms": [
                {"platform": p.platform, "digest": p.digest, "size": p.size} for p in self.platforms
            ],
            "error": self.error,
        }


# --------------------------------------------------------------------------- pure parts


def next_last(link: str) -> str:
    """The ``last`` of a ``Link: <URL>; rel="next"`` header ("" when there is none)."""
    for part in link.split(","):
        m = re.match(r"\s*<([^>]*)>\s*;(.*)$", part)
        if not m or not re.search(r'rel\s*=\s*"?next"?', m.group(2)):
            continue
        try:
            query = parse_qs(urlsplit(m.group(1)).query)
        except ValueError:
            return ""
        return (query.get("last") or [""])[0]
    return ""


def parse_ref(text: str, address: str = "") -> tuple[str, str]:
    """``REPO:TAG`` or ``REPO@sha256:...`` -> (repo, tag or digest). A leading ``address/``
    (the registry's, as docker push names it) is dropped. Raises RegwizardError."""
    fix = "write REPO:TAG as `regwizard images` lists it, e.g. team/app:1.0"
    ref = text.strip()
    if address and ref.startswith(address + "/"):
        ref = ref[len(address) + 1 :]
    if "@" in ref:
        repo, _, ref_part = ref.partition("@")
        ok = bool(DIGEST_RE.fullmatch(ref_part))
    else:
        repo, sep, ref_part = ref.rpartition(":")
        ok = bool(sep) and "/" not in ref_part and bool(TAG_RE.fullmatch(ref_part))
    shown = ascii(text)[1:-1][:120]
    if not ok:
        raise RegwizardError(f"{shown!r} names no tag (REPO:TAG or REPO@sha256:DIGEST)", fix)
    if not REPO_RE.fullmatch(repo) or len(repo) > 255:
        raise RegwizardError(
            f"{repo[:120]!r} is not a repository name (lowercase letters, digits, . _ - and /)",
            fix,
        )
    return repo, ref_part


def _check_name(repo: str, ref: str = "") -> None:
    """Names go into URL paths: only what distribution's grammar allows."""
    if not REPO_RE.fullmatch(repo) or len(repo) > 255:
        raise RegwizardError(f"{repo[:120]!r} is not a repository name", "check the name")
    if ref and not (TAG_RE.fullmatch(ref) or DIGEST_RE.fullmatch(ref)):
        raise RegwizardError(f"{ref[:130]!r} is not a tag or a digest", "check the name")


def blob_size(manifest: dict) -> int:
    """A single manifest's config + layer sizes."""
    return sum(_size(b) for b in _blobs(manifest))


def _blobs(manifest: dict) -> list[dict]:
    out = [manifest.get("config")] + list(_list(manifest.get("layers")))
    return [b for b in out if isinstance(b, dict)]


def _size(b: dict) -> int:
    v = b.get("size")
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def _list(x: object) -> list:
    return x if isinstance(x, list) else []


def platform_name(entry: dict) -> str:
    p = entry.get("platform") if isinstance(entry.get("platform"), dict) else {}
    parts = [str(p.get("os") or "unknown"), str(p.get("architecture") or "unknown")]
    if p.get("variant"):
        parts.append(str(p["variant"]))
    return "/".join(parts)


def index_size(children: list[dict]) -> int:
    """The distinct blobs of an index's child manifests, each counted once."""
    seen: dict[str, int] = {}
    for m in children:
        for b in _blobs(m):
            seen.setdefault(str(b.get("digest") or id(b)), _size(b))
    return sum(seen.values())


def human_size(n: int) -> str:
    """1536 -> '1.5 KiB' (binary units, as du -h)."""
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}"
    return f"{n} B"  # pragma: no cover


def short_digest(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _errors(body: bytes) -> str:
    """The registry's error codes and messages, from its JSON error body."""
    try:
        doc = json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return ""
    errs = doc.get("errors") if isinstance(doc, dict) else None
    out = []
    for e in _list(errs)[:3]:
        if isinstance(e, dict):
            out.append(f"{e.get('code', '')}: {e.get('message', '')}".strip(": "))
    return "; ".join(out)[:300]


# --------------------------------------------------------------------------- the API


class RegistryApi:
    """The registry's API as the verify user. Methods block; each request has a timeout."""

    def __init__(self, send: Send, address: str, user: str = "") -> None:
        self.send = send
        self.address = address  # domain[:port], for messages
        self.user = user

    # -- plumbing

    def _get(self, method: str, path: str, accept: str = "", limit: int = MAX_LIST_BODY):  # noqa: ANN202
        headers = {"Accept": accept} if accept else {}
        try:
            status, hdrs, body = self.send(method, path, headers, limit + 1)
        except OSError as e:
            raise RegwizardError(
                f"the registry at {self.address} does not answer: {e}",
                "check that it runs (regwizard doctor PLAN)",
            ) from None
        if len(body) > limit:
            raise RegwizardError(
                f"{method} {path}: the answer is over {limit} bytes", "report this registry"
            )
        if status == 401:
            raise RegwizardError(
                f"the registry refused the login of {self.user or 'the verify user'} (401)",
                "give the verify user's password (REGWIZARD_PASSWORD), as the plan's hash has it",
            )
        return status, hdrs, body

    @staticmethod
    def _fail(what: str, status: int, body: bytes) -> RegwizardError:
        detail = _errors(body)
        return RegwizardError(
            f"{what}: the registry answered {status}" + (f" ({detail})" if detail else ""),
            "check the name; regwizard doctor PLAN checks the registry",
        )

    def _names(self, path: str, key: str, what: str) -> Page:
        status, hdrs, body = self._get("GET", path)
        if status == 404:
            raise RegwizardError(f"{what}: not found (404)", "check the repository name")
        if status != 200:
            raise self._fail(what, status, body)
        try:
            doc = json.loads(body.decode("utf-8", errors="replace"))
        except (ValueError, RecursionError):
            raise RegwizardError(
                f"{what}: the answer is not JSON", "report this registry"
            ) from None
        names = doc.get(key) if isinstance(doc, dict) else None
        items = tuple(str(x) for x in _list(names) if isinstance(x, str))
        return Page(items, next_last(hdrs.get("link", "")))

    # -- listing

    def repositories(self, last: str = "", n: int = PAGE) -> Page:
        q = f"?n={n}" + (f"&last={quote(last, safe='')}" if last else "")
        return self._names(f"/v2/_catalog{q}", "repositories", "listing repositories")

    def tags(self, repo: str, last: str = "", n: int = PAGE) -> Page:
        _check_name(repo)
        q = f"?n={n}" + (f"&last={quote(last, safe='')}" if last else "")
        page = self._names(f"/v2/{repo}/tags/list{q}", "tags", f"listing the tags of {repo}")
        # a registry without paging for tags answers them all: still one page
        return page

    def all_repositories(self, n: int = PAGE) -> Iterator[str]:
        yield from self._pages(lambda last: self.repositories(last, n))

    def all_tags(self, repo: str, n: int = PAGE) -> Iterator[str]:
        yield from self._pages(lambda last: self.tags(repo, last, n))

    @staticmethod
    def _pages(fetch: Callable[[str], Page]) -> Iterator[str]:
        last, seen = "", set()
        while True:
            page = fetch(last)
            yield from page.items
            if not page.next or page.next in seen:  # a loop of links ends here
                return
            seen.add(page.next)
            last = page.next

    # -- manifests

    def _manifest(self, repo: str, ref: str) -> tuple[str, str, dict]:
        """(digest, media type, document) of a tag or digest."""
        _check_name(repo, ref)
        what = f"{repo}:{ref}" if not ref.startswith("sha256:") else f"{repo}@{ref}"
        status, hdrs, body = self._get(
            "GET", f"/v2/{repo}/manifests/{ref}", ACCEPT, MAX_MANIFEST_BODY
        )
        if status == 404:
            raise RegwizardError(f"{what} does not exist (404)", "check with regwizard images PLAN")
        if status != 200:
            raise self._fail(f"reading {what}", status, body)
        digest = (
            hdrs.get("docker-content-digest", "") or "sha256:" + hashlib.sha256(body).hexdigest()
        )
        try:
            doc = json.loads(body.decode("utf-8", errors="replace"))
        except (ValueError, RecursionError):
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        media = str(doc.get("mediaType") or hdrs.get("content-type", "").split(";")[0])
        return digest, media, doc

    def tag_info(self, repo: str, tag: str) -> TagInfo:
        """Digest, media type and size of one tag; a failure is in ``error``, not raised."""
        try:
            digest, media, doc = self._manifest(repo, tag)
            if media in INDEXES or "manifests" in doc:
                platforms, children = [], []
                for entry in _list(doc.get("manifests"))[:MAX_PLATFORMS]:
                    if not isinstance(entry, dict) or not DIGEST_RE.fullmatch(
                        str(entry.get("digest", ""))
                    ):
                        continue
                    _d, _m, child = self._manifest(repo, entry["digest"])
                    children.append(child)
                    platforms.append(
                        Platform(platform_name(entry), entry["digest"], blob_size(child))
                    )
                return TagInfo(repo, tag, digest, media, index_size(children), tuple(platforms))
            return TagInfo(repo, tag, digest, media, blob_size(doc))
        except RegwizardError as e:
            return TagInfo(repo, tag, error=e.cause)

    def resolve(self, repo: str, ref: str) -> str:
        """The digest a tag points at (HEAD, with every manifest type accepted)."""
        _check_name(repo, ref)
        if DIGEST_RE.fullmatch(ref):
            return ref
        status, hdrs, body = self._get("HEAD", f"/v2/{repo}/manifests/{ref}", ACCEPT)
        if status == 404:
            raise RegwizardError(
                f"{repo}:{ref} does not exist (404)", "check with regwizard images PLAN"
            )
        digest = hdrs.get("docker-content-digest", "")
        if status != 200 or not DIGEST_RE.fullmatch(digest):
            if status == 200:  # no digest header: read the manifest itself
                return self._manifest(repo, ref)[0]
            raise self._fail(f"resolving {repo}:{ref}", status, body)
        return digest

    def delete(self, repo: str, digest: str) -> None:
        """DELETE the manifest ``digest`` (every tag of ``repo`` pointing at it goes).

        Raises RegwizardError: DELETE_DISABLED's words for 405 (delete not enabled)."""
        _check_name(repo, digest)
        if not DIGEST_RE.fullmatch(digest):
            raise RegwizardError(f"{digest!r} is not a sha256 digest", "resolve the tag first")
        status, _h, body = self._get("DELETE", f"/v2/{repo}/manifests/{digest}")
        if status in (200, 202):
            return
        if status == 405:
            p = problems.DELETE_DISABLED(evidence=f"DELETE {repo}@{digest} -> 405 {_errors(body)}")
            raise RegwizardError(p.message, p.fix, p.evidence)
        if status == 404:
            raise RegwizardError(f"{repo}@{digest} does not exist (404): already deleted?", "")
        raise self._fail(f"deleting {repo}@{digest}", status, body)

    def login(self) -> None:
        """Prove the credentials (GET /v2/ answers 200)."""
        status, _h, body = self._get("GET", "/v2/")
        if status != 200:
            raise self._fail("GET /v2/", status, body)


# --------------------------------------------------------------------------- opening


@dataclass
class Endpoint:
    """Where the registry answers and what proves it is the registry."""

    domain: str
    target: str
    port: int
    anchor: bytes = field(repr=False, default=b"")
    timeout: float = 15.0


def api_over_tls(ep: Endpoint, user: str, password: str) -> RegistryApi:
    """A RegistryApi whose every request is verified by ``facts.tls.request``."""
    from regwizard.facts import tls

    def send(method: str, path: str, headers: dict[str, str], limit: int):  # noqa: ANN202
        try:
            return tls.request(
                ep.domain, ep.target, ep.port, ep.anchor, path,
                auth=(user, password), method=method, timeout=ep.timeout,
                headers=headers, max_body=limit,
            )  # fmt: skip
        except tls.Untrusted as e:
            raise RegwizardError(
                f"the server at {ep.target}:{ep.port} does not prove it is {ep.domain}: "
                f"{e.reason}; the password was not sent",
                "run regwizard doctor PLAN",
            ) from None

    address = ep.domain if ep.port == 443 else f"{ep.domain}:{ep.port}"
    return RegistryApi(send, address, user)


def open_api(plan, secrets, cancel: threading.Event | None = None, *, connect=None) -> RegistryApi:  # noqa: ANN001
    """The plan's registry as its verify user: reads the trust anchor (over SSH unless the
    certificate is provided on this machine), then proves the login. Raises RegwizardError."""
    from regwizard.steps.base import Ctx, close_all, connect_each, host_entries
    from regwizard.steps.trust import anchor

    cancel = cancel or threading.Event()
    user = plan.verify_user
    if not user or not secrets.verify_password:
        raise RegwizardError(
            f"no password for the verify user {user or '(none)'}",
            "set REGWIZARD_PASSWORD, or run on a terminal to be asked",
        )
    reg_entry = host_entries(plan)[0]
    ctx = Ctx(plan, secrets, lambda e: None, cancel, dry_run=True, hosts=[reg_entry])
    try:
        if plan.certificate.mode != "provided":
            [(_e, err)] = connect_each([reg_entry], secrets, cancel, connect)
            if err is not None:
                raise err
        if cancel.is_set():
            raise Cancelled()
        trust = anchor(ctx)
    finally:
        close_all([reg_entry])
    if not trust:
        raise RegwizardError(
            "there is no trust anchor on the registry host yet", "run regwizard apply PLAN first"
        )
    reg = plan.registry
    api = api_over_tls(
        Endpoint(reg.domain, ctx.target, reg.port, trust), user, secrets.verify_password
    )
    api.login()
    return api
