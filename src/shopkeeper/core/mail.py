"""E-mail: rendered from Jinja2 templates, queued in the database, sent by a job over SMTP (or
written as `.eml` files under `<var_dir>/mail/` when no SMTP host is configured).

`Mailer.send(session, ...)` only queues, in the caller's transaction: called by an event handler
with its session (`ctx.mailer.send(ctx.session, ...)`), the mail commits with the handler's
`processed_events` marker, so a handler that is delivered twice queues its mail once. Sending is
its own job (`MailQueued`), which claims the mail in a committed step before talking to SMTP
and marks it sent right after the server accepted it. A sender killed mid-way leaves a claim
that another attempt takes over after `mail_claim_timeout_seconds`; only a crash in the
milliseconds between the server's "250 OK" and our commit can send a mail twice, and even then
both copies carry the same Message-ID.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from prometheus_client import Counter
from sqlalchemy import String, Text, Uuid, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, Database, UTCDateTime, affected_rows, new_id, utcnow
from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.messaging.handlers import handles
from shopkeeper.core.settings import Settings

log = structlog.get_logger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "mail"
MAILS_SENT = Counter(
    "shopkeeper_mails_sent_total", "E-mails handed to SMTP or written", ["template"]
)


class OutboundMail(Base):
    __tablename__ = "outbound_mails"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(500))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    """queued -> sending (claimed) -> sent; a failed attempt goes back to queued."""
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class MailQueued:
    mail_id: uuid.UUID


class MailDeliveryInProgress(RuntimeError):
    """Another attempt claimed this mail recently; retried later, after its claim may expire."""


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None


class Mailer:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, template: str, context: Mapping[str, Any]) -> RenderedMail:
        """`<template>.subject.txt`, `.txt` and (optional) `.html` from templates/mail/."""
        values = {"shop_url": self.settings.base_url, **context}
        subject = self.templates.get_template(f"{template}.subject.txt").render(values)
        text = self.templates.get_template(f"{template}.txt").render(values)
        html = None
        if (TEMPLATES_DIR / f"{template}.html").exists():
            html = self.templates.get_template(f"{template}.html").render(values)
        return RenderedMail(subject=" ".join(subject.split()), text=text, html=html)

    async def send(
        self, session: AsyncSession, *, to: str, template: str, context: Mapping[str, Any]
    ) -> uuid.UUID:
        """Queue a mail in `session`'s transaction: it is sent once the caller commits, and
        never if the caller rolls back. Rendering happens now, so a template error fails the
        caller rather than the sender."""
        return self._queue(session, to, template, self.render(template, context))

    def _queue(
        self, session: AsyncSession, to: str, template: str, rendered: RenderedMail
    ) -> uuid.UUID:
        mail = OutboundMail(
            id=new_id(),
            recipient=to,
            template=template,
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
        )
        session.add(mail)
        record_event(session, MailQueued(mail_id=mail.id))
        return mail.id

    async def deliver(self, mail_id: uuid.UUID) -> bool:
        """Send a queued mail once. Returns False if it was already sent."""
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.mail_claim_timeout_seconds)
        async with self.db.session() as session:
            claimed = await session.execute(
                update(OutboundMail)
                .where(
                    OutboundMail.id == mail_id,
                    or_(
                        OutboundMail.status == "queued",
                        (OutboundMail.status == "sending") & (OutboundMail.claimed_at < stale),
                    ),
                )
                .values(status="sending", claimed_at=now, attempts=OutboundMail.attempts + 1)
            )
            await session.commit()
            if affected_rows(claimed) != 1:
                mail = await session.get(OutboundMail, mail_id)
                if mail is None or mail.status == "sent":
                    return False
                raise MailDeliveryInProgress(f"mail {mail_id} is being sent by another attempt")
            mail = await session.get(OutboundMail, mail_id)
            assert mail is not None
            message = self.build_message(mail)
            template = mail.template
        try:
            await self.transmit(message, mail_id)
        except Exception:
            await self._set_status(mail_id, "queued", claimed_at=None)
            raise
        await self._set_status(mail_id, "sent", sent_at=utcnow())
        MAILS_SENT.labels(template).inc()
        log.info("mail_sent", mail_id=str(mail_id), template=template)
        return True

    async def _set_status(self, mail_id: uuid.UUID, status: str, **values: Any) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(OutboundMail)
                .where(OutboundMail.id == mail_id, OutboundMail.status == "sending")
                .values(status=status, **values)
            )
            await session.commit()

    def build_message(self, mail: OutboundMail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message["Date"] = formatdate(mail.created_at.timestamp(), usegmt=True)
        # Derived from the mail's id, so even a duplicate send carries the same Message-ID.
        domain = parseaddr(self.settings.mail_from)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = f"<{mail.id}@{domain}>"
        message.set_content(mail.text_body)
        if mail.html_body is not None:
            message.add_alternative(mail.html_body, subtype="html")
        return message

    async def transmit(self, message: EmailMessage, mail_id: uuid.UUID) -> None:
        settings = self.settings
        if settings.smtp_host is None:
            self._write_eml(message, mail_id)
            return
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            timeout=30,
        )

    def _write_eml(self, message: EmailMessage, mail_id: uuid.UUID) -> None:
        directory = self.settings.var_dir / "mail"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{mail_id}.eml"
        partial = target.with_suffix(".eml.partial")
        partial.write_bytes(bytes(message))
        partial.replace(target)  # a reader never sees half a message


class HasMailer(Protocol):
    """The part of a handler context the sender needs (`core.runtime.HandlerContext` has it)."""

    @property
    def mailer(self) -> Mailer: ...


@handles(MailQueued)
async def deliver_queued_mail(ctx: HasMailer, event: MailQueued) -> None:
    await ctx.mailer.deliver(event.mail_id)
