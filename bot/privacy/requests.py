"""Personal-data rights: access and export, rectification, erasure, consent changes,
and the register of requests (status and due date), all for a verified customer."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import secrets
import zipfile
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import and_, delete, inspect, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.core.models import (CONSENT_CHANNELS, ChatIdentity, Consent, MESSAGE_PURPOSES,
                             ConsentLedgerEntry, Customer, ExportLink, HandoverTicket,
                             OutboundMessage, PrivacyRequest, PrivacyRequestChange, Purchase,
                             Reservation, StockAlert, TicketMessage, TicketNote, VerificationCode,
                             Voucher)
from bot.customers.birthday import format_birthday, iso_day_month, read_birthday
from bot.customers.consent import set_consent
from bot.stock.reservations import cancel as cancel_holds, release_hold

DUE_DAYS = 30
EXPORT_HOURS = 24
ERASED_TEXT = "[supprimé à la demande du client]"
CONSENT_WORDING = "consentement-chat-2025-01"
PURPOSE_FR = {"offers": "offres", "birthday": "anniversaire", "back_in_stock": "alertes de stock",
              "personalisation": "personnalisation",
              "analytics": "analyse de nos échanges pour améliorer l'assistant"}
CHANNEL_FR = {"email": "e-mail", "sms": "SMS", "post": "courrier", "telegram": "Telegram",
              "web": "chat du site"}
WHY_TEXT = ("Nous gardons ce qu'il faut pour votre carte de fidélité et vos achats : nom, "
            "coordonnées, date d'anniversaire si vous l'avez donnée, achats (garantie, "
            "retours, points), vos choix de communication et leur historique (pour prouver "
            "votre accord), vos réservations et vos demandes. Nous ne vendons rien de tout "
            "cela. Vous pouvez tout consulter, corriger, exporter ou supprimer ici même.")


def record_request(session: Session, customer_id: Optional[int], kind: str, now: dt.datetime,
                   status: str = "received", details: Optional[str] = None) -> PrivacyRequest:
    row = PrivacyRequest(customer_id=customer_id, kind=kind, status=status, details=details,
                         created_at=now, due_at=now + dt.timedelta(days=DUE_DAYS),
                         closed_at=now if status in ("done", "refused") else None)
    session.add(row)
    session.flush()
    return row


REQUEST_STATUSES = ("received", "verified", "in_progress", "done", "refused")


def move_request(session: Session, request_id: int, status: str, agent_id: Optional[int],
                 now: dt.datetime) -> Optional[PrivacyRequest]:
    """A member of staff moves a data request on; each move is in the audit trail."""
    if status not in REQUEST_STATUSES:
        raise ValueError(f"unknown status {status!r}")
    row = session.get(PrivacyRequest, request_id)
    if row is None:
        return None
    session.add(PrivacyRequestChange(request_id=row.id, agent_id=agent_id, from_status=row.status,
                                     to_status=status, changed_at=now))
    row.status = status
    row.closed_at = now if status in ("done", "refused") else None
    return row


def list_requests(session: Session, open_only: bool = True) -> List[PrivacyRequest]:
    query = select(PrivacyRequest).order_by(PrivacyRequest.due_at)
    if open_only:
        query = query.where(PrivacyRequest.status.notin_(("done", "refused")))
    return list(session.execute(query).scalars())


# Access --------------------------------------------------------------------------------

def summary(session: Session, customer_id: int) -> str:
    customer = session.get(Customer, customer_id)
    purchases = session.execute(select(Purchase).where(Purchase.customer_id == customer_id)).scalars().all()
    consents = session.execute(select(Consent).where(Consent.customer_id == customer_id,
                                                     Consent.granted.is_(True))).scalars().all()
    holds = session.execute(select(Reservation).where(Reservation.customer_id == customer_id,
                                                      Reservation.status == "active")).scalars().all()
    birthday = format_birthday(customer.birthday) if customer.birthday else "non renseigné"
    address = ", ".join(v for v in (customer.address_line, customer.address_postcode,
                                    customer.address_city) if v) or "non renseignée"
    agreed = ", ".join(sorted({f"{PURPOSE_FR[c.purpose]} par {CHANNEL_FR[c.channel]}" for c in consents}))
    return "\n".join([
        f"Voici ce que nous avons sur vous, {customer.first_name} :",
        f"• Identité : {customer.first_name} {customer.last_name}, anniversaire : {birthday}",
        f"• Contact : {customer.email or '—'}, {customer.phone or '—'} ; adresse : {address}",
        f"• Carte de fidélité : {customer.loyalty_card or 'aucune'} ({customer.loyalty_points} points)",
        f"• Achats : {len(purchases)} ; réservations en cours : {len(holds)}",
        f"• Vous avez accepté : {agreed or 'aucune communication'}",
        "Je peux vous envoyer l'export complet (JSON et CSV), corriger une information ou "
        "tout supprimer.",
    ])


def _rows(session: Session, model, *conditions) -> List[Dict[str, Any]]:
    columns = [c.key for c in inspect(model).mapper.column_attrs]
    return [{c: _plain(getattr(row, c)) for c in columns}
            for row in session.execute(select(model).where(*conditions)).scalars()]


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def export(session: Session, customer_id: int, conversations: Dict[str, List[dict]]) -> Dict[str, Any]:
    """Everything about one customer, table by table (and nothing about anyone else)."""
    identities = session.execute(select(ChatIdentity.id, ChatIdentity.channel, ChatIdentity.external_id)
                                 .where(ChatIdentity.customer_id == customer_id)).all()
    identity_ids = [i.id for i in identities]
    return {
        "profile": [{**row, "birthday": iso_day_month(customer.birthday) if customer.birthday else None}
                    for row, customer in zip(_rows(session, Customer, Customer.id == customer_id),
                                             [session.get(Customer, customer_id)])],
        "chat_identities": _rows(session, ChatIdentity, ChatIdentity.customer_id == customer_id),
        "consents": _rows(session, Consent, Consent.customer_id == customer_id),
        "consent_ledger": _rows(session, ConsentLedgerEntry, ConsentLedgerEntry.customer_id == customer_id),
        "purchases": _rows(session, Purchase, Purchase.customer_id == customer_id),
        "vouchers": _rows(session, Voucher, Voucher.customer_id == customer_id),
        "reservations": _rows(session, Reservation, Reservation.customer_id == customer_id)
        + _rows(session, Reservation, Reservation.identity_id.in_(identity_ids),
                Reservation.customer_id.is_(None)),
        "alerts": _rows(session, StockAlert, StockAlert.customer_id == customer_id)
        + _rows(session, StockAlert, StockAlert.identity_id.in_(identity_ids)),
        "requests": _rows(session, PrivacyRequest, PrivacyRequest.customer_id == customer_id),
        "conversations": conversations,
    }


def customer_chats(session: Session, customer_id: int) -> Optional[List[str]]:
    """The conversations (sender ids) linked to a customer; None once they are erased."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        return None
    return [i.external_id for i in session.execute(select(ChatIdentity).where(
        ChatIdentity.customer_id == customer_id)).scalars()]


