"""Pilot tests: each client's container runtimes (Docker, containerd, podman) in the wizard.

Hosts shows them, the Add-client dialog (also used to Edit a client) changes them, Test
connection ticks what it found, Review lists the ones that are not Docker alone, and
Results shows one proof line per client and runtime.
"""

from __future__ import annotations

from textual.widgets import Checkbox, DataTable, Static

from regwizard.plan import RUNTIMES, Connection, Plan

from .conftest import SIZE, make_app
from .fakes import (
    BARE_CLIENT,
    CONTAINERD_CLIENT,
    CONTAINERD_PROOF,
    PODMAN_CLIENT,
    PODMAN_PROOF,
    PROOF_FAILURES,
    FakeBackend,
)
from .walk import (
    SSH_PASSWORD,
    activate,
    add_user,
    enter_value,
    error_text,
    fill_certificate,
    fill_hosts,
    next_step,
    run_from_review,
    screen_name,
    screen_text,
    settle,
    start_new,
    widget_text,
)


def ticked(pilot) -> list[str]:
    """The runtimes ticked in the open client dialog."""
    return [r for r in RUNTIMES if pilot.app.screen.query_one(f"#client-{r}", Checkbox).value]


async def tick(pilot, *runtimes: str) -> None:
    """Tick exactly ``runtimes`` in the open client dialog, by keyboard (Enter toggles)."""
    for r in RUNTIMES:
        if (r in runtimes) != pilot.app.screen.query_one(f"#client-{r}", Checkbox).value:
            await activate(pilot, f"#client-{r}")


def manage_shown(pilot) -> bool:
    return bool(pilot.app.screen.query_one("#client-manage-containerd-field").display)


async def open_add_client(pilot, address: str, label: str = "") -> None:
    await activate(pilot, "#add-client")
    assert screen_name(pilot) == "AddClientDialog"
    await enter_value(pilot, "#client-address", address)
    if label:
        await enter_value(pilot, "#client-label", label)


def column(pilot, key: str) -> list[str]:
    """One column of the clients table, top to bottom (``key``: name, runtimes, status ...)."""
    table = pilot.app.screen.query_one("#clients", DataTable)
    return [str(c) for c in table.get_column(key)]


def headers(pilot) -> list[str]:
    table = pilot.app.screen.query_one("#clients", DataTable)
    return [str(c.label) for c in table.ordered_columns]


async def edit_row(pilot, row: int) -> None:
    """Select a client row and press Enter: the Edit dialog."""
    table = pilot.app.screen.query_one("#clients", DataTable)
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    assert screen_name(pilot) == "AddClientDialog"


def three_clients() -> Plan:
    """A Docker client (this machine), a Docker + podman one, a containerd-only one."""
    return Plan(
        clients=[
            Connection(),
            Connection(PODMAN_CLIENT, label="build", runtimes=["docker", "podman"]),
            Connection(
                CONTAINERD_CLIENT,
                label="k8s-node",
                runtimes=["containerd"],
                manage_containerd_config=True,
            ),
        ]
    )


# -- (a) add a client with podman + containerd -------------------------------------------------


