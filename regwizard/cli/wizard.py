"""Open the Textual wizard (Textual is imported only here, when a screen is opened)."""

from __future__ import annotations

from pathlib import Path


def wizard(plan_path: Path | None, *, verify_password: str = "") -> int:
    import os

    from regwizard.plan import Plan, Secrets, load_plan

    plan: Plan | None = load_plan(plan_path) if plan_path else None
    if plan_path:
        from regwizard import settings

        settings.remember_plan(plan_path)  # listed first by "Open a plan file" next time
    from regwizard.app import RegwizardApp
    from regwizard.backend import EngineBackend

    app = RegwizardApp(
        backend=EngineBackend(),
        plan=plan,
        plan_path=plan_path,
        start_at="review" if plan else "welcome",
        # as `apply` does: Review then does not ask for the S3 secret key
        secrets=Secrets(
            verify_password=verify_password,
            s3_secret_key=os.environ.get("REGWIZARD_S3_SECRET_KEY", "").strip(),
        ),
    )
    rc = app.run()
    return rc if isinstance(rc, int) else (app.return_code or 0)
