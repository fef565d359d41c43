"""Proof of identity for a chat: the verified customer behind it, or the reply that asks
for proof first; sensitive acts (export, erasure, contact changes) want a proof from the
last few minutes, else a new code is sent. Every desk that shows or changes personal
data asks here first."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy.orm import Session

from bot.core.chats import identity_for
from bot.core.models import ChatIdentity, Customer
from bot.core.replies import Pending, Reply
from bot.customers import verification as ident

ASK_CONTACT = ("Pour protéger vos données, je dois d'abord vérifier votre identité. Donnez-moi "
               "votre adresse e-mail, votre numéro de mobile ou votre numéro de carte de fidélité.")


@dataclass
class PrivacyAsk:
    text: str
    channel: str
    sender: str
    pending: Pending = Pending("")
    confirm: Optional[str] = None
    public_url: str = "http://127.0.0.1:8080"


class Proof:
    def __init__(self, session: Session, verifier: ident.Verifier, now: dt.datetime) -> None:
        self.session = session
        self.verifier = verifier
        self.now = now  # naive UTC, like the database

    def identity(self, ask: PrivacyAsk) -> ChatIdentity:
        return identity_for(self.session, ask.channel, ask.sender)

    def customer(self, identity: ChatIdentity) -> Optional[Customer]:
        customer_id = ident.verified_customer(identity, self.now)
        return self.session.get(Customer, customer_id) if customer_id else None

    def require(self, ask: PrivacyAsk, act: str, fresh: bool = False) -> Optional[Reply]:
        """A reply asking for proof, or None when the chat may go on with `act`."""
        identity = self.identity(ask)
        if self.customer(identity) is None:
            return Reply().asking(Pending("contact", act)).say(ASK_CONTACT)
        if fresh and not ident.fresh_proof(identity, self.now):
            customer = self.customer(identity)
            contact = ident.Contact("email", customer.email) if customer.email else \
                ident.Contact("phone", customer.phone)
            if not self.verifier.request_code(self.session, identity, contact, self.now):
                return Reply().say("Vous avez demandé plusieurs codes en peu de temps. "
                                   "Réessayez dans un quart d'heure.")
            return Reply().asking(Pending("code", act)).say(
                f"Par sécurité, je vous envoie un nouveau code ({ident.mask(contact.value)}). "
                "Écrivez-le-moi ici.")
        return None
