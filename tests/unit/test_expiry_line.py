"""Results and the report say when the served certificate ends, and warn in the renewal window."""

from __future__ import annotations

from regwizard import pki
from regwizard.events import Verification
from regwizard.report import expiry_line, verification_lines


def test_a_long_lived_certificate_is_ok_with_its_date() -> None:
    assert expiry_line("2029-03-04", 823) == (True, "certificate valid until 2029-03-04 (823 days)")


def test_inside_the_renewal_window_it_warns_and_names_the_fix() -> None:
    ok, text = expiry_line("2026-12-10", pki.RENEW_DAYS - 1)
    assert not ok and "2026-12-10" in text and "regwizard apply" in text


def test_an_expired_certificate_says_expired() -> None:
    ok, text = expiry_line("2026-11-01", -29)
    assert not ok and text.startswith("certificate expired on 2026-11-01")


def test_verification_lines_show_the_date_only_when_known() -> None:
    v = Verification(user="demo")
    assert not any("certificate" in t for _, t in verification_lines(v))
    v.cert_expires, v.cert_days_left = "2029-03-04", 823
    assert verification_lines(v)[-1] == (True, "certificate valid until 2029-03-04 (823 days)")
