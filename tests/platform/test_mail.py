"""Mail delivery claims: a sender that died mid-way is taken over only once its claim is stale."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shopkeeper.core.db import utcnow
from shopkeeper.core.mail import MailDeliveryInProgress, OutboundMail
from shopkeeper.core.runtime import Runtime


async def _claim_as_crashed_sender(runtime: Runtime, mail_id: object, age_seconds: float) -> None:
    async with runtime.db.session() as session:
        await session.execute(
            update(OutboundMail)
            .where(OutboundMail.id == mail_id)
            .values(status="sending", claimed_at=utcnow() - timedelta(seconds=age_seconds))
        )
        await session.commit()


async def test_a_recent_claim_is_left_alone_and_a_stale_one_taken_over(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        mail_id = await runtime.mailer.send(
            session,
            to="ken@example.com",
            template="welcome",
            context={"email": "ken@example.com", "full_name": None},
        )
        await session.commit()
    outbox = runtime.settings.var_dir / "mail"
    timeout = runtime.settings.mail_claim_timeout_seconds

    await _claim_as_crashed_sender(runtime, mail_id, age_seconds=0)
    with pytest.raises(MailDeliveryInProgress):
        await runtime.mailer.deliver(mail_id)
    assert not list(outbox.glob("*.eml"))

    await _claim_as_crashed_sender(runtime, mail_id, age_seconds=timeout + 1)
    assert await runtime.mailer.deliver(mail_id) is True
    assert await runtime.mailer.deliver(mail_id) is False
    assert [path.name for path in outbox.glob("*.eml")] == [f"{mail_id}.eml"]


async def test_templates_escape_html_but_not_text(runtime: Runtime) -> None:
    rendered = runtime.mailer.render(
        "welcome", {"email": "a@example.com", "full_name": "<script>x</script>"}
    )
    assert "<script>" not in (rendered.html or "")
    assert "&lt;script&gt;" in (rendered.html or "")
    assert "<script>x</script>" in rendered.text
