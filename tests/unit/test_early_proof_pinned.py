"""An early proof (engine._EarlyProof) starts before the health step has verified the
served certificate against the plan's trust anchor. Its credentials wait for that check,
made from this machine with no credential: until it holds, the verify user's password
goes to no Docker daemon, and so to no server."""

from __future__ import annotations

import threading

import pytest

from regwizard.facts.tls import Untrusted
from regwizard.plan import Connection, Plan, Secrets
from regwizard.steps import verify
from regwizard.steps.base import Ctx, HostEntry, StepError

DIGEST = "sha256:" + "ab" * 32


class Api:
    def __init__(self, log: list) -> None:
        self.log = log

    def push(self, repo, tag=None, stream=True, decode=True, auth_config=None):  # noqa: ANN001, ANN201
        self.log.append(("push", auth_config))
        if not auth_config:
            return iter([{"error": "no basic auth credentials"}])
        return iter([{"aux": {"Digest": DIGEST}}])

    def login(self, user, password, registry=None, reauth=False):  # noqa: ANN001, ANN201
        self.log.append(("login", password))
        return {}

    def pull(self, repo, tag=None, stream=True, decode=True, auth_config=None):  # noqa: ANN001, ANN201
        self.log.append(("pull", auth_config))
        return iter([{"status": f"Digest: {DIGEST}"}])


class Images:
    def get(self, ref):  # noqa: ANN001, ANN201 - the probe is there from the last run
        return object()

    def remove(self, ref, force=False):  # noqa: ANN001, ANN201
        pass


class Client:
    def __init__(self, log: list) -> None:
        self.api = Api(log)
        self.images = Images()


class Host:
    def __init__(self, log: list) -> None:
        self.client = Client(log)

    def docker(self, timeout: float):  # noqa: ANN201
        return self.client


class Served:
    pem = b""


class Net:
    def __init__(self, untrusted: bool) -> None:
        self.untrusted = untrusted
        self.requests: list = []

    def served(self, domain, target, port):  # noqa: ANN001, ANN201
        return Served()

    def request(self, domain, target, port, anchor, path, *, auth=None, **kw):  # noqa: ANN001, ANN003, ANN201
        self.requests.append((anchor, path, auth))
        if self.untrusted:
            raise Untrusted("certificate signed by unknown authority")
        return 401, {}, b""


def _ctx(untrusted: bool, log: list) -> tuple[Ctx, HostEntry]:
    plan = Plan()
    plan.registry.domain = "reg.lab.test"
    plan.registry.ip = "10.213.47.2"
    plan.verify.user = "demo"
    reg = HostEntry("root@10.213.47.2:22", "node1", Connection(address="10.213.47.2"))
    reg.is_registry = True
    client = HostEntry(
        "local", "this machine", Connection(address="local"), is_client=True, runtimes=("docker",)
    )
    client.host = Host(log)
    ctx = Ctx(
        plan, Secrets(verify_password="s3cret-pw"), lambda ev: None, threading.Event(),
        hosts=[reg, client], net=Net(untrusted), early=True,
    )  # fmt: skip
    ctx._facts[("trust-anchor", reg.key)] = b"the plan's CA"
    return ctx, client


def test_an_early_proof_sends_no_credential_before_the_server_verified_against_the_anchor():
    log: list = []
    ctx, client = _ctx(untrusted=True, log=log)
    with pytest.raises(StepError, match="not verified against the plan"):
        verify.Verify().apply(ctx, client, verify.VerifyChange("always verified"))
    assert log == [("push", {})]  # the anonymous push only: no login, no push with auth
    assert ctx.net.requests == [(b"the plan's CA", "/v2/", None)]


def test_an_early_proof_goes_on_once_the_server_verified():
    log: list = []
    ctx, client = _ctx(untrusted=False, log=log)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the fakes end at the pull back
        verify.Verify().apply(ctx, client, verify.VerifyChange("always verified"))
    assert ("login", "s3cret-pw") in log
    assert ("push", {"username": "demo", "password": "s3cret-pw"}) in log
    assert ctx.net.requests[0] == (b"the plan's CA", "/v2/", None)
