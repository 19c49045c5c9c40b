"""Step 2: the TLS certificate (subject, names, validity, key, where it comes from)."""

from __future__ import annotations

import copy

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Input, Label, Select, Static

from regwizard.plan import (
    KEY_KINDS,
    check_common_name,
    check_country,
    check_days,
    check_email,
    check_local_path,
    check_san,
    check_subject_text,
)
from regwizard.report import certificate_sans, certificate_subject
from regwizard.screens.base import FormScreen, form_field, parse_int
from regwizard.screens.validation import integer, named, split_list

MODE_OPTIONS = [
    ("Self-signed (simplest)", "self-signed"),
    ("Local CA (clients trust the CA)", "local-ca"),
    ("My own certificate files", "provided"),
]
KEY_LABELS = {"rsa-2048": "RSA 2048", "rsa-4096": "RSA 4096", "ecdsa-p256": "ECDSA P-256"}


def _check_sans(value: str) -> str | None:
    for san in split_list(value):
        problem = check_san(san)
        if problem:
            return f"Extra name {problem}" if problem.startswith("is ") else problem
    return None


class CertificateScreen(FormScreen):
    STEP = "certificate"
    previous = "hosts"
    following = "storage"

    def __init__(self) -> None:
        super().__init__()
        self._preview_text = ""
        self.checks = {
            "country": check_country,
            "state": named("State", check_subject_text),
            "locality": named("Locality", check_subject_text),
            "organization": named("Organization", check_subject_text),
            "org-unit": named("Unit", check_subject_text),
            "common-name": check_common_name,
            "email": check_email,
            "days": integer(check_days),
            "extra-sans": _check_sans,
            "cert-file": self._check_provided("Certificate file"),
            "key-file": self._check_provided("Key file"),
        }
        self.labels = {
            "country": "Country",
            "state": "State",
            "locality": "Locality",
            "organization": "Organization",
            "org-unit": "Organizational unit",
            "common-name": "Common name",
            "email": "Email",
            "days": "Validity days",
            "extra-sans": "Extra names",
            "cert-file": "Certificate file",
            "key-file": "Key file",
        }

    @staticmethod
    def _check_provided(label: str):
        def run(value: str) -> str | None:
            if not value.strip():
                return f"{label} is required for your own certificate"
            return named(label, check_local_path)(value)

        return run

    def compose(self) -> ComposeResult:
        cert = self.state.plan.certificate
        yield from self.compose_steps()
        with VerticalScroll(id="body", can_focus=False):
            with Vertical(classes="page"):
                yield Label("TLS certificate", classes="page-title")
                yield Static(
                    "Clients check this certificate on every push and pull. The registry's "
                    "name and IP go into the SANs (a CN-only certificate is rejected).",
                    classes="page-intro",
                )
                with Horizontal(classes="columns"):
                    with Vertical(classes="column"):
                        yield form_field(
                            "Country",
                            Input(
                                cert.country,
                                placeholder="2 letters, e.g. CN",
                                id="country",
                                max_length=2,
                            ),
                        )
                        yield form_field(
                            "State", Input(cert.state, placeholder="optional", id="state")
                        )
                        yield form_field(
                            "Locality",
                            Input(cert.locality, placeholder="optional, a city", id="locality"),
                        )
                        yield form_field(
                            "Organization",
                            Input(cert.organization, placeholder="optional", id="organization"),
                        )
                        yield form_field(
                            "Unit",
                            Input(cert.organizational_unit, placeholder="optional", id="org-unit"),
                        )
                        yield form_field(
                            "Common name",
                            Input(cert.common_name, id="common-name"),
                            hint="empty = the domain",
                        )
                        yield form_field(
                            "Email", Input(cert.email, placeholder="optional", id="email")
                        )
                    with Vertical(classes="column"):
                        yield form_field(
                            "Validity days",
                            Input(
                                str(cert.days), placeholder="e.g. 825", id="days", type="integer"
                            ),
                        )
                        yield form_field(
                            "Key type",
                            Select(
                                [(KEY_LABELS.get(k, k), k) for k in KEY_KINDS],
                                value=cert.key if cert.key in KEY_KINDS else "rsa-4096",
                                allow_blank=False,
                                id="key-type",
                            ),
                        )
                        yield form_field(
                            "Extra names",
                            Input(
                                ", ".join(cert.extra_sans),
                                placeholder="optional: more names or IPs",
                                id="extra-sans",
                            ),
                        )
                        yield form_field(
                            "Certificate",
                            Select(MODE_OPTIONS, value=cert.mode, allow_blank=False, id="mode"),
                        )
                        yield form_field(
                            "Cert file",
                            Input(
                                cert.cert_file, placeholder="/path/to/registry.crt", id="cert-file"
                            ),
                        )
                        yield form_field(
                            "Key file",
                            Input(
                                cert.key_file, placeholder="/path/to/registry.key", id="key-file"
                            ),
                        )
                        yield Label("Preview", classes="section-title")
                        yield Static("", id="preview", markup=False)
        yield self.compose_nav()
        yield Footer()

    def on_mount(self) -> None:
        self._sync_visibility()
        self.on_screen_resume()

    def on_screen_resume(self) -> None:
        """The domain may have changed on the Hosts step."""
        domain = self.state.plan.registry.domain
        self.query_one("#common-name", Input).placeholder = domain or "the registry domain"
        self.fields_changed()

    def _sync_visibility(self) -> None:
        provided = self.query_one("#mode", Select).value == "provided"
        self.query_one("#cert-file-field").display = provided
        self.query_one("#key-file-field").display = provided

    @on(Select.Changed, "#mode")
    def _mode_changed(self) -> None:
        self._sync_visibility()
        self.fields_changed()

    def fields_changed(self) -> None:
        plan = copy.deepcopy(self.state.plan)
        self._copy_into(plan.certificate)
        text = (
            f"Subject  {certificate_subject(plan)}\nSANs     {certificate_sans(plan) or '(none)'}"
        )
        if text != self._preview_text:
            self._preview_text = text
            self.query_one("#preview", Static).update(text)

    def _copy_into(self, cert) -> None:
        cert.country = self.field_value("country").strip()
        cert.state = self.field_value("state").strip()
        cert.locality = self.field_value("locality").strip()
        cert.organization = self.field_value("organization").strip()
        cert.organizational_unit = self.field_value("org-unit").strip()
        cert.common_name = self.field_value("common-name").strip()
        cert.email = self.field_value("email").strip()
        days = parse_int(self.field_value("days"))
        if days is not None:
            cert.days = days
        cert.key = str(self.query_one("#key-type", Select).value)
        cert.mode = str(self.query_one("#mode", Select).value)
        cert.extra_sans = split_list(self.field_value("extra-sans"))
        cert.cert_file = self.field_value("cert-file").strip()
        cert.key_file = self.field_value("key-file").strip()

    def save(self) -> None:
        self._copy_into(self.state.plan.certificate)
