"""When verification waits for dockerd to see /etc/hosts (issue 15: wait only on evidence).

dockerd caches /etc/hosts for 5 s after it last read it. Every client tries at once and
waits only after "no such host" for the registry's name. No timing is asserted: the waits
are recorded by a fake cancel event.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from regwizard.errors import Cancelled
from regwizard.plan import Connection, Plan
from regwizard.steps import verify
from regwizard.steps.base import Ctx, HostEntry


class RecordingEvent:
    def __init__(self, cancelled: bool = False) -> None:
        self.waits: list[float] = []
        self.cancelled = cancelled

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.cancelled

    def is_set(self) -> bool:
        return self.cancelled


def _ctx(cancel: RecordingEvent) -> Ctx:
    plan = Plan()
    plan.registry.domain = "reg.lab.test"
    plan.registry.ip = "10.213.47.2"
    return Ctx(plan=plan, secrets=None, emit=lambda ev: None, cancel=cancel)  # type: ignore[arg-type]


REMOTE = HostEntry(
    "root@10.213.47.3:22", "node2", Connection(address="10.213.47.3"), is_client=True
)


def test_no_client_waits_before_its_first_try():
    """Not even this machine: the lab runs its dockerd with a resolv.conf naming its own
    loopback (lab.LAB_RESOLV_CONF), so a test that leaves a cache stale sends nothing out."""
    assert not hasattr(verify, "_await_resolver")
    src = Path(verify.__file__).read_text()
    assert "hosts_changed_at" in src  # the only use: the wait after a miss


def test_after_a_miss_the_wait_is_the_rest_of_the_window_since_this_runs_write():
    cancel = RecordingEvent()
    ctx = _ctx(cancel)
    ctx.hosts_changed_at[REMOTE.key] = time.monotonic() - 3.0
    verify._await_stale_resolver(ctx, "verify", REMOTE)
    assert len(cancel.waits) == 1 and cancel.waits[0] < verify.HOSTS_CACHE_SECONDS - 2.5
    # written long ago in this run: the copy dockerd holds cannot be older; no wait
    ctx.hosts_changed_at[REMOTE.key] = time.monotonic() - 60
    verify._await_stale_resolver(ctx, "verify", REMOTE)
    assert cancel.waits[1] == 0.0


def test_after_a_miss_with_a_hand_edit_before_the_run_the_whole_window_is_waited():
    cancel = RecordingEvent()
    ctx = _ctx(cancel)
    verify._await_stale_resolver(ctx, "verify", REMOTE)
    assert cancel.waits == [verify.HOSTS_CACHE_SECONDS]


def test_a_cancel_during_the_wait_stops_the_run():
    cancel = RecordingEvent(cancelled=True)
    ctx = _ctx(cancel)
    with pytest.raises(Cancelled):
        verify._await_stale_resolver(ctx, "verify", REMOTE)


def test_only_a_lookup_of_the_registry_name_counts_as_a_miss():
    ctx = _ctx(RecordingEvent())
    assert verify._stale_lookup(ctx, "dial tcp: lookup reg.lab.test on 127.0.0.1:53: no such host")
    assert not verify._stale_lookup(ctx, "x509: certificate signed by unknown authority")
    ctx.plan.registry.manage_hosts_file = False
    assert not verify._stale_lookup(ctx, "lookup reg.lab.test: no such host")


def test_the_lab_gives_nodes_and_its_own_dockerd_a_resolver_where_nothing_listens():
    from regwizard import lab

    servers = [
        ln.split()[1] for ln in lab.LAB_RESOLV_CONF.splitlines() if ln.startswith("nameserver")
    ]
    assert servers == ["127.0.0.1"]


def test_a_lookup_no_dns_server_answered_is_explained_as_a_name_that_does_not_resolve():
    """On a host whose DNS server does not answer (the lab's nodes, an air-gapped host)
    Docker says "connection refused" for the lookup: never blame the registry's port."""
    from regwizard.diagnose import explain

    text = (
        'Get "https://reg.lab.test/v2/": dial tcp: lookup reg.lab.test on 127.0.0.1:53: '
        "read udp 127.0.0.1:46207->127.0.0.1:53: read: connection refused"
    )
    cause, fix = explain(text)
    assert "does not resolve" in cause and "/etc/hosts" in fix
    ctx = _ctx(RecordingEvent())
    assert verify._stale_lookup(ctx, text)
    port = 'Get "https://reg.lab.test/v2/": dial tcp 10.0.0.2:443: connect: connection refused'
    assert "nothing listens" in explain(port)[0]
