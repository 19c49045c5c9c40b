"""Snapshots (80x24) of the client runtimes: the Hosts table and the Add-client dialog.

Update these baselines only with ``--snapshot-update`` on this file's tests.
"""

from __future__ import annotations

from textual.widgets import DataTable

from .conftest import SIZE, make_app
from .fakes import CONTAINERD_CLIENT
from .test_runtimes import open_add_client, three_clients, tick
from .walk import fill_hosts, start_new


def test_hosts_three_runtimes(snap_compare):
    """Clients with Docker; Docker + podman; containerd: a Runtimes column, and (the
    table has the focus) the footer's "Edit client"."""

    async def run_before(pilot) -> None:
        await start_new(pilot)
        await fill_hosts(pilot)
        pilot.app.screen.query_one("#clients", DataTable).focus()
        await pilot.pause()

    app = make_app(plan=three_clients())
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_add_client_containerd(snap_compare):
    """containerd ticked (Docker not): the option to set config_path shows."""

    async def run_before(pilot) -> None:
        await start_new(pilot)
        await fill_hosts(pilot)
        await open_add_client(pilot, CONTAINERD_CLIENT, "k8s-node")
        await tick(pilot, "containerd")  # leaves the focus on the containerd box
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
