"""What Comptoir says about birthday offers and the loyalty card, turn by turn.

Beside the privacy desk (composed, not inherited): the same proof of identity comes
first, and what was asked before proof ("contact birthday") follows a good code.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional
from zoneinfo import ZoneInfo


from bot.core.models import Customer, Store
from bot.core.replies import Pending, Reply, button
from bot.core.text import format_date
from bot.customers import verification as ident
from bot.customers.birthday import format_birthday, read_birthday
from bot.customers.consent import conversation_ref, set_consent
from bot.offers.birthday import issue_birthday_voucher, window_for
from bot.offers.loyalty import activate_card, card_text, mask_card, programme_text
from bot.offers.rules import DEFAULT_TIMEZONE, OfferRules
from bot.offers.vouchers import image_path, voucher_text
from bot.privacy.desk import PrivacyDesk
from bot.privacy.proof import PrivacyAsk

BIRTHDAY_WORDING_VERSION = "birthday-date-2026-11"
ASK_BIRTHDAY = ("Je n'ai pas encore votre date d'anniversaire. Quelle est-elle ? (par exemple "
                "« 12 mars » ou « 12/03 » : le jour et le mois suffisent) En me la donnant, vous acceptez que nous la "
                "conservions pour vous offrir un cadeau chaque année et vous le souhaiter ici ; "
                "vous pourrez la retirer à tout moment.")
NO_PROMO_CODE = ("Je n'ai pas de code promo à vous donner ici, et je ne peux pas vérifier les "
                 "codes annoncés sur le site ou les réseaux sociaux : un conseiller le peut.")
CARD_OUTCOMES = {
    "activated": "C'est fait : votre carte {card} est active. Elle fonctionne dès maintenant "
                 "dans tous nos magasins et en ligne, et chaque achat vous rapporte des points.",
    "already": "Votre carte {card} est déjà active, dans tous nos magasins et en ligne : rien à faire.",
    "mismatch": "Ce numéro ne correspond pas à la carte de votre compte. Vérifiez les 12 "
                "chiffres au dos de la carte, ou demandez à un conseiller.",
}


class OffersDesk:
    """Birthday offers, promo codes and the loyalty card, beside the privacy desk: the same
    proof comes first, and what was asked before proof ("contact birthday") follows a
    good code there."""

    def __init__(self, privacy: PrivacyDesk, rules: OfferRules) -> None:
        self.session = privacy.session
        self.now = privacy.now
        self.secret = privacy.secret
        self.proof = privacy.proof
        self.privacy = privacy
        self.rules = rules
        privacy.follow_ups.update(birthday=self.answer_birthday, loyalty=self.answer_loyalty,
                                  activate=self.answer_activate)
        privacy.not_codes["birthday_date"] = self.answer_birthday_date

    def _today(self, customer: Customer) -> dt.date:
        """The customer's day, in their home store's time zone."""
        store = self.session.get(Store, customer.home_store_id) if customer.home_store_id else None
        zone = ZoneInfo(store.timezone if store else DEFAULT_TIMEZONE)
        return self.now.replace(tzinfo=dt.timezone.utc).astimezone(zone).date()

    def _member_only(self, customer: Customer) -> Optional[Reply]:
        """The reply for a customer whose card cannot carry an offer yet, or None."""
        if customer.loyalty_status == "none":
            return Reply(slots={"pending": None}).say(
                "L'offre anniversaire est réservée aux membres du programme de fidélité, et vous "
                "n'avez pas encore de carte. " + programme_text(self.rules))
        if customer.loyalty_status == "pending":
            return Reply(slots={"pending": None}).say(
                card_text(customer, self.rules) + " Votre offre anniversaire vous "
                "attendra ensuite.", [button("Activer ma carte", "activate_card")])
        if customer.loyalty_status == "suspended":
            return Reply(slots={"pending": None}).say(
                card_text(customer, self.rules), [button("Parler à un conseiller", "request_human")])
        return None

    # Birthday ------------------------------------------------------------------------------
    def answer_birthday(self, ask: PrivacyAsk) -> Reply:
        blocked = self.proof.require(ask, "birthday")
        if blocked:
            return blocked
        customer = self.proof.customer(self.proof.identity(ask))
        not_member = self._member_only(customer)
        if not_member:
            return not_member
        if customer.birthday is None:
            if ask.pending == Pending("birthday_date") and read_birthday(ask.text):
                return self.answer_birthday_date(ask)
            return Reply().asking(Pending("birthday_date")).say(ASK_BIRTHDAY)
        today = self._today(customer)
        window, open_now = window_for(customer.birthday, today, self.rules)
        if not open_now:
            return Reply(slots={"pending": None}).say(
                f"Votre offre anniversaire s'ouvrira le {format_date(window.opens)} (une semaine "
                f"avant votre anniversaire) et restera disponible jusqu'au "
                f"{format_date(window.closes)}. Revenez me voir à ce moment-là !")
        voucher, created = issue_birthday_voucher(self.session, customer, window, today, self.rules)
        if voucher.used_at is not None:
            return Reply(slots={"pending": None}).say(
                f"Vous avez déjà utilisé votre bon anniversaire de cette année, le "
                f"{format_date(voucher.used_at.date())}. Rendez-vous l'an prochain !")
        opening = ("Joyeux anniversaire ! Voici votre cadeau, avec le code à présenter en caisse."
                   if created else "Voici de nouveau votre bon anniversaire (un seul par an, "
                   "c'est bien le même).")
        reply = Reply(slots={"pending": None}).say(f"{opening}\n{voucher_text(voucher)}")
        reply.show(ask.public_url + image_path(self.secret, voucher.code))
        return reply

    def answer_birthday_date(self, ask: PrivacyAsk) -> Reply:
        """The date asked for by `answer_birthday`; storing it records the consent given."""
        blocked = self.proof.require(ask, "birthday")
        if blocked:
            return blocked
        identity = self.proof.identity(ask)
        customer = self.proof.customer(identity)
        if customer.birthday is not None:
            return self.answer_birthday(ask)
        day = read_birthday(ask.text)
        if day is None:
            return Reply().asking(Pending("birthday_date")).say(
                "Je n'ai pas reconnu la date. Écrivez-la par exemple « 12 mars » ou « 12/03 ».")
        customer.birthday = day
        set_consent(self.session, "birthday", identity.channel, True, customer_id=customer.id,
                    source_channel=identity.channel, source_conversation=conversation_ref(identity.id),
                    wording_version=BIRTHDAY_WORDING_VERSION)
        reply = Reply().say(f"Merci, c'est noté : votre anniversaire est le {format_birthday(day)}.")
        follow = self.answer_birthday(ask)
        reply.extend(follow)
        reply.slots.update(follow.slots)
        return reply

    # Promo codes ----------------------------------------------------------------------------
    def answer_promo(self, ask: PrivacyAsk) -> Reply:
        """A promo-code question: what this customer can really get, never an invented code."""
        customer = self.proof.customer(self.proof.identity(ask))
        if customer is None:
            return Reply().say(
                f"{NO_PROMO_CODE} Ce que nos clients obtiennent vraiment passe par la carte de "
                f"fidélité. {programme_text(self.rules)} Si vous êtes déjà membre, je "
                "peux vérifier votre offre anniversaire et vos points.",
                [button("Mon offre anniversaire", "birthday_offer"),
                 button("Mes points", "loyalty_card"),
                 button("Parler à un conseiller", "request_human")])
        if customer.loyalty_status == "none":
            return Reply(slots={"pending": None}).say(
                f"{NO_PROMO_CODE} Vous n'avez pas encore de carte de fidélité : c'est elle qui "
                f"donne droit aux bons. {programme_text(self.rules)}")
        lines = [NO_PROMO_CODE, "Voici ce à quoi vous avez droit :"]
        buttons = []
        if customer.loyalty_status == "active":
            today = self._today(customer)
            if customer.birthday is None:
                lines.append("• une offre pour votre anniversaire, dès que vous me donnez sa date ;")
                buttons.append(button("Mon offre anniversaire", "birthday_offer"))
            else:
                window, open_now = window_for(customer.birthday, today, self.rules)
                if open_now:
                    lines.append(f"• votre offre anniversaire vous attend, jusqu'au {format_date(window.closes)} ;")
                    buttons.append(button("Voir mon offre anniversaire", "birthday_offer"))
                else:
                    lines.append(f"• votre offre anniversaire, à partir du {format_date(window.opens)} ;")
        lines.append("• " + card_text(customer, self.rules))
        if customer.loyalty_status == "pending":
            buttons.append(button("Activer ma carte", "activate_card"))
        buttons.append(button("Parler à un conseiller", "request_human"))
        return Reply(slots={"pending": None}).say("\n".join(lines), buttons)

    # Loyalty card ---------------------------------------------------------------------------
    def answer_programme(self, ask: PrivacyAsk) -> Reply:
        return Reply().say(programme_text(self.rules))

    def answer_loyalty(self, ask: PrivacyAsk) -> Reply:
        blocked = self.proof.require(ask, "loyalty")
        if blocked:
            return blocked
        customer = self.proof.customer(self.proof.identity(ask))
        if customer.loyalty_status == "none":
            return Reply(slots={"pending": None}).say(
                "Vous n'avez pas encore de carte de fidélité. " + programme_text(self.rules))
        buttons = {"pending": [button("Activer ma carte", "activate_card")],
                   "suspended": [button("Parler à un conseiller", "request_human")]}
        return Reply(slots={"pending": None}).say(
            card_text(customer, self.rules), buttons.get(customer.loyalty_status))

    def answer_activate(self, ask: PrivacyAsk) -> Reply:
        identity = self.proof.identity(ask)
        customer = self.proof.customer(identity)
        contact = ident.read_contact(ask.text)
        if customer is None and contact is not None:
            # "activer ma carte 8000..." before proof: the card number is the contact.
            ask.pending = Pending("contact", "activate")
            return self.privacy.answer_verify(ask)
        blocked = self.proof.require(ask, "activate")
        if blocked:
            return blocked
        card = contact.value if contact is not None and contact.kind == "card" else None
        outcome = activate_card(self.session, customer, card, identity.channel, self.now)
        if outcome in ("no_card", "suspended"):
            return self.answer_loyalty(ask)
        return Reply(slots={"pending": None}).say(
            CARD_OUTCOMES[outcome].format(card=mask_card(customer.loyalty_card)))
