"""`Idempotency-Key` for POSTs that create money or stock movements (API.md, Conventions).

A key is claimed by inserting a row under a unique (scope, key) index before the operation runs,
so of twenty concurrent retries exactly one runs; the others see the row and answer 409
`idempotency-key-in-progress` or, once it is done, replay the stored response byte for byte with
`Idempotent-Replayed: true`. The same key with another method, path or body is 422
`idempotency-key-reused`. Keys are scoped per user (guests: per cart token).

A service that can should save the response in its own unit of work (`IdempotencyClaim.save`),
so the effect and the stored answer commit together and a crash between them cannot make a retry
run the operation twice. Domain errors (4xx) are stored and replayed too; unexpected failures,
transient ones (429, 5xx) and 401 release the key so the client can retry.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header
from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    bindparam,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import Response

from shopkeeper.core.db import (
    Base,
    Database,
    JSONDocument,
    UTCDateTime,
    affected_rows,
    is_postgres,
    new_id,
    table_of,
    utcnow,
)
from shopkeeper.core.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    Unauthorized,
    problem_response,
)
from shopkeeper.core.openapi import REQUIRED_MARKER
from shopkeeper.core.security import Principal
from shopkeeper.core.writes import WriteBatch

KEY_MAX_LENGTH = 255
KEY_RETENTION = timedelta(hours=24)
# A claim this old without an answer belongs to a process that died mid-request; a retry may
# take it over (a conditional update decides between two retries that try at once).
STALE_CLAIM_AFTER = timedelta(seconds=60)
REPLAYED_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("content-type", "location")

IN_PROGRESS = "in_progress"
COMPLETED = "completed"


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(KEY_MAX_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    locked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONDocument, default=None)
    # The exact bytes sent, so a replay is identical (JSONB would reorder keys).
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index("ix_idempotency_keys_scope_key", "scope", "key", unique=True),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )


class IdempotencyKeyRequired(DomainError):
    status, slug, title = 400, "idempotency-key-required", "Idempotency-Key header required"


class IdempotencyKeyInvalid(DomainError):
    status, slug, title = 400, "invalid-idempotency-key", "Invalid Idempotency-Key"


class IdempotencyKeyReused(InvalidInput):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with another request"


class IdempotencyKeyInProgress(Conflict):
    slug, title = "idempotency-key-in-progress", "A request with this Idempotency-Key is running"


async def require_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Any string up to 255 characters; a retry with the same key and body "
            "replays the first response",
            json_schema_extra={REQUIRED_MARKER: True},
        ),
    ] = None,
) -> str:
    if idempotency_key is None or not idempotency_key.strip():
        raise IdempotencyKeyRequired("Send an `Idempotency-Key` header (e.g. a UUID)")
    if len(idempotency_key) > KEY_MAX_LENGTH:
        raise IdempotencyKeyInvalid(f"Idempotency-Key is limited to {KEY_MAX_LENGTH} characters")
    return idempotency_key


IdempotencyKeyHeader = Annotated[str, Depends(require_idempotency_key)]


def idempotency_scope(principal: Principal | None, cart_token: str | None = None) -> str:
    """Keys belong to a user; a guest's to the cart token they present."""
    if principal is not None:
        return f"user:{principal.user_id}"
    if cart_token:
        return "guest:" + hashlib.sha256(cart_token.encode()).hexdigest()
    raise Unauthorized("Sign in, or send the guest cart's X-Cart-Token")


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """What "the same request" means: method, path and the body with keys in canonical order."""
    canonical = orjson.dumps(
        [method.upper(), path, body], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()


@dataclass
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def to_response(self, *, replayed: bool) -> Response:
        headers = dict(self.headers)
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        return Response(content=self.body, status_code=self.status_code, headers=headers)

    @classmethod
    def of(cls, response: Response) -> StoredResponse:
        headers = {
            name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers
        }
        return cls(response.status_code, headers, bytes(response.body))


@dataclass
class IdempotencyClaim:
    """This request owns the key until its response is saved."""

    record_id: uuid.UUID
    locked_at: datetime
    saved: StoredResponse | None = field(default=None)

    async def save(self, session: AsyncSession, response: Response) -> Response:
        """Store `response` in the caller's unit of work (the caller commits). Raises
        409 `idempotency-key-in-progress` if another request took the key over meanwhile,
        so the caller's transaction rolls back instead of doing the work twice."""
        writes = WriteBatch()
        self.save_in(writes, response)
        await writes.flush(session)
        return response

    def save_in(self, writes: WriteBatch, response: Response) -> None:
        """`save`, as one of the caller's batched writes: the check that the key is still this
        request's happens when the batch is flushed."""
        stored = StoredResponse.of(response)
        writes.change(
            _SAVE_ANSWER,
            {
                "answer_status": stored.status_code,
                "answer_headers": stored.headers,
                "answer_body": stored.body.decode(),
                "answer_at": utcnow(),
                "answer_key_id": self.record_id,
                "answer_locked_at": self.locked_at,
            },
            expected_rows=1,
            mismatch=lambda: IdempotencyKeyInProgress(
                "Another request took over this Idempotency-Key"
            ),
        )
        self.saved = stored


# Conditional on the claim still being ours (a stale-claim takeover changes `locked_at`).
_SAVE_ANSWER = text(
    """
    UPDATE idempotency_keys
    SET status = 'completed', response_status = :answer_status,
        response_headers = :answer_headers, response_body = :answer_body,
        completed_at = :answer_at
    WHERE id = :answer_key_id AND status = 'in_progress' AND locked_at = :answer_locked_at
    """
).bindparams(
    bindparam("answer_status", type_=Integer()),
    bindparam("answer_headers", type_=JSONDocument),
    bindparam("answer_body", type_=Text()),
    bindparam("answer_at", type_=UTCDateTime()),
    bindparam("answer_key_id", type_=Uuid()),
    bindparam("answer_locked_at", type_=UTCDateTime()),
)


Operation = Callable[[IdempotencyClaim], Awaitable[Response]]


def _not_an_answer(exc: DomainError) -> bool:
    """Refusals that say nothing about the request, so a retry must run it again: transient
    ones (429, 5xx), the key being busy, and credentials found wanting (401: an endpoint that
    checks its caller's account inside its own work, like checkout)."""
    return (
        exc.status in (401, 429) or exc.status >= 500 or isinstance(exc, IdempotencyKeyInProgress)
    )


async def run_idempotent(
    db: Database,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    operation: Operation,
    session: AsyncSession | None = None,
) -> Response:
    """Run `operation` once per (scope, key); replay its stored response to retries.

    `session` is the one `operation` works in: it is rolled back before a failure is recorded,
    since on SQLite its open write transaction would otherwise block the recording one."""
    claimed = await _claim(db, scope=scope, key=key, fingerprint=fingerprint)
    if isinstance(claimed, StoredResponse):
        return claimed.to_response(replayed=True)
    claim = claimed
    try:
        response = await operation(claim)
    except DomainError as exc:
        if session is not None:
            await session.rollback()
        if _not_an_answer(exc):
            await _release(db, claim)
            raise
        response = problem_response(
            exc.status, exc.slug, exc.title, exc.detail, exc.headers or None, **exc.extensions
        )
        await _store(db, claim, response)
        return response
    except BaseException:
        if session is not None:
            await session.rollback()
        await _release(db, claim)
        raise
    if claim.saved is None:
        await _store(db, claim, response)
    return response


async def run_idempotent_in_transaction(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    operation: Operation,
) -> Response:
    """`run_idempotent` for an operation that is one transaction of `session` and saves its
    answer with `IdempotencyClaim.save` before committing (checkout).

    The claim is written in that same transaction instead of one of its own: nothing about it
    can outlive a crash, and it costs one statement instead of a second transaction. While the
    transaction runs, a concurrent retry is told `idempotency-key-in-progress`: on PostgreSQL
    the claim also takes a transaction-scoped advisory lock on the key, which the retry fails to
    get (without it the retry would wait on the unique index). SQLite runs one writer at a time,
    so there a retry waits for the first request and then replays its answer.
    """
    claimed = await _claim_in_transaction(session, scope=scope, key=key, fingerprint=fingerprint)
    if not isinstance(claimed, IdempotencyClaim):
        await session.rollback()
        if claimed is None:
            raise IdempotencyKeyInProgress(
                "A request with this Idempotency-Key is still running; retry shortly"
            )
        return claimed.to_response(replayed=True)
    try:
        response = await operation(claimed)
    except DomainError as exc:
        await session.rollback()
        if _not_an_answer(exc):
            raise
        response = problem_response(
            exc.status, exc.slug, exc.title, exc.detail, exc.headers or None, **exc.extensions
        )
        # The claim went with the rollback; record the refusal so retries replay it. A retry
        # that slipped in meanwhile answered (and stored) the same refusal: first one wins.
        await _insert_completed(session, scope, key, fingerprint, StoredResponse.of(response))
        return response
    except BaseException:
        await session.rollback()
        raise
    if claimed.saved is None:
        raise RuntimeError("the operation committed without saving its answer")
    return response


async def _claim_in_transaction(
    session: AsyncSession, *, scope: str, key: str, fingerprint: str
) -> IdempotencyClaim | StoredResponse | None:
    """The claim (this request runs the operation), the stored answer to replay, or None when
    another request holds the key right now. 422 `idempotency-key-reused` for another body."""
    now = utcnow()
    record_id = new_id()
    params: dict[str, Any] = {
        "claim_id": record_id,
        "claim_scope": scope,
        "claim_key": key,
        "claim_fingerprint": fingerprint,
        "claim_at": now,
    }
    if is_postgres(session):
        params["claim_lock"] = key_lock_number(scope, key)
        claimed = await session.scalar(_CLAIM_WITH_LOCK, params)
    else:
        claimed = await session.scalar(_CLAIM, params)
    if claimed is not None:
        return IdempotencyClaim(record_id=record_id, locked_at=now)
    existing = (
        await session.execute(
            select(
                IdempotencyKey.id,
                IdempotencyKey.fingerprint,
                IdempotencyKey.status,
                IdempotencyKey.locked_at,
                IdempotencyKey.response_status,
                IdempotencyKey.response_headers,
                IdempotencyKey.response_body,
            ).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        )
    ).first()
    if existing is None:
        return None
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request; use a new key"
        )
    if existing.status == IN_PROGRESS and existing.locked_at < now - STALE_CLAIM_AFTER:
        # A claim committed on its own by `run_idempotent` (e.g. a process of the previous
        # release during a rolling upgrade) whose process died: take it over, conditionally.
        return await _take_over(session, existing.id, existing.locked_at, now)
    if existing.status != COMPLETED or existing.response_status is None:
        return None
    return StoredResponse(
        existing.response_status,
        dict(existing.response_headers or {}),
        (existing.response_body or "").encode(),
    )


