"""Contacts: finding the customer behind an identity, creating them, and merging two of them.

Linking is deliberately conservative: an identity that already belongs to a contact decides the contact, a
new identity given together with a known one joins that contact, and two identities that belong to two
different contacts are never merged silently — that takes an explicit merge, which is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter_api.history.identity import Identity
from callcenter_api.models import Contact, ContactIdentity, ContactMerge, Conversation


class MergeError(ValueError):
    """The merge cannot be done as asked (the message says why); nothing was changed."""


def new_id() -> str:
    return uuid.uuid4().hex


def current(session: Session, contact_id: str) -> Contact | None:
    """The contact, or the one it was merged into (old ids keep working)."""
    seen: set[str] = set()
    contact = session.get(Contact, contact_id)
    while contact is not None and contact.merged_into is not None and contact.id not in seen:
        seen.add(contact.id)
        contact = session.get(Contact, contact.merged_into)
    return contact


def owner_of(session: Session, identity: Identity) -> Contact | None:
    contact_id = session.scalar(
        select(ContactIdentity.contact_id).where(
            ContactIdentity.kind == identity.kind, ContactIdentity.value == identity.value
        )
    )
    return current(session, contact_id) if contact_id else None


def resolve(
    session: Session, identities: Sequence[Identity], *, name: str | None = None, now: datetime
) -> Contact | None:
    """The contact for these identities, created when none of them is known yet. None without identities.

    Safe against a concurrent writer creating the same identity (another worker, the call log thread): the
    insert runs in a savepoint and a unique-key clash means "someone else created it", so we use theirs.
    """
    unique = list(dict.fromkeys(identities))
    if not unique:
        return None
    for _attempt in range(3):
        owners = [owner_of(session, identity) for identity in unique]
        contact = next((owner for owner in owners if owner is not None), None)
        try:
            with session.begin_nested():
                if contact is None:
                    contact = Contact(id=new_id(), name=name, created_at=now)
                    session.add(contact)
                elif name and not contact.name:
                    contact.name = name
                for identity, owner in zip(unique, owners, strict=True):
                    if owner is None:
                        session.add(
                            ContactIdentity(
                                contact_id=contact.id, kind=identity.kind, value=identity.value, created_at=now
                            )
                        )
            return contact
        except IntegrityError:
            continue  # lost a race for one of the identities: look again
    raise RuntimeError(f"could not resolve a contact for {', '.join(map(str, unique))}")


def find(session: Session, identities: Iterable[Identity]) -> list[Contact]:
    """Contacts owning any of these identities (merged ones resolved to their survivor), no duplicates."""
    found: dict[str, Contact] = {}
    for identity in identities:
        contact = owner_of(session, identity)
        if contact is not None:
            found.setdefault(contact.id, contact)
    return list(found.values())


def identities_of(session: Session, contact_id: str) -> list[ContactIdentity]:
    return list(
        session.scalars(
            select(ContactIdentity).where(ContactIdentity.contact_id == contact_id).order_by(ContactIdentity.id)
        )
    )


def merge(session: Session, survivor_id: str, merged_id: str, *, by: str, now: datetime) -> ContactMerge:
    """Move everything of `merged_id` to `survivor_id`; `merged_id` stays as a pointer to the survivor.

    Nothing is deleted: identities and conversations change owner, and the merge record lists every id
    that moved, so a wrong merge can be understood (and undone by hand) later.
    """
    if survivor_id == merged_id:
        raise MergeError("a contact cannot be merged into itself")
    survivor = session.get(Contact, survivor_id, with_for_update=True)
    merged = session.get(Contact, merged_id, with_for_update=True)
    for label, contact, wanted in (("survivor", survivor, survivor_id), ("merged", merged, merged_id)):
        if contact is None:
            raise LookupError(f"{label} contact {wanted} not found")
        if contact.merged_into is not None:
            raise MergeError(f"contact {wanted} was already merged into {contact.merged_into}")
    assert survivor is not None and merged is not None
    identity_ids = list(session.scalars(select(ContactIdentity.id).where(ContactIdentity.contact_id == merged_id)))
    conversation_ids = list(session.scalars(select(Conversation.id).where(Conversation.contact_id == merged_id)))
    session.execute(
        update(ContactIdentity).where(ContactIdentity.contact_id == merged_id).values(contact_id=survivor_id)
    )
    session.execute(update(Conversation).where(Conversation.contact_id == merged_id).values(contact_id=survivor_id))
    # contacts merged into the merged one earlier now point straight at the survivor
    session.execute(update(Contact).where(Contact.merged_into == merged_id).values(merged_into=survivor_id))
    merged.merged_into = survivor_id
    if not survivor.name and merged.name:
        survivor.name = merged.name
    record = ContactMerge(
        survivor_id=survivor_id,
        merged_id=merged_id,
        at=now,
        by=by,
        moved={"identities": identity_ids, "conversations": conversation_ids, "name": merged.name},
    )
    session.add(record)
    session.flush()
    return record
