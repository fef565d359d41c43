"""Handover to support staff: tickets, the queue, claims, messages and notes, and what
an agent may see of a conversation (support hours are in `bot.handover.hours`).

Plain Python over the shop database; the gateway routes messages, the console shows
them, the action opens tickets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.core.models import (ChatIdentity, Customer, DataAccessLog, HandoverTicket, TicketMessage,
                             TicketNote, utcnow)
from bot.core.redact import mask

ACTIVE = ("open", "claimed")
MINUTES_PER_TICKET = 4


@dataclass(frozen=True)
class Opened:
    ticket_id: int
    position: int  # in the queue, 1 = next
    wait_minutes: int
    already_open: bool


def active_ticket(session: Session, channel: str, sender_id: str) -> Optional[HandoverTicket]:
    return session.execute(select(HandoverTicket).where(
        HandoverTicket.channel == channel, HandoverTicket.sender_id == sender_id,
        HandoverTicket.status.in_(ACTIVE), HandoverTicket.off_hours.is_(False))
        .order_by(HandoverTicket.id.desc())).scalars().first()


def open_ticket(session: Session, channel: str, sender_id: str, reason: str, *, priority: int = 2,
                off_hours: bool = False, customer_id: Optional[int] = None) -> Opened:
    """Open a ticket (or return the one already open for this conversation)."""
    existing = active_ticket(session, channel, sender_id)
    if existing is None:
        existing = HandoverTicket(channel=channel, sender_id=sender_id, reason=reason,
                                  priority=priority, off_hours=off_hours, customer_id=customer_id,
                                  status="open", created_at=utcnow())
        session.add(existing)
        session.flush()
        already = False
    else:
        already = True
    ahead = session.execute(select(func.count()).select_from(HandoverTicket).where(
        HandoverTicket.status == "open", HandoverTicket.off_hours.is_(False),
        HandoverTicket.id < existing.id)).scalar()
    return Opened(existing.id, ahead + 1, (ahead + 1) * MINUTES_PER_TICKET, already)


def queue(session: Session) -> List[HandoverTicket]:
    """Tickets waiting or being handled, most urgent and oldest first."""
    return list(session.execute(select(HandoverTicket).where(HandoverTicket.status.in_(ACTIVE))
                                .order_by(HandoverTicket.priority, HandoverTicket.id)).scalars())


def claim(session: Session, ticket_id: int, agent_id: int, agent_name: str) -> bool:
    """Exactly one agent gets an open ticket, however many click at once; from then on
    only they see the conversation (checked by id: display names may repeat)."""
    return session.execute(
        update(HandoverTicket).where(HandoverTicket.id == ticket_id, HandoverTicket.status == "open")
        .values(status="claimed", claimed_by=agent_name, claimed_by_agent_id=agent_id,
                claimed_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount == 1


def handled_by(ticket: Optional[HandoverTicket], agent_id: int) -> bool:
    """Is this agent the one handling the ticket now (the only one who may act on it)?"""
    return ticket is not None and ticket.status == "claimed" \
        and ticket.claimed_by_agent_id == agent_id


def readable_by(ticket: Optional[HandoverTicket], agent_id: int) -> bool:
    """The conversation is for the agent who took the ticket, during and after."""
    return ticket is not None and ticket.claimed_by_agent_id == agent_id


def finish(session: Session, ticket_id: int, status: str) -> Optional[HandoverTicket]:
    """Hand back (bot answers again) or close; returns the ticket if it was active."""
    assert status in ("handed_back", "closed")
    done = session.execute(
        update(HandoverTicket).where(HandoverTicket.id == ticket_id,
                                     HandoverTicket.status.in_(ACTIVE))
        .values(status=status, closed_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    return session.get(HandoverTicket, ticket_id) if done else None


def add_message(session: Session, ticket_id: int, author: str, text: str,
                agent_id: Optional[int] = None) -> TicketMessage:
    message = TicketMessage(ticket_id=ticket_id, author=author, text=text, agent_id=agent_id,
                            created_at=utcnow())
    session.add(message)
    session.flush()
    return message


def add_note(session: Session, ticket_id: int, agent_id: int, text: str) -> TicketNote:
    note = TicketNote(ticket_id=ticket_id, agent_id=agent_id, text=text, created_at=utcnow())
    session.add(note)
    session.flush()
    return note


def conversation(session: Session, ticket_id: int) -> Tuple[List[TicketMessage], List[TicketNote]]:
    messages = session.execute(select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
                               .order_by(TicketMessage.id)).scalars().all()
    notes = session.execute(select(TicketNote).where(TicketNote.ticket_id == ticket_id)
                            .order_by(TicketNote.id)).scalars().all()
    return list(messages), list(notes)


def set_contact_preference(session: Session, channel: str, sender_id: str, preference: str) -> bool:
    ticket = session.execute(select(HandoverTicket).where(
        HandoverTicket.channel == channel, HandoverTicket.sender_id == sender_id,
        HandoverTicket.status == "open").order_by(HandoverTicket.id.desc())).scalars().first()
    if ticket is None:
        return False
    ticket.contact_preference = preference
    return True


def get(session: Session, ticket_id: int) -> Optional[HandoverTicket]:
    return session.get(HandoverTicket, ticket_id)


def for_agent(session: Session, ticket_id: int, agent_id: int) -> Optional[Dict[str, Any]]:
    """The ticket and its conversation for the agent handling it (`{"refused": True}` for
    anyone else, None when there is no such ticket); every view is logged (transcript,
    and the customer's profile when the chat is verified), and what the customer and the
    agents wrote is masked."""
    ticket = session.get(HandoverTicket, ticket_id)
    if ticket is None:
        return None
    if not readable_by(ticket, agent_id):
        return {"refused": True}
    messages, notes = conversation(session, ticket_id)
    profile = None
    identity = session.execute(select(ChatIdentity).where(
        ChatIdentity.channel == ticket.channel,
        ChatIdentity.external_id == ticket.sender_id)).scalar_one_or_none()
    verified = identity is not None and identity.verified_at is not None \
        and identity.customer_id is not None
    customer_id = identity.customer_id if verified else ticket.customer_id
    session.add(DataAccessLog(agent_id=agent_id, customer_id=customer_id,
                              ticket_id=ticket_id, kind="transcript", viewed_at=utcnow()))
    if verified:
        customer = session.get(Customer, identity.customer_id)
        profile = {"name": f"{customer.first_name} {customer.last_name}",
                   "loyalty": customer.loyalty_status, "card": customer.loyalty_card}
        session.add(DataAccessLog(agent_id=agent_id, customer_id=customer.id,
                                  ticket_id=ticket_id, kind="profile", viewed_at=utcnow()))
    return {
        "id": ticket.id, "channel": ticket.channel, "status": ticket.status,
        "reason": ticket.reason, "claimed_by": ticket.claimed_by, "sender": ticket.sender_id,
        "verified": verified, "profile": profile,
        "messages": [{"author": m.author, "text": mask(m.text),
                      "at": m.created_at.isoformat()} for m in messages],
        "notes": [{"text": n.text, "at": n.created_at.isoformat()} for n in notes]}