async def _insert_completed(
    session: AsyncSession, scope: str, key: str, fingerprint: str, stored: StoredResponse
) -> None:
    now = utcnow()
    await session.execute(
        _insert_ignoring_conflict(session).values(
            id=new_id(),
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            status=COMPLETED,
            locked_at=now,
            response_status=stored.status_code,
            response_headers=stored.headers,
            response_body=stored.body.decode(),
            created_at=now,
            completed_at=now,
        )
    )
    await session.commit()


_CLAIM_BINDS = (
    bindparam("claim_id", type_=Uuid()),
    bindparam("claim_scope", type_=String()),
    bindparam("claim_key", type_=String()),
    bindparam("claim_fingerprint", type_=String()),
    bindparam("claim_at", type_=UTCDateTime()),
)
_CLAIM = text(
    """
    INSERT INTO idempotency_keys (id, scope, key, fingerprint, status, locked_at, created_at)
    VALUES (:claim_id, :claim_scope, :claim_key, :claim_fingerprint, 'in_progress', :claim_at,
            :claim_at)
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING id
    """
).bindparams(*_CLAIM_BINDS)
# The row goes in only when this transaction holds the key's advisory lock.
_CLAIM_WITH_LOCK = text(
    """
    INSERT INTO idempotency_keys (id, scope, key, fingerprint, status, locked_at, created_at)
    SELECT :claim_id, :claim_scope, :claim_key, :claim_fingerprint, 'in_progress', :claim_at,
           :claim_at
    WHERE pg_try_advisory_xact_lock(:claim_lock)
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING id
    """
).bindparams(*_CLAIM_BINDS, bindparam("claim_lock", type_=BigInteger()))