def export_zip(data: Dict[str, Any]) -> bytes:
    """export.json plus one CSV per table, in a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export.json", json.dumps(data, ensure_ascii=False, indent=2))
        for name, rows in data.items():
            if name == "conversations" or not rows:
                continue
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            archive.writestr(f"{name}.csv", out.getvalue())
    return buffer.getvalue()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def export_link_token(session: Session, customer_id: int, now: dt.datetime) -> str:
    """A new single-use link token, valid EXPORT_HOURS; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    session.add(ExportLink(token_hash=_token_hash(token), customer_id=customer_id, created_at=now,
                           expires_at=now + dt.timedelta(hours=EXPORT_HOURS)))
    return token


def use_export_link(session: Session, token: str, now: dt.datetime) -> Optional[int]:
    """The customer whose export this link opens, once: a second download, an expired
    or revoked link get None. Atomic: two downloads at once, one wins."""
    digest = _token_hash(token)
    used = session.execute(update(ExportLink).where(
        ExportLink.token_hash == digest, ExportLink.used_at.is_(None),
        ExportLink.revoked_at.is_(None), ExportLink.expires_at > now)
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    if used != 1:
        return None
    return session.execute(select(ExportLink.customer_id).where(
        ExportLink.token_hash == digest)).scalar_one()


def revoke_export_links(session: Session, customer_id: int, now: dt.datetime) -> int:
    return session.execute(update(ExportLink).where(
        ExportLink.customer_id == customer_id, ExportLink.used_at.is_(None),
        ExportLink.revoked_at.is_(None)).values(revoked_at=now)
        .execution_options(synchronize_session=False)).rowcount


# Rectification ------------------------------------------------------------------------------

def correct(session: Session, customer_id: int, field: str, value: str) -> Optional[str]:
    """Correct name, birthday or address directly; returns an error in French, or None.

    Email and phone go through a code sent to the new contact (see Verifier).
    """
    customer = session.get(Customer, customer_id)
    value = value.strip()
    if field in ("first_name", "last_name"):
        if not 1 <= len(value) <= 80 or any(c.isdigit() for c in value):
            return "Ce nom ne semble pas valide."
        setattr(customer, field, value)
    elif field == "birthday":
        day = read_birthday(value)
        if day is None:
            return "Donnez le jour et le mois, par exemple 12/03 ou « 12 mars » (l'année n'est pas utile)."
        customer.birthday = day
    elif field == "address":
        parts = [p.strip() for p in value.split(",")]
        if len(parts) < 3 or not parts[1].isdigit() or len(parts[1]) != 5:
            return "Donnez l'adresse ainsi : 12 rue de la Paix, 75002, Paris."
        customer.address_line, customer.address_postcode, customer.address_city = parts[0], parts[1], parts[2]
    else:
        return "Je ne peux pas modifier cette information ici."
    return None


# Consent ----------------------------------------------------------------------------------------

def change_consents(session: Session, customer_id: Optional[int], identity: ChatIdentity,
                    purposes: Iterable[str], channels: Iterable[str], granted: bool,
                    conversation_ref: str) -> int:
    """Set consents; the chat's own channel also for the identity (works unverified)."""
    changed = 0
    for channel in channels:
        for purpose in purposes:
            if customer_id:
                changed += set_consent(session, purpose, channel, granted, customer_id=customer_id,
                                       source_channel=identity.channel,
                                       source_conversation=conversation_ref,
                                       wording_version=CONSENT_WORDING)
            if channel == identity.channel:
                changed += set_consent(session, purpose, channel, granted, identity_id=identity.id,
                                       source_channel=identity.channel,
                                       source_conversation=conversation_ref,
                                       wording_version=CONSENT_WORDING)
    return changed


def consents_text(session: Session, customer_id: int) -> str:
    rows = {(c.purpose, c.channel): c.granted for c in session.execute(
        select(Consent).where(Consent.customer_id == customer_id)).scalars()}
    lines = ["Vos choix de communication :"]
    for purpose in MESSAGE_PURPOSES:
        yes = [CHANNEL_FR[c] for c in CONSENT_CHANNELS if rows.get((purpose, c))]
        lines.append(f"• {PURPOSE_FR[purpose].capitalize()} : {', '.join(yes) if yes else 'non'}")
    # Messages misunderstood are kept masked for review unless the customer objected.
    objected = any(granted is False for (purpose, _), granted in rows.items() if purpose == "analytics")
    lines.append(f"• {PURPOSE_FR['analytics'].capitalize()} (messages masqués) : "
                 f"{'non, vous vous y êtes opposé' if objected else 'oui, sauf si vous vous y opposez'}")
    lines.append("Dites par exemple « je ne veux plus de mails » ou « j'accepte les offres par SMS ».")
    return "\n".join(lines)


# Erasure ------------------------------------------------------------------------------------------

def erase(session: Session, customer_id: int, now: dt.datetime) -> List[str]:
    """Delete or anonymise everything that identifies the customer; returns the chat
    sender ids whose conversations must also leave the tracker store.

    Kept, without identifying data: purchases (accounting), the request record and the
    consent ledger (plain customer id, pseudonymous conversation references).
    """
    identities = session.execute(select(ChatIdentity).where(
        ChatIdentity.customer_id == customer_id)).scalars().all()
    senders = [i.external_id for i in identities]
    for identity in identities:
        cancel_holds(session, identity.id)
    for reservation in session.execute(select(Reservation.id).where(
            Reservation.customer_id == customer_id, Reservation.status == "active")).scalars().all():
        release_hold(session, reservation, "cancelled")
    session.execute(update(Reservation).where(Reservation.customer_id == customer_id)
                    .values(customer_id=None, identity_id=None))
    session.execute(delete(StockAlert).where(StockAlert.customer_id == customer_id))
    session.execute(delete(Consent).where(Consent.customer_id == customer_id))
    session.execute(delete(Voucher).where(Voucher.customer_id == customer_id))
    session.execute(delete(VerificationCode).where(VerificationCode.customer_id == customer_id))
    _erase_tickets(session, customer_id, [(i.channel, i.external_id) for i in identities], now)
    revoke_export_links(session, customer_id, now)
    ids = [i.id for i in identities]
    if ids:
        session.execute(delete(OutboundMessage).where(OutboundMessage.identity_id.in_(ids)))
        session.execute(delete(StockAlert).where(StockAlert.identity_id.in_(ids)))
        session.execute(update(Reservation).where(Reservation.identity_id.in_(ids)).values(identity_id=None))
        session.execute(delete(Consent).where(Consent.identity_id.in_(ids)))
        session.execute(delete(VerificationCode).where(VerificationCode.identity_id.in_(ids)))
        session.execute(delete(ChatIdentity).where(ChatIdentity.id.in_(ids)))
    customer = session.get(Customer, customer_id)
    for field in ("loyalty_card", "first_name", "last_name", "email", "phone", "birthday",
                  "preferred_channel", "address_line", "address_postcode", "address_city"):
        setattr(customer, field, None)
    customer.loyalty_status, customer.loyalty_points, customer.home_store_id = "none", 0, None
    customer.erased_at = now
    return senders


def _erase_tickets(session: Session, customer_id: int, chats: List[Tuple[str, str]],
                   now: dt.datetime) -> None:
    """The customer's handover tickets keep their counts, not their words: what was said
    to and by the agents and the agents' notes are removed; each ticket gets a sender id
    of its own that no channel can send from (REST refuses ':' in a sender id)."""
    mine = [HandoverTicket.customer_id == customer_id] + [
        and_(HandoverTicket.channel == channel, HandoverTicket.sender_id == sender)
        for channel, sender in chats]
    tickets = session.execute(select(HandoverTicket).where(or_(*mine))).scalars().all()
    for ticket in tickets:
        ticket.customer_id = None
        ticket.sender_id = f"effacé:{ticket.id}"
        if ticket.status in ("open", "claimed"):
            ticket.status, ticket.closed_at = "closed", now
    ids = [t.id for t in tickets]
    if ids:
        session.execute(update(TicketMessage).where(TicketMessage.ticket_id.in_(ids))
                        .values(text=ERASED_TEXT))
        session.execute(update(TicketNote).where(TicketNote.ticket_id.in_(ids))
                        .values(text=ERASED_TEXT))


def erase_conversations(tracker_engine: Engine, senders: List[str]) -> int:
    """Remove these conversations from Rasa's SQL tracker store."""
    if not senders:
        return 0
    with tracker_engine.begin() as connection:
        if "events" not in inspect(connection).get_table_names():
            return 0
        total = 0
        for sender in senders:
            total += connection.execute(text("DELETE FROM events WHERE sender_id = :s"),
                                        {"s": sender}).rowcount
        return total
