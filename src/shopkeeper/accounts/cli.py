"""`shopkeeper users ...`: create, list, promote, demote, set-password, deactivate."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.accounts import directory
from shopkeeper.core.errors import DomainError
from shopkeeper.core.settings import get_settings

T = TypeVar("T")

users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
console = Console(stderr=True)

Email = Annotated[str, typer.Argument(help="The user's e-mail")]
Roles = Annotated[
    list[str] | None,
    typer.Option("--role", help="A role (repeatable): admin, shop_staff, log_reader, ..."),
]


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work(session)` in one session against the configured (checked) database; a domain
    refusal becomes one red line and exit status 1."""
    from shopkeeper.core.db import Database
    from shopkeeper.core.startup import check_database

    settings = get_settings()

    async def main() -> T:
        await check_database(settings)
        database = Database(settings)
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]", highlight=False)
        raise typer.Exit(1) from exc


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="E-mail, used to log in")],
    password: Annotated[str, typer.Option(help="At least 8 characters")],
    staff: Annotated[bool, typer.Option("--staff", help="Make an `admin`")] = False,
    roles: Annotated[
        list[str] | None,
        typer.Option("--role", help="Grant a role (repeatable): shop_staff, log_reader, ..."),
    ] = None,
    full_name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Create a user (the first staff user, typically)."""
    roles = roles or []
    from pydantic import ValidationError

    from shopkeeper.accounts import service
    from shopkeeper.accounts.schemas import RegisterRequest

    try:
        body = RegisterRequest(email=email, password=password, full_name=full_name)
    except ValidationError as exc:
        console.print(f"[red]{exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from exc

    async def register(session: AsyncSession) -> None:
        await service.register_user(
            session,
            email=body.email,
            password=body.password,
            full_name=body.full_name,
            roles=tuple(roles) or (("admin",) if staff else ()),
        )

    _run(register)
    granted = roles or (["admin"] if staff else [])
    suffix = f" with roles {', '.join(granted)}" if granted else ""
    console.print(f"[green]created user {body.email}{suffix}[/green]")


@users_app.command("list")
def list_users(
    role: Annotated[str | None, typer.Option(help="Only users holding this role")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Users by e-mail: roles, active or not, when created (tab-separated on stdout)."""

    async def load(session: AsyncSession) -> list[directory.UserSummary]:
        return await directory.list_users(session, role=role, limit=limit)

    for user in _run(load):
        state = "active" if user.is_active else "inactive"
        roles = ",".join(user.roles) or "-"
        print(f"{user.email}\t{roles}\t{state}\t{user.created_at:%Y-%m-%d}")


@users_app.command()
def promote(email: Email, roles: Roles = None) -> None:
    """Grant roles (default `admin`), keeping those the user has."""
    wanted = roles or ["admin"]

    async def grant(session: AsyncSession) -> list[str]:
        return await directory.grant_roles(session, email=email, roles=wanted)

    held = _run(grant)
    console.print(f"[green]{email}: {', '.join(held)}[/green]", highlight=False)


@users_app.command()
def demote(email: Email, roles: Roles = None) -> None:
    """Take roles away (default: all of them); new tokens carry the change at the next refresh."""

    async def revoke(session: AsyncSession) -> list[str]:
        return await directory.revoke_roles(session, email=email, roles=roles or [])

    left = _run(revoke)
    console.print(f"[green]{email}: {', '.join(left) or 'no roles'}[/green]", highlight=False)


@users_app.command("set-password")
def set_password(
    email: Email,
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="The new one"),
    ],
) -> None:
    """Set a new password (asked for when not given); the user's sessions end."""

    async def change(session: AsyncSession) -> None:
        await directory.set_password(session, email=email, password=password)

    _run(change)
    console.print(
        f"[green]password of {email} changed; its sessions ended[/green]", highlight=False
    )


@users_app.command()
def deactivate(email: Email) -> None:
    """The user can no longer sign in; open sessions end within an access-token lifetime."""

    async def switch_off(session: AsyncSession) -> bool:
        return await directory.deactivate_user(session, email=email)

    changed = _run(switch_off)
    console.print(
        f"[green]{email} deactivated[/green]" if changed else f"{email} was already inactive",
        highlight=False,
    )