async def test_add_client_with_containerd_and_podman(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        assert headers(pilot) == ["Client", "Address", "Login", "Status"]  # Docker only: as ever
        await open_add_client(pilot, "10.0.0.3", "k8s-node")
        assert ticked(pilot) == ["docker"]  # the default
        assert not manage_shown(pilot)  # the containerd option waits for containerd
        await tick(pilot, "containerd", "podman")
        assert ticked(pilot) == ["containerd", "podman"]
        assert manage_shown(pilot)
        await activate(pilot, "#client-manage-containerd")
        await activate(pilot, "#add")
        assert screen_name(pilot) == "HostsScreen"
        assert headers(pilot) == ["Client", "Address", "Login", "Runtimes", "Status"]
        assert column(pilot, "runtimes") == ["docker", "containerd, podman"]
        await next_step(pilot)
    node = app.state.plan.clients[1]
    assert node.address == "10.0.0.3" and node.label == "k8s-node"
    assert node.runtimes == ["containerd", "podman"]
    assert node.manage_containerd_config is True
    assert app.state.plan.clients[0].runtimes == ["docker"]


async def test_containerd_option_is_not_kept_without_containerd(backend):
    """Ticking the option, then unticking containerd: the plan never asks to edit a
    config.toml regwizard is not to touch."""
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await open_add_client(pilot, "10.0.0.3")
        await tick(pilot, "docker", "containerd")
        await activate(pilot, "#client-manage-containerd")
        await tick(pilot, "docker")
        assert not manage_shown(pilot)
        await activate(pilot, "#add")
        await next_step(pilot)
    node = app.state.plan.clients[1]
    assert node.runtimes == ["docker"] and node.manage_containerd_config is False


# -- (b) no runtime ticked ---------------------------------------------------------------------


async def test_no_runtime_ticked_is_refused(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await open_add_client(pilot, "10.0.0.3")
        await tick(pilot)  # untick Docker: nothing left
        assert ticked(pilot) == []
        await activate(pilot, "#add")
        assert screen_name(pilot) == "AddClientDialog"  # refused: the dialog stays
        assert "at least one runtime" in error_text(pilot, "client-runtimes")
        assert pilot.app.screen.query_one("#client-runtimes").has_class("-invalid")
        await tick(pilot, "podman")
        assert error_text(pilot, "client-runtimes") == ""  # ticking one clears it
        await activate(pilot, "#add")
        assert screen_name(pilot) == "HostsScreen"
        assert column(pilot, "runtimes") == ["docker", "podman"]


# -- (c) Test connection ticks what it found ---------------------------------------------------


async def test_test_connection_ticks_detected_runtimes(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        screen = pilot.app.screen
        # Docker + podman found on a client added as Docker only
        await open_add_client(pilot, PODMAN_CLIENT, "build")
        await activate(pilot, "#add")
        await activate(pilot, "#test-client")  # the new client is selected
        await settle(pilot)
        assert backend.probe_calls[-1][0].address == PODMAN_CLIENT
        assert headers(pilot) == ["Client", "Address", "Login", "Runtimes", "Status"]
        assert column(pilot, "runtimes") == ["docker", "docker, podman"]
        assert column(pilot, "status")[1].startswith("✓ Debian")
        facts = widget_text(pilot, "#client-facts")
        assert "Runtimes     found docker, podman: ticked" in facts
        # a Kubernetes node: containerd alone, no Docker (and no "✗ no Docker" alarm)
        await open_add_client(pilot, CONTAINERD_CLIENT, "k8s-node")
        await activate(pilot, "#add")
        await activate(pilot, "#test-client")
        await settle(pilot)
        assert column(pilot, "runtimes")[2] == "containerd"
        assert column(pilot, "status")[2] == "✓ Debian GNU/Linux 12 (bookworm), containerd"
        # nothing found: what was there stays, and the status says so
        await open_add_client(pilot, BARE_CLIENT, "bare")
        await tick(pilot, "podman")
        await activate(pilot, "#add")
        await activate(pilot, "#test-client")
        await settle(pilot)
        assert column(pilot, "runtimes")[3] == "podman"
        assert "no runtime found, kept podman" in column(pilot, "status")[3]
        assert "Runtimes     none found: kept podman" in widget_text(pilot, "#client-facts")
        assert screen.query_one("#client-facts", Static).has_class("-ok")
        await next_step(pilot)
    clients = {c.address: c.runtimes for c in app.state.plan.clients}
    assert clients[PODMAN_CLIENT] == ["docker", "podman"]
    assert clients[CONTAINERD_CLIENT] == ["containerd"]
    assert clients[BARE_CLIENT] == ["podman"]


async def test_detected_runtimes_can_still_be_changed(backend):
    """What Test connection ticked is a suggestion: the person has the last word."""
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await open_add_client(pilot, PODMAN_CLIENT, "build")
        await activate(pilot, "#add")
        await activate(pilot, "#test-client")
        await settle(pilot)
        assert column(pilot, "runtimes")[1] == "docker, podman"
        await edit_row(pilot, 1)
        assert ticked(pilot) == ["docker", "podman"]
        await tick(pilot, "docker")
        await activate(pilot, "#save")
        # Docker alone everywhere again: the table looks as it always did
        assert headers(pilot) == ["Client", "Address", "Login", "Status"]
        assert column(pilot, "status")[1].startswith("✓ Debian")  # still tested
        await next_step(pilot)
    assert app.state.plan.clients[1].runtimes == ["docker"]


# -- (d) edit an existing client ---------------------------------------------------------------


async def test_edit_client_changes_runtimes_and_keeps_the_rest(backend):
    plan = Plan(
        clients=[
            Connection(),
            Connection(
                "10.0.0.3",
                user="admin",
                auth="password",
                sudo=True,
                host_key="SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",
                label="node2",
            ),
        ]
    )
    app = make_app(backend, plan)
    app.state.secrets.ssh_passwords["10.0.0.3"] = SSH_PASSWORD
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        # the footer says how, when the table has the focus
        pilot.app.screen.query_one("#clients", DataTable).focus()
        await pilot.pause()
        assert "Edit client" in screen_text(pilot)
        await edit_row(pilot, 1)
        screen = pilot.app.screen
        assert "Edit client node2" in screen_text(pilot)
        assert screen.query_one("#client-address").value == "10.0.0.3"
        assert screen.query_one("#client-user").value == "admin"
        assert screen.query_one("#client-password").value == SSH_PASSWORD
        assert screen.query_one("#client-sudo", Checkbox).value
        assert ticked(pilot) == ["docker"]
        await tick(pilot, "containerd")
        await activate(pilot, "#client-manage-containerd")
        await activate(pilot, "#save")  # its own address is not "already a client"
        assert screen_name(pilot) == "HostsScreen"
        assert column(pilot, "name") == ["this machine", "node2"]  # changed in place
        assert column(pilot, "runtimes") == ["docker", "containerd"]
        table = pilot.app.screen.query_one("#clients", DataTable)
        assert table.cursor_row == 1  # still on the edited client
        # Esc leaves a client as it was
        await edit_row(pilot, 0)
        await tick(pilot, "podman")
        await pilot.press("escape")
        await pilot.pause()
        assert column(pilot, "runtimes") == ["docker", "containerd"]
        await next_step(pilot)
    node = app.state.plan.clients[1]
    assert node.runtimes == ["containerd"] and node.manage_containerd_config is True
    assert (node.user, node.auth, node.sudo, node.label) == ("admin", "password", True, "node2")
    assert node.host_key.startswith("SHA256:")  # the pin stays with its address
    assert app.state.secrets.ssh_passwords["10.0.0.3"] == SSH_PASSWORD
    assert app.state.plan.clients[0].runtimes == ["docker"]


async def test_edit_refuses_another_clients_address_and_drops_the_pin(backend):
    plan = Plan(
        clients=[
            Connection(),
            Connection("10.0.0.3", host_key="SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"),
        ]
    )
    app = make_app(backend, plan)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await edit_row(pilot, 1)
        await enter_value(pilot, "#client-address", "local")
        await activate(pilot, "#save")
        assert "already a client" in error_text(pilot, "client-address")
        await enter_value(pilot, "#client-address", "10.0.0.4")
        await activate(pilot, "#save")
        assert screen_name(pilot) == "HostsScreen"
        await next_step(pilot)
    node = app.state.plan.clients[1]
    assert node.address == "10.0.0.4" and node.host_key == ""  # a pin belongs to 10.0.0.3


async def test_edit_leaves_the_plan_alone_until_next(backend):
    """The form edits its own copies: the plan changes only when the step is saved."""
    plan = three_clients()
    app = make_app(backend, plan)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await edit_row(pilot, 1)
        await tick(pilot, "podman")
        await activate(pilot, "#save")
        assert app.state.plan.clients[1].runtimes == ["docker", "podman"]
        await next_step(pilot)
    assert app.state.plan.clients[1].runtimes == ["podman"]


# -- review ------------------------------------------------------------------------------------


async def test_review_lists_runtimes_that_are_not_docker_alone(backend):
    app = make_app(backend, three_clients())
    async with app.run_test(size=(120, 40)) as pilot:
        await walk_three_clients_to_review(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        lines = [ln.strip() for ln in screen_text(pilot).splitlines()]
    i = lines.index("Client 1          this machine (local)")
    assert lines[i + 1].startswith("Client 2")  # Docker alone: no extra line
    assert lines[i + 2] == "runtimes: docker, podman"
    assert lines[i + 3].startswith("Client 3")
    assert lines[i + 4] == ("runtimes: containerd; may set config_path and restart containerd")


# -- (e) results: a proof line per client and runtime -----------------------------------------


async def walk_three_clients_to_review(pilot) -> None:
    await start_new(pilot)
    await fill_hosts(pilot)
    await next_step(pilot)
    await fill_certificate(pilot)
    await next_step(pilot)
    await add_user(pilot)
    await next_step(pilot)


async def walk_three_clients_to_results(pilot) -> None:
    await walk_three_clients_to_review(pilot)
    await run_from_review(pilot)
    await pilot.click("#results")
    await pilot.pause()
    await pilot.pause()
    assert screen_name(pilot) == "ResultsScreen"


def proof_rows(pilot) -> list[tuple[str, str]]:
    """(mark, text) of each row under the verdict."""
    return [
        (str(row.children[0].render()), str(row.children[1].render()))
        for row in pilot.app.screen.query(".proof-row")
    ]


async def test_results_show_a_containerd_and_a_podman_proof(backend):
    app = make_app(backend, three_clients())
    async with app.run_test(size=(120, 40)) as pilot:
        await walk_three_clients_to_results(pilot)
        rows = proof_rows(pilot)
        text = screen_text(pilot)
    assert ("✓", f"podman on build: {PODMAN_PROOF}") in rows
    assert ("✓", f"containerd on k8s-node: {CONTAINERD_PROOF}") in rows
    # Docker's own pull: on the Docker clients only
    assert ("✓", "trust on this machine: pull worked") in rows
    assert ("✓", "trust on build: pull worked") in rows
    assert not any("trust on k8s-node" in t for _, t in rows)
    assert len([t for _, t in rows if " on " in t]) == 5  # node1, 2 Docker clients, 2 proofs
    assert "works" in text
    assert app.state.verified


async def test_results_show_a_failed_runtime_proof(backend):
    backend = FakeBackend(failing_proofs={"containerd"})
    app = make_app(backend, three_clients())
    async with app.run_test(size=(120, 40)) as pilot:
        await walk_three_clients_to_results(pilot)
        rows = proof_rows(pilot)
        verdict = widget_text(pilot, "#verdict")
    assert ("✗", f"containerd on k8s-node: {PROOF_FAILURES['containerd']}") in rows
    assert ("✓", f"podman on build: {PODMAN_PROOF}") in rows
    assert "not proven" in verdict
    assert not app.state.verified
