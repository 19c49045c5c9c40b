"""Pilot tests: the wizard driven by keys and clicks at 80x24, against the fake backend."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, DataTable, Input, Log, Select, Static

from regwizard.app import EXIT_ABORTED, EXIT_NOT_VERIFIED, EXIT_VERIFIED
from regwizard.plan import load_plan

from .conftest import SIZE, make_app
from .fakes import DIGEST, FINGERPRINT, MARKUP_LINE, FakeBackend
from .walk import (
    OTHER_PASSWORD,
    SSH_PASSWORD,
    SUDO_PASSWORD,
    USER_PASSWORD,
    activate,
    add_user,
    back_step,
    enter_value,
    error_text,
    fill_certificate,
    fill_hosts,
    next_step,
    run_from_review,
    screen_name,
    screen_svg,
    screen_text,
    settle,
    start_new,
    type_into,
    walk_to_results,
    walk_to_review,
    widget_text,
)


def value(pilot, selector: str) -> str:
    return pilot.app.screen.query_one(selector, Input).value


async def assert_refused(pilot, field: str, text: str, message: str, stays_on: str) -> None:
    """Type a bad value into ``#field``, see its error say ``message``; Next stays on the step."""
    await type_into(pilot, f"#{field}", text)
    assert message in error_text(pilot, field)
    await next_step(pilot)
    assert screen_name(pilot) == stays_on


# -- the happy path ----------------------------------------------------------------------


async def test_walk_to_results_and_finish_exit_0(backend):
    """The whole wizard, typed key by key."""
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_results(pilot, typing=True)
        text = screen_text(pilot)
        assert "works" in text and "login as alice" in text
        assert "docker login reg.example.test" in text
        await pilot.click("#finish")
        await pilot.pause()
    assert app.return_code == EXIT_VERIFIED
    assert app.state.verified
    plan, secrets = backend.run_calls[0]
    assert plan.host.address == "10.0.0.2"
    assert plan.registry.domain == "reg.example.test"
    assert plan.certificate.organization == "ACME"
    assert [u.name for u in plan.users] == ["alice"]
    assert plan.users[0].bcrypt.startswith("$2b$")
    assert plan.verify.user == "alice"
    assert secrets.verify_password == USER_PASSWORD


async def test_unverified_run_exits_1():
    backend = FakeBackend(run_modes=["unverified"])
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await run_from_review(pilot)
        results = pilot.app.screen.query_one("#results", Button)
        assert not results.disabled
        await pilot.click("#results")
        await pilot.pause()
        assert "not proven" in screen_text(pilot)
        await pilot.click("#finish")
        await pilot.pause()
    assert app.return_code == EXIT_NOT_VERIFIED


