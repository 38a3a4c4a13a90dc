"""Contact actions: the people bots talk to, each known by a fingerprint."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from openbotkit.actions.base import (
    IdOutput,
    Input,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    Resource,
    Timestamp,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.services import contacts, crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Contact

Fingerprint = Annotated[str, Field(min_length=1, max_length=256)]


class ContactFields(Input):
    name: str | None = None
    description: str | None = None
    email: str | None = None
    phone: str | None = None
    nick: str | None = None
    preferences: str | None = None
    verified_at: Timestamp | None = None
    meta: Meta = None


class EnsureContactInput(ContactFields):
    fingerprint: Fingerprint = Field(
        description="Who the contact is to you (an email, your user id; channels use"
        " `slack:TEAM:USER`). The same fingerprint is the same contact."
    )


class ContactRef(Input):
    contact_id: str


class UpdateContactInput(ContactFields, ContactRef):
    fingerprint: Fingerprint | None = None


class ListContactsInput(ListInput, MetaFilterMixin):
    pass


class ContactOutput(Resource):
    fingerprint: str
    name: str | None = None
    description: str | None = None
    email: str | None = None
    phone: str | None = None
    nick: str | None = None
    preferences: str | None = None
    verified_at: Timestamp | None = None
    meta: dict[str, object] | None = None


CONTACT_PAGE = ListOutput[ContactOutput]


@action("ensure_contact", Effect.WRITE, "POST /contact/ensure", idempotent=True)
def ensure_contact(ctx: Ctx, inp: EnsureContactInput) -> IdOutput:
    """The contact with this fingerprint, made if there is none; given fields are set on it."""
    fields = inp.set_fields(exclude={"fingerprint"})
    return IdOutput(id=contacts.ensure(ctx, inp.fingerprint, fields).id)


@action("list_contacts", Effect.READ, "GET /contact/list")
def list_contacts(ctx: Ctx, inp: ListContactsInput) -> ListOutput[ContactOutput]:
    """List contacts, newest first, optionally filtered by meta."""
    rows, cursor = crud.page(ctx, Contact, inp)
    return CONTACT_PAGE(items=rows, cursor=cursor)


@action("fetch_contact", Effect.READ, "GET /contact/{contactId}/fetch")
def fetch_contact(ctx: Ctx, inp: ContactRef) -> ContactOutput:
    """Fetch one contact."""
    return ContactOutput.model_validate(crud.read_owned(ctx, Contact, inp.contact_id))


@action("update_contact", Effect.WRITE, "POST /contact/{contactId}/update", idempotent=True)
def update_contact(ctx: Ctx, inp: UpdateContactInput) -> IdOutput:
    """Change the given fields of a contact; null clears a field."""
    fields = inp.set_fields(exclude={"contact_id"})
    return IdOutput(id=contacts.update(ctx, inp.contact_id, fields).id)


@action("delete_contact", Effect.DESTRUCTIVE, "POST /contact/{contactId}/delete")
def delete_contact(ctx: Ctx, inp: ContactRef) -> IdOutput:
    """Delete a contact; their conversations keep their history."""
    return IdOutput(id=contacts.delete(ctx, inp.contact_id))