def _insert_ignoring_conflict(session: AsyncSession) -> Any:
    dialect = postgresql if is_postgres(session) else sqlite
    keys = table_of(IdempotencyKey)
    return dialect.insert(keys).on_conflict_do_nothing(index_elements=[keys.c.scope, keys.c.key])


def key_lock_number(scope: str, key: str) -> int:
    """The advisory lock for (scope, key): 64 bits of its hash, as PostgreSQL's signed bigint."""
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _claim(
    db: Database, *, scope: str, key: str, fingerprint: str
) -> IdempotencyClaim | StoredResponse:
    # Two rounds: a key purged between our failed insert and our read is simply claimed again.
    for _ in range(2):
        async with db.session() as session:
            await _relax_durability(session)
            now = utcnow()
            record = IdempotencyKey(
                id=new_id(),
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                status=IN_PROGRESS,
                locked_at=now,
                created_at=now,
            )
            session.add(record)
            try:
                await session.commit()
                return IdempotencyClaim(record_id=record.id, locked_at=now)
            except IntegrityError:
                await session.rollback()
            existing = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.scope == scope, IdempotencyKey.key == key
                )
            )
            if existing is None:
                continue
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different request; use a new key"
                )
            if existing.status == COMPLETED:
                assert existing.response_status is not None
                return StoredResponse(
                    existing.response_status,
                    dict(existing.response_headers or {}),
                    (existing.response_body or "").encode(),
                )
            if existing.locked_at < now - STALE_CLAIM_AFTER:
                taken = await _take_over(session, existing.id, existing.locked_at, now)
                await session.commit()
                if taken is not None:
                    return taken
            raise IdempotencyKeyInProgress(
                "A request with this Idempotency-Key is still running; retry shortly"
            )
    raise IdempotencyKeyInProgress("This Idempotency-Key is busy; retry shortly")