async def test_ctrl_q_when_idle_quits_at_once_non_zero(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == EXIT_ABORTED
    assert backend.run_calls == []


async def test_quit_button_on_a_form(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await pilot.click("#quit")
        await pilot.pause()
    assert app.return_code == EXIT_ABORTED


# -- navigation keeps values --------------------------------------------------------------


async def test_back_keeps_every_value_even_invalid_ones(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot, address="node1.lan", domain="registry.lan", ip="10.1.2.3")
        await next_step(pilot)
        await fill_certificate(pilot, country="DE", org="ACME")
        await type_into(pilot, "#days", "90")
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        await type_into(pilot, "#storage-path", "/srv/registry")
        await add_user(pilot, "alice")
        # Esc is Back on form screens
        await pilot.press("escape")
        await pilot.pause()
        assert screen_name(pilot) == "CertificateScreen"
        assert value(pilot, "#country") == "DE"
        assert value(pilot, "#organization") == "ACME"
        assert value(pilot, "#days") == "90"
        # an invalid value survives Back and Next too
        await type_into(pilot, "#country", "C")
        await back_step(pilot)
        assert screen_name(pilot) == "HostsScreen"
        assert value(pilot, "#host-address") == "node1.lan"
        assert value(pilot, "#domain") == "registry.lan"
        assert value(pilot, "#ip") == "10.1.2.3"
        await next_step(pilot)
        assert value(pilot, "#country") == "C"
        assert "2 letters" in error_text(pilot, "country")
        await type_into(pilot, "#country", "DE")
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        assert value(pilot, "#storage-path") == "/srv/registry"
        table = pilot.app.screen.query_one("#users", DataTable)
        assert table.row_count == 1
        # and the plan got the values
        plan = app.state.plan
        assert plan.host.address == "node1.lan"
        assert plan.certificate.country == "DE"
        assert plan.certificate.days == 90


async def test_common_name_placeholder_follows_the_domain(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot, domain="first.example.test")
        await next_step(pilot)
        cn = pilot.app.screen.query_one("#common-name", Input)
        assert cn.placeholder == "first.example.test"
        assert "CN=first.example.test" in str(pilot.app.screen.query_one("#preview").render())
        await back_step(pilot)
        await type_into(pilot, "#domain", "second.example.test")
        await next_step(pilot)
        assert cn.placeholder == "second.example.test"
        preview = str(pilot.app.screen.query_one("#preview").render())
        assert "CN=second.example.test" in preview
        assert "DNS:second.example.test" in preview and "IP:10.0.0.2" in preview


async def test_certificate_preview_updates_live(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await next_step(pilot)
        await type_into(pilot, "#state", "Beijing")
        await type_into(pilot, "#extra-sans", "registry.lan, 10.0.0.20")
        preview = str(pilot.app.screen.query_one("#preview").render())
        assert "C=CN, ST=Beijing" in preview
        assert "DNS:registry.lan" in preview and "IP:10.0.0.20" in preview


async def test_provided_mode_shows_file_fields_only_then(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await next_step(pilot)
        screen = pilot.app.screen
        assert not screen.query_one("#cert-file-field").display
        screen.query_one("#mode", Select).value = "provided"
        await pilot.pause()
        assert screen.query_one("#cert-file-field").display
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        assert "required" in error_text(pilot, "cert-file")


# -- the certificate's key ---------------------------------------------------------------


async def test_new_setup_selects_ecdsa_p256(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        assert pilot.app.screen.query_one("#key-type", Select).value == "ecdsa-p256"
        await fill_certificate(pilot)
        await next_step(pilot)
        assert app.state.plan.certificate.key == "ecdsa-p256"


async def test_a_plan_that_names_no_key_keeps_rsa_4096_in_the_wizard(backend):
    """A plan written before ECDSA became the default leaves `key` out: RSA-4096."""
    from regwizard.plan import EXAMPLE_PLAN, parse_plan

    text = "\n".join(x for x in EXAMPLE_PLAN.splitlines() if not x.startswith("key = "))
    plan = parse_plan(text)
    assert plan.certificate.key == "rsa-4096"
    app = make_app(backend, plan)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        assert pilot.app.screen.query_one("#key-type", Select).value == "rsa-4096"
        await next_step(pilot)
        assert app.state.plan.certificate.key == "rsa-4096"


# -- inline validation blocks Next ---------------------------------------------------------


async def _on_certificate(pilot):
    await start_new(pilot)
    await fill_hosts(pilot)
    await next_step(pilot)
    assert screen_name(pilot) == "CertificateScreen"


async def test_country_must_be_two_letters(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_certificate(pilot)
        await type_into(pilot, "#country", "C")
        assert error_text(pilot, "country") == "Country must be 2 letters (ISO 3166), e.g. CN"
        assert pilot.app.screen.query_one("#country").has_class("-invalid")
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        await type_into(pilot, "#country", "CN")
        assert error_text(pilot, "country") == ""
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"


async def test_days_zero_blocks_next(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_certificate(pilot)
        await assert_refused(pilot, "days", "0", "between 1 and", "CertificateScreen")


async def test_next_revalidates_fields_never_typed_in(backend):
    """Input.is_valid is True before validation ran: Next must check every field itself."""
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_certificate(pilot)
        # set a bad value without an Input.Changed being handled first
        email = pilot.app.screen.query_one("#email", Input)
        with email.prevent(Input.Changed):
            email.value = "not-an-email"
        await pilot.pause()
        assert error_text(pilot, "email") == ""
        await next_step(pilot)
        assert screen_name(pilot) == "CertificateScreen"
        assert "Email must look like" in error_text(pilot, "email")


async def test_bad_domain_blocks_next(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot, domain="bad_domain!")
        assert "letters, digits, hyphens" in error_text(pilot, "domain")
        await next_step(pilot)
        assert screen_name(pilot) == "HostsScreen"
        await assert_refused(pilot, "domain", "10.0.0.9", "is an IP address", "HostsScreen")


async def test_bad_host_fields_block_next(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await type_into(pilot, "#host-address", "root@10.0.0.2")
        assert "user field" in error_text(pilot, "host-address")
        await assert_refused(pilot, "host-port", "70000", "between 1 and 65535", "HostsScreen")


async def _on_storage(pilot):
    await _on_certificate(pilot)
    await next_step(pilot)
    assert screen_name(pilot) == "StorageScreen"


async def test_storage_root_or_relative_is_refused(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await add_user(pilot)
        await assert_refused(pilot, "storage-path", "/", "cannot be /", "StorageScreen")
        await assert_refused(
            pilot, "storage-path", "registry/data", "absolute path", "StorageScreen"
        )
        await type_into(pilot, "#storage-path", "/srv/registry")
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"


async def test_no_users_blocks_next(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        assert "at least one user" in error_text(pilot, "users")


async def test_bad_user_name_is_refused_in_the_dialog(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await add_user(pilot, name="Bad:User")
        assert screen_name(pilot) == "AddUserDialog"
        assert "colon" in error_text(pilot, "user-name")
        await type_into(pilot, "#user-name", "Alice")
        assert "lowercase" in error_text(pilot, "user-name")
        await pilot.press("escape")
        await pilot.pause()
        assert screen_name(pilot) == "StorageScreen"
        assert pilot.app.screen.query_one("#users", DataTable).row_count == 0


async def test_mismatched_confirmation_is_refused(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await add_user(pilot, name="alice", password=USER_PASSWORD, confirm=USER_PASSWORD + "x")
        assert screen_name(pilot) == "AddUserDialog"
        assert error_text(pilot, "user-confirm") == "Passwords do not match"
        await type_into(pilot, "#user-confirm", USER_PASSWORD)
        await activate(pilot, "#add")
        await settle(pilot)
        assert screen_name(pilot) == "StorageScreen"
        assert pilot.app.screen.query_one("#users", DataTable).row_count == 1


async def test_short_password_is_refused(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await add_user(pilot, name="alice", password="short")
        assert "at least 8" in error_text(pilot, "user-password")


async def test_generate_shows_the_password_once(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await activate(pilot, "#add-user")
        await type_into(pilot, "#user-name", "ci")
        await activate(pilot, "#generate")
        generated = pilot.app.screen.query_one("#user-password", Input).value
        assert len(generated) >= 16
        assert generated in screen_text(pilot)  # shown once, in the dialog
        await activate(pilot, "#add")
        await settle(pilot)
        assert screen_name(pilot) == "StorageScreen"
        assert generated not in screen_text(pilot)
        table = pilot.app.screen.query_one("#users", DataTable)
        assert table.get_row_at(0)[1].startswith("$2b$")
        assert table.get_row_at(0)[1].endswith("…")
        await next_step(pilot)
        assert app.state.secrets.verify_password == generated


async def test_verify_as_other_user_needs_its_password(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await add_user(pilot, "alice")
        await add_user(pilot, "bob", password=OTHER_PASSWORD)
        screen = pilot.app.screen
        assert screen.query_one("#verify-user", Select).value == "alice"
        screen.query_one("#verify-user", Select).value = "bob"
        await pilot.pause()
        # typed this session: known, no password field
        assert not screen.query_one("#verify-password-field").display
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert app.state.plan.verify.user == "bob"
        assert app.state.secrets.verify_password == OTHER_PASSWORD
        # only the verify user's plaintext is kept: switching back asks for alice's
        await back_step(pilot)
        screen = pilot.app.screen
        screen.query_one("#verify-user", Select).value = "alice"
        await pilot.pause()
        assert screen.query_one("#verify-password-field").display
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        assert "Enter alice's password" in error_text(pilot, "verify-password")
        await type_into(pilot, "#verify-password", "wrong-password")
        await next_step(pilot)
        assert "not alice's password" in error_text(pilot, "verify-password")
        await type_into(pilot, "#verify-password", USER_PASSWORD)
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert app.state.secrets.verify_password == USER_PASSWORD


async def test_remove_user(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await add_user(pilot, "alice")
        await add_user(pilot, "bob", password=OTHER_PASSWORD)
        await activate(pilot, "#remove-user")
        table = pilot.app.screen.query_one("#users", DataTable)
        assert table.row_count == 1


async def test_advanced_is_collapsed_and_validated(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _on_storage(pilot)
        await add_user(pilot)
        from textual.widgets import Collapsible

        advanced = pilot.app.screen.query_one("#advanced", Collapsible)
        assert advanced.collapsed
        advanced.collapsed = False
        await pilot.pause()
        await type_into(pilot, "#container", "bad name")
        await type_into(pilot, "#image", "Registry:2")
        advanced.collapsed = True
        await pilot.pause()
        # a bad value in the collapsed section still blocks Next, and is shown
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        assert not advanced.collapsed
        assert "Container name" in error_text(pilot, "container")
        assert "lowercase" in error_text(pilot, "image")


# -- hosts: probing, host keys, clients ------------------------------------------------------


async def test_test_connection_shows_facts(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)
        facts = str(pilot.app.screen.query_one("#host-facts", Static).render())
        assert "Connected to root@10.0.0.2:22" in facts
        assert FINGERPRINT in facts
        assert "Debian GNU/Linux 12" in facts and "x86_64" in facts
        assert "26.1.5" in facts
        assert "42.0 GiB at /opt/docker-image" in facts
        assert "root" in facts
        assert app.state.host_facts is not None
        # Storage shows the free space learned here
        await next_step(pilot)
        await next_step(pilot)
        note = pilot.app.screen.query_one("#storage-free", Static)
        assert note.display and "42.0 GiB free" in str(note.render())


async def test_unknown_host_key_is_confirmed_then_trusted():
    backend = FakeBackend(probe_mode="unknown-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)
        assert screen_name(pilot) == "HostKeyDialog"
        text = screen_text(pilot)
        assert FINGERPRINT in text and "ssh-ed25519" in text and "10.0.0.2" in text
        assert pilot.app.focused.id == "cancel"  # the safe answer has the focus
        await pilot.click("#trust")
        await settle(pilot)
        assert screen_name(pilot) == "HostsScreen"
        assert FINGERPRINT in app.state.secrets.accepted_host_keys
        assert len(backend.probe_calls) == 2
        assert FINGERPRINT in backend.probe_calls[1][1]
        facts = str(pilot.app.screen.query_one("#host-facts", Static).render())
        assert facts.startswith("✓ Connected")


async def test_unknown_host_key_cancel_does_not_trust():
    backend = FakeBackend(probe_mode="unknown-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)
        assert screen_name(pilot) == "HostKeyDialog"
        await pilot.press("escape")
        await settle(pilot)
        assert screen_name(pilot) == "HostsScreen"
        assert app.state.secrets.accepted_host_keys == set()
        assert len(backend.probe_calls) == 1
        facts = str(pilot.app.screen.query_one("#host-facts", Static).render())
        assert "not trusted" in facts


async def test_changed_host_key_is_an_error_without_bypass():
    backend = FakeBackend(probe_mode="changed-key")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)
        assert screen_name(pilot) == "HostsScreen"  # no dialog, nothing to click through
        box = pilot.app.screen.query_one("#host-facts", Static)
        assert box.has_class("-error")
        text = str(box.render())
        assert "CHANGED" in text and "refusing" in text
        assert app.state.secrets.accepted_host_keys == set()
        assert app.state.host_facts is None
        assert not pilot.app.screen.query("#trust")


async def test_probe_error_shows_cause_and_fix():
    backend = FakeBackend(probe_mode="error")
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)
        text = str(pilot.app.screen.query_one("#host-facts", Static).render())
        assert "connection refused" in text and "Fix:" in text


async def test_password_auth_fields_follow_the_select(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        screen = pilot.app.screen
        assert screen.query_one("#host-key-file-field").display
        assert not screen.query_one("#host-password-field").display
        screen.query_one("#host-auth", Select).value = "password"
        await pilot.pause()
        assert not screen.query_one("#host-key-file-field").display
        assert screen.query_one("#host-password-field").display
        assert not screen.query_one("#host-sudo-password-field").display
        await activate(pilot, "#host-sudo")  # Enter toggles the checkbox
        assert screen.query_one("#host-sudo-password-field").display


async def test_clients_add_test_remove(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        table = pilot.app.screen.query_one("#clients", DataTable)
        assert table.row_count == 1
        assert table.get_row_at(0)[0] == "this machine"
        await activate(pilot, "#add-client")
        assert screen_name(pilot) == "AddClientDialog"
        await type_into(pilot, "#client-address", "root@10.0.0.3")
        await activate(pilot, "#add")
        assert "user field" in error_text(pilot, "client-address")
        await type_into(pilot, "#client-address", "10.0.0.3")
        await type_into(pilot, "#client-label", "node2")
        await activate(pilot, "#add")
        assert screen_name(pilot) == "HostsScreen"
        table = pilot.app.screen.query_one("#clients", DataTable)
        assert table.row_count == 2
        assert table.get_row_at(1)[:2] == ["node2", "10.0.0.3"]
        # test the selected (new) client
        await activate(pilot, "#test-client")
        await settle(pilot)
        assert table.get_row_at(1)[3].startswith("✓ Debian")
        assert backend.probe_calls[-1][0].address == "10.0.0.3"
        # remove the first one
        table.move_cursor(row=0)
        await activate(pilot, "#remove-client")
        assert table.row_count == 1
        await next_step(pilot)
        assert [c.address for c in app.state.plan.clients] == ["10.0.0.3"]


async def test_duplicate_client_is_refused(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await activate(pilot, "#add-client")
        await type_into(pilot, "#client-address", "local")
        await activate(pilot, "#add")
        assert "already a client" in error_text(pilot, "client-address")


# -- review ---------------------------------------------------------------------------------


async def test_review_shows_plan_and_commands_and_saves(backend, tmp_path):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        summary = screen_text(pilot)
        assert "reg.example.test" in summary and "alice" in summary
        commands = pilot.app.screen.query_one("#commands").text
        assert "docker run -d --restart=always --name registry" in commands
        await pilot.click("#save-plan")
        await pilot.pause()
        assert screen_name(pilot) == "PathDialog"
        assert value(pilot, "#path") == "./regwizard-plan.toml"
        await enter_value(pilot, "#path", str(tmp_path / "plan.toml"))
        await pilot.press("enter")
        await pilot.pause()
        assert screen_name(pilot) == "ReviewScreen"
    saved = tmp_path / "plan.toml"
    assert saved.exists()
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    plan = load_plan(saved)
    assert plan.registry.domain == "reg.example.test"
    assert plan.users[0].name == "alice"
    # a new setup's key is ECDSA P-256, written out: a plan without `key` means RSA-4096
    assert plan.certificate.key == "ecdsa-p256"
    assert 'key = "ecdsa-p256"' in saved.read_text()


async def test_path_dialog_refuses_unusable_paths_in_words(backend):
    """A home that does not exist and a name too long for the filesystem are field
    errors, not a crash."""
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await pilot.click("#save-plan")
        await pilot.pause()
        for bad, words in (
            ("~nobody-here-rw/plan.toml", "~nobody-here-rw/plan.toml"),
            ("/tmp/" + "n" * 300, "Cannot use this path"),
        ):
            await enter_value(pilot, "#path", bad)
            await pilot.press("enter")
            await pilot.pause()
            assert screen_name(pilot) == "PathDialog"
            error = str(pilot.app.screen.query_one("#path-error").render())
            assert words in error or "No such" in error or "directory" in error, error


async def test_review_asks_for_missing_passwords_before_run(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        screen = pilot.app.screen
        screen.query_one("#host-auth", Select).value = "password"
        await pilot.pause()
        await type_into(pilot, "#host-user", "admin")
        await activate(pilot, "#host-sudo")
        await next_step(pilot)
        await next_step(pilot)
        await add_user(pilot)
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert "SSH password for admin@10.0.0.2" in widget_text(pilot, "#needs")
        await pilot.click("#next")
        await pilot.pause()
        assert screen_name(pilot) == "PasswordDialog"
        assert "SSH password for admin@10.0.0.2" in screen_text(pilot)
        await type_into(pilot, "#password", SSH_PASSWORD)
        await pilot.press("enter")
        await pilot.pause()
        assert screen_name(pilot) == "PasswordDialog"
        assert "sudo password for admin@10.0.0.2" in screen_text(pilot)
        await type_into(pilot, "#password", SUDO_PASSWORD)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "RunScreen"
        await settle(pilot)
    _, secrets = backend.run_calls[0]
    assert secrets.ssh_passwords == {"10.0.0.2": SSH_PASSWORD}
    assert secrets.sudo_passwords == {"10.0.0.2": SUDO_PASSWORD}


async def test_review_lists_plan_problems_and_refuses_to_run(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await next_step(pilot)
        await next_step(pilot)
        # skip users by going straight to review through the app (plan has no users)
        pilot.app.goto("review")
        await pilot.pause()
        await pilot.pause()
        problems = pilot.app.screen.query_one("#problems", Static)
        assert problems.display and "at least one user" in str(problems.render())
        await pilot.click("#next")
        await pilot.pause()
        assert screen_name(pilot) == "ErrorDialog"
        await pilot.press("enter")
        await pilot.pause()
        assert screen_name(pilot) == "ReviewScreen"
    assert backend.run_calls == []


# -- run: events, failure, retry, cancel ---------------------------------------------------------


async def test_run_table_progress_and_literal_markup_in_log(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await run_from_review(pilot)
        screen = pilot.app.screen
        table = screen.query_one("#steps", DataTable)
        assert table.row_count == 13  # 10 steps, 3 of them on the client too
        assert table.get_row_at(0)[:3] == ["Preflight", "node1", "✓ changed"]
        assert table.get_row_at(1)[:3] == ["Preflight", "this machine", "✓ changed"]
        log = screen.query_one("#log", Log)
        assert f"node1: {MARKUP_LINE}" in log.lines
        assert "node1: coloured output" in log.lines  # ANSI stripped
        assert screen.query_one("#progress").percentage == 1.0
        assert not screen.query_one("#results", Button).disabled
        assert screen.query_one("#cancel", Button).disabled
        assert not app.state.running


async def test_failure_shows_cause_and_fix_then_retry_succeeds():
    backend = FakeBackend(run_modes=["fail", "success"], fail_at=3)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await run_from_review(pilot)
        screen = pilot.app.screen
        assert screen.query_one("#failure").display
        text = screen_text(pilot)
        assert "disk full" in text
        assert "free space on the registry host" in text
        table = screen.query_one("#steps", DataTable)
        assert table.get_row_at(3)[2] == "✗ failed"
        assert screen.query_one("#results", Button).disabled
        assert not app.state.running
        # evidence is one click away
        await pilot.click("#details")
        await pilot.pause()
        assert screen_name(pilot) == "ErrorDialog"
        assert "no space left on device" in screen_text(pilot)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.click("#retry")
        await settle(pilot)
        assert not screen.query_one("#failure").display
        assert table.get_row_at(0)[2] == "✓ unchanged"  # idempotent second run
        assert not screen.query_one("#results", Button).disabled
        assert len(backend.run_calls) == 2
        await pilot.click("#results")
        await pilot.pause()
        assert screen_name(pilot) == "ResultsScreen"


async def test_unexpected_exception_in_run_is_routed_to_the_error_panel():
    backend = FakeBackend(run_modes=["raise"], fail_at=2)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await run_from_review(pilot)
        screen = pilot.app.screen
        assert screen.query_one("#failure").display
        assert "RuntimeError: socket closed unexpectedly" in screen_text(pilot)
        assert not app.state.running


async def test_back_to_edit_and_save_and_quit_after_failure(tmp_path):
    backend = FakeBackend(run_modes=["fail"])
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await run_from_review(pilot)
        await pilot.click("#back-to-edit")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "ReviewScreen"
        await run_from_review(pilot)
        await pilot.click("#save-quit")
        await pilot.pause()
        assert screen_name(pilot) == "PathDialog"
        await enter_value(pilot, "#path", str(tmp_path / "after-failure.toml"))
        await pilot.press("enter")
        await pilot.pause()
    assert app.return_code == EXIT_NOT_VERIFIED
    assert (tmp_path / "after-failure.toml").exists()


async def test_cancel_asks_then_stops_the_run():
    backend = FakeBackend(run_modes=["slow"])
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await pilot.click("#next")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "RunScreen"
        assert backend.started.wait(5)
        assert app.state.running
        await pilot.click("#cancel")
        await pilot.pause()
        assert screen_name(pilot) == "ConfirmDialog"
        await pilot.click("#no")  # keep running
        await pilot.pause()
        assert app.state.running and not backend.cancelled.is_set()
        await pilot.press("escape")  # Esc on the run screen = cancel (asks too)
        await pilot.pause()
        assert screen_name(pilot) == "ConfirmDialog"
        await pilot.click("#yes")
        await settle(pilot)
        assert backend.cancelled.is_set()
        screen = pilot.app.screen
        assert screen.query_one("#failure").display
        assert "cancelled by the user" in screen_text(pilot)
        assert not app.state.running


async def test_ctrl_q_during_a_run_asks_first():
    backend = FakeBackend(run_modes=["slow"])
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_review(pilot)
        await pilot.click("#next")
        await pilot.pause()
        await pilot.pause()
        assert backend.started.wait(5)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert screen_name(pilot) == "ConfirmDialog"
        assert "run is in progress" in screen_text(pilot)
        await pilot.click("#no")
        await pilot.pause()
        assert screen_name(pilot) == "RunScreen"
        assert app.state.running
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.click("#yes")
        await pilot.pause()
    assert backend.cancelled.wait(5)
    assert app.return_code == EXIT_NOT_VERIFIED or app.return_code == EXIT_ABORTED
    assert app.return_code != EXIT_VERIFIED


async def _run_chatty(pilot) -> Log:
    """Walk to Review, run a chatty plan to its end, and return the Run screen's log."""
    await walk_to_review(pilot)
    await run_from_review(pilot)
    return pilot.app.screen.query_one("#log", Log)


async def test_chatty_run_is_coalesced_and_complete():
    app = make_app(FakeBackend(run_modes=["chatty"], chatty_lines=5000))
    async with app.run_test(size=SIZE) as pilot:
        log = await _run_chatty(pilot)
        chatty = [line for line in log.lines if "chatty line" in line]
        assert chatty[-1] == "node1: chatty line 4999"
        assert not pilot.app.screen.query_one("#results", Button).disabled
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y > 0  # it followed to the newest line


async def test_the_log_follows_until_the_person_scrolls_up():
    app = make_app(FakeBackend(run_modes=["chatty"], chatty_lines=300))
    async with app.run_test(size=SIZE) as pilot:
        log = await _run_chatty(pilot)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y > 0
        log.focus()
        await pilot.press("up", "up", "up")
        await pilot.pause()
        held = log.scroll_y
        assert held < log.max_scroll_y
        log.write_lines([f"more {n}" for n in range(20)], scroll_end=False)
        await pilot.pause()
        assert log.scroll_y == held  # reading back: new lines do not yank the view
        await pilot.press("end")
        await pilot.pause()
        log.write_lines([f"again {n}" for n in range(20)], scroll_end=False)
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y  # back at the end: following again


# -- plans from files --------------------------------------------------------------------------


def _saved_plan(tmp_path: Path) -> Path:
    from regwizard.htpasswd import hash_password
    from regwizard.plan import Connection, Plan, RegistrySpec, User, save_plan

    plan = Plan(
        registry=RegistrySpec(domain="reg.example.test", ip="10.0.0.2"),
        host=Connection(address="10.0.0.2", label="node1"),
        users=[User("alice", hash_password(USER_PASSWORD, rounds=4))],
    )
    path = tmp_path / "regwizard-plan.toml"
    save_plan(plan, path)
    return path


async def test_open_plan_from_welcome_then_run_asks_verify_password(backend, tmp_path):
    path = _saved_plan(tmp_path)
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#open")
        await pilot.pause()
        assert screen_name(pilot) == "PathDialog"
        await enter_value(pilot, "#path", str(tmp_path / "missing.toml"))
        await pilot.press("enter")
        await pilot.pause()
        assert "No such file" in error_text(pilot, "path")
        await enter_value(pilot, "#path", str(path))
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "ReviewScreen"
        assert app.state.plan.host.address == "10.0.0.2"
        assert "Password of registry user alice" in widget_text(pilot, "#needs")
        await pilot.click("#next")
        await pilot.pause()
        assert screen_name(pilot) == "PasswordDialog"
        await type_into(pilot, "#password", "not-the-password")
        await pilot.press("enter")
        await pilot.pause()
        assert "not alice's password" in error_text(pilot, "password")
        await type_into(pilot, "#password", USER_PASSWORD)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "RunScreen"
        await settle(pilot)
    assert backend.run_calls[0][1].verify_password == USER_PASSWORD


async def test_open_a_broken_plan_shows_the_error(backend, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[registry]\ndomian = "x"\n')
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#open")
        await pilot.pause()
        await enter_value(pilot, "#path", str(bad))
        await pilot.press("enter")
        await pilot.pause()
        assert screen_name(pilot) == "ErrorDialog"
        assert 'did you mean "domain"' in screen_text(pilot)


async def test_start_at_review_with_a_plan(backend, tmp_path):
    path = _saved_plan(tmp_path)
    app = make_app(backend, load_plan(path), plan_path=path, start_at="review")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert screen_name(pilot) == "ReviewScreen"
        await back_step(pilot)
        assert screen_name(pilot) == "StorageScreen"
        screen = pilot.app.screen
        assert screen.query_one("#users", DataTable).row_count == 1
        assert screen.query_one("#verify-user", Select).value == "alice"
        assert screen.query_one("#verify-password-field").display
        await next_step(pilot)
        assert screen_name(pilot) == "StorageScreen"  # the password is needed
        await type_into(pilot, "#verify-password", USER_PASSWORD)
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        assert app.state.secrets.verify_password == USER_PASSWORD
        # Save plan offers the file it came from
        await pilot.click("#save-plan")
        await pilot.pause()
        assert value(pilot, "#path") == str(path)


async def test_removing_a_plan_user_removes_it_on_the_registry_too(backend, tmp_path):
    path = _saved_plan(tmp_path)
    app = make_app(backend, load_plan(path), plan_path=path, start_at="review")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await back_step(pilot)
        await add_user(pilot, "bob", password=OTHER_PASSWORD)
        pilot.app.screen.query_one("#users", DataTable).move_cursor(row=0)
        await activate(pilot, "#remove-user")
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
    assert [u.name for u in app.state.plan.users] == ["bob"]
    assert app.state.plan.remove_users == ["alice"]
    assert app.state.plan.verify.user == "bob"


# -- results ---------------------------------------------------------------------------------------


async def test_results_show_proof_and_save_report(backend, tmp_path):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await walk_to_results(pilot)
        text = screen_text(pilot)
        assert "anonymous push refused" in text
        assert "same digest" in text
        assert "trust on node1" in text
        assert "42.0 s" in text
        area = pilot.app.screen.query_one("#next-steps")
        assert area.read_only
        assert "docker push reg.example.test/myimage:latest" in area.text
        await pilot.click("#save-report")
        await pilot.pause()
        await enter_value(pilot, "#path", str(tmp_path / "report.md"))
        await pilot.press("enter")
        await pilot.pause()
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# regwizard report")
    assert DIGEST in report
    assert "verified" in report


# -- look & feel ------------------------------------------------------------------------------------


async def test_ascii_fallback_on_the_linux_console(backend, monkeypatch):
    monkeypatch.setenv("TERM", "linux")
    app = make_app(backend, ascii_borders=None)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        assert app.has_class("-ascii")
        await pilot.click("#next")
        await pilot.pause()
        button = pilot.app.screen.query_one("#next", Button)
        assert button.styles.border_top[0] == "ascii"


async def test_no_ascii_fallback_elsewhere(backend):
    app = make_app(backend, ascii_borders=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.has_class("-ascii")


async def test_wide_terminal_uses_two_columns(backend):
    app = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_new(pilot)
        assert pilot.app.screen.has_class("-wide")
        columns = pilot.app.screen.query(".column")
        assert columns[0].region.y == columns[1].region.y  # side by side
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        columns = pilot.app.screen.query(".column")
        assert columns[1].region.y > columns[0].region.y  # stacked


async def test_every_nav_button_is_visible_at_80x24(backend):
    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        for _ in range(3):
            screen = pilot.app.screen
            for button_id in ("#quit", "#back", "#next"):
                region = screen.query_one(button_id).region
                assert region.height > 0 and region.bottom <= 23, (screen, button_id, region)
            if screen_name(pilot) == "StorageScreen":
                break
            await next_step(pilot)


# -- secrets ------------------------------------------------------------------------------------------


async def test_passwords_never_reach_the_screen_the_plan_or_the_report(backend, tmp_path):
    secrets = (SSH_PASSWORD, SUDO_PASSWORD, USER_PASSWORD, OTHER_PASSWORD)
    seen: list[str] = []

    def check(pilot) -> None:
        text = screen_text(pilot) + screen_svg(pilot)
        seen.append(screen_name(pilot))
        for secret in secrets:
            assert secret not in text, (screen_name(pilot), secret)

    app = make_app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await start_new(pilot)
        await fill_hosts(pilot)
        pilot.app.screen.query_one("#host-auth", Select).value = "password"
        await pilot.pause()
        await type_into(pilot, "#host-password", SSH_PASSWORD)
        await type_into(pilot, "#host-user", "admin")
        await activate(pilot, "#host-sudo")
        await type_into(pilot, "#host-sudo-password", SUDO_PASSWORD)
        check(pilot)
        await activate(pilot, "#test-host")
        await settle(pilot)
        check(pilot)
        await next_step(pilot)
        check(pilot)
        await next_step(pilot)
        await activate(pilot, "#add-user")
        await type_into(pilot, "#user-name", "alice")
        await type_into(pilot, "#user-password", USER_PASSWORD)
        await type_into(pilot, "#user-confirm", USER_PASSWORD)
        check(pilot)  # the dialog masks what is typed
        await activate(pilot, "#add")
        await settle(pilot)
        await add_user(pilot, "bob", password=OTHER_PASSWORD)
        check(pilot)
        await next_step(pilot)
        assert screen_name(pilot) == "ReviewScreen"
        check(pilot)
        commands = pilot.app.screen.query_one("#commands").text
        for secret in secrets:
            assert secret not in commands
        await pilot.click("#save-plan")
        await pilot.pause()
        await enter_value(pilot, "#path", str(tmp_path / "plan.toml"))
        await pilot.press("enter")
        await pilot.pause()
        await run_from_review(pilot)
        check(pilot)
        log = "\n".join(pilot.app.screen.query_one("#log", Log).lines)
        for secret in secrets:
            assert secret not in log
        await pilot.click("#results")
        await pilot.pause()
        await pilot.pause()
        check(pilot)
        await pilot.click("#save-report")
        await pilot.pause()
        await enter_value(pilot, "#path", str(tmp_path / "report.md"))
        await pilot.press("enter")
        await pilot.pause()
        held = dict(app.get_screen("storage")._plain)
    assert seen[-1] == "ResultsScreen"
    # the backend got them (in memory) ...
    _, got = backend.run_calls[0]
    assert got.ssh_passwords["10.0.0.2"] == SSH_PASSWORD
    assert got.sudo_passwords["10.0.0.2"] == SUDO_PASSWORD
    assert got.verify_password == USER_PASSWORD
    # ... but no file did
    for name in ("plan.toml", "report.md"):
        content = (tmp_path / name).read_text()
        for secret in secrets:
            assert secret not in content, name
    assert "$2b$" in (tmp_path / "plan.toml").read_text()  # hashes only
    # only the verify user's plaintext is still held
    assert OTHER_PASSWORD not in repr(app.state)
    assert held == {"alice": USER_PASSWORD}
