"""Contacts: the people an account's bots talk to, one per fingerprint.

A channel makes its users contacts with fingerprints of its own (`slack:T0123:U0456`); a
caller may use any fingerprint (an email, its own user id). A new contact's id is derived from
the fingerprint, as a conversation's `contact` gives it, so both name the same person (unless
a contact made with that fingerprint has had it changed since: then the new one gets a fresh
id).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from openbotkit.errors import Conflict, InvalidInput, Problem
from openbotkit.ids import now_ms
from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Contact


def contact_id(account_id: str, fingerprint: str) -> str:
    """The id a contact with this fingerprint gets in this account."""
    digest = hashlib.sha256(f"{account_id}\n{fingerprint}".encode()).hexdigest()
    return f"contact_{digest[:24]}"


def get(ctx: Ctx, ref: str) -> Contact:
    return crud.get_owned(ctx, Contact, ref, field="contactId")


def by_fingerprint(ctx: Ctx, fingerprint: str) -> Contact | None:
    return ctx.session.scalar(
        select(Contact).where(
            Contact.account_id == ctx.account_id, Contact.fingerprint == fingerprint
        )
    )


def ensure(ctx: Ctx, fingerprint: str, fields: dict[str, Any]) -> Contact:
    """The contact with this fingerprint, made if there is none; the given fields are set on
    it either way. Two callers ensuring one fingerprint at once get the same contact."""
    found = by_fingerprint(ctx, fingerprint)
    if found is not None:
        if fields:
            crud.update(ctx, found, fields)
        return found
    now = now_ms()
    ident = contact_id(ctx.account_id, fingerprint)
    if ctx.session.get(Contact, ident) is not None:
        # The contact first made with this fingerprint has had it changed since: its id stays
        # its own, and this new contact gets a fresh one.
        ident = f"contact_{secrets.token_hex(12)}"
    row = Contact(
        id=ident,
        account_id=ctx.account_id,
        fingerprint=fingerprint,
        created_at=now,
        updated_at=now,
        **fields,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(row)
    except IntegrityError:  # made meanwhile by another transaction
        found = by_fingerprint(ctx, fingerprint)
        if found is None:
            raise
        return found
    return row


def update(ctx: Ctx, ref: str, fields: dict[str, Any]) -> Contact:
    contact = get(ctx, ref)
    if "fingerprint" in fields:
        fingerprint = fields["fingerprint"]
        if not fingerprint:
            raise InvalidInput(
                "fingerprint cannot be cleared",
                details=[Problem("/fingerprint", "required", "must not be null or empty")],
            )
        other = by_fingerprint(ctx, fingerprint)
        if other is not None and other.id != contact.id:
            raise Conflict(
                f"fingerprint {fingerprint!r} is already contact {other.id}",
                details=[Problem("/fingerprint", "unique", "fingerprint already in use")],
            )
    crud.update(ctx, contact, fields)
    return contact


def delete(ctx: Ctx, ref: str) -> str:
    contact = get(ctx, ref)
    ctx.session.delete(contact)
    ctx.session.flush()
    return contact.id