async def _take_over(
    session: AsyncSession, record_id: uuid.UUID, locked_at: datetime, now: datetime
) -> IdempotencyClaim | None:
    """Claim a stale in-progress key, unless another retry took it over first (the conditional
    update decides between two retries that try at once). Does not commit."""
    taken = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == record_id,
            IdempotencyKey.status == IN_PROGRESS,
            IdempotencyKey.locked_at == locked_at,
        )
        .values(locked_at=now)
    )
    return IdempotencyClaim(record_id=record_id, locked_at=now) if affected_rows(taken) else None


async def _relax_durability(session: AsyncSession) -> None:
    """Commit claims without waiting for the WAL flush. Losing one in a crash only lets a retry
    run the operation afresh, which is correct since the operation never committed either;
    and the operation's own (durable) commit flushes the claim written before it."""
    if is_postgres(session):
        await session.execute(text("SET LOCAL synchronous_commit = off"))


async def _store(db: Database, claim: IdempotencyClaim, response: Response) -> None:
    async with db.session() as session:
        await claim.save(session, response)
        await session.commit()


async def _release(db: Database, claim: IdempotencyClaim) -> None:
    async with db.session() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == claim.record_id,
                IdempotencyKey.status == IN_PROGRESS,
                IdempotencyKey.locked_at == claim.locked_at,
            )
        )
        await session.commit()


async def purge_idempotency_keys(db: Database, *, now: datetime | None = None) -> int:
    """Delete keys past their retention; returns how many."""
    cutoff = (now or utcnow()) - KEY_RETENTION
    async with db.session() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
        )
        await session.commit()
    return affected_rows(result)
