"""Snapshot (120x40) of Review with an HA plan: a row per replica and the S3 storage, the
S3 secret key among what the run will ask for, and never a secret.

Update this baseline only with ``--snapshot-update`` on this file's test.
"""

from __future__ import annotations

from .conftest import WIDE, make_app
from .test_replicas_ui import ha_plan
from .walk import settle


def test_review_ha_plan(snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)

    app = make_app(plan=ha_plan(), start_at="review")
    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)
