"""The loyalty card: what a member's card says, the programme, activation in any store.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Customer
from bot.core.text import format_count, format_euros
from bot.offers.rules import OfferRules


def mask_card(card: Optional[str]) -> str:
    return f"•••• {card[-4:]}" if card else "—"


def card_text(customer: Customer, rules: OfferRules) -> str:
    card = mask_card(customer.loyalty_card)
    if customer.loyalty_status == "pending":
        return (f"Votre carte {card} n'est pas encore activée. Je peux l'activer maintenant : "
                "elle fonctionnera aussitôt dans tous nos magasins et en ligne.")
    if customer.loyalty_status == "suspended":
        return (f"Votre carte {card} est suspendue. Un conseiller peut regarder avec vous "
                "pourquoi et la réactiver.")
    points = customer.loyalty_points
    reward, per = format_euros(rules.reward_cents), rules.points_per_reward
    text = (f"Votre carte {card} est active, dans tous nos magasins et en ligne. "
            f"Vous avez {format_count(points)} points")
    if points >= per:
        text += f" : de quoi obtenir {points // per} bon(s) de {reward} (un bon tous les {format_count(per)} points)."
    else:
        text += f". Encore {format_count(per - points)} points et vous recevez un bon de {reward}."
    return text


def programme_text(rules: OfferRules) -> str:
    return (f"Notre carte de fidélité est gratuite : 1 point par euro dépensé, un bon de "
            f"{format_euros(rules.reward_cents)} tous les {format_count(rules.points_per_reward)} points, et une offre "
            "pour votre anniversaire. Demandez-la en caisse dans n'importe quel magasin ou lors "
            "d'une commande en ligne ; vous pourrez ensuite l'activer ici, en m'écrivant "
            "« activer ma carte ».")


def activate_card(session: Session, customer: Customer, card_given: Optional[str],
                  via: str, now: dt.datetime) -> str:
    """Activate the member's own card from any chat or store: "activated", "already",
    "mismatch" (a number that is not this customer's card), "no_card" or "suspended"."""
    if card_given and card_given != customer.loyalty_card:
        return "mismatch"
    if customer.loyalty_status == "none" or not customer.loyalty_card:
        return "no_card"
    if customer.loyalty_status == "suspended":
        return "suspended"
    if customer.loyalty_status == "active":
        return "already"
    done = session.execute(
        update(Customer).where(Customer.id == customer.id, Customer.loyalty_status == "pending")
        .values(loyalty_status="active", loyalty_activated_at=now, loyalty_activated_via=via[:16])
        .execution_options(synchronize_session=False)).rowcount
    session.expire(customer)
    return "activated" if done == 1 else "already"


CARD_OUTCOMES_FR = {
    "activated": "Carte activée : elle fonctionne dès maintenant dans tous les magasins et en ligne.",
    "already": "Cette carte est déjà active.",
    "suspended": "Cette carte est suspendue : voyez avec le service client.",
    "no_card": "Ce client n'a pas de carte de fidélité.",
    "unknown": "Ce numéro de carte est inconnu.",
}


def activate_card_number(session: Session, card: str, store_code: str, now: dt.datetime) -> str:
    """A till activates a card handed over in any store: same outcomes, plus "unknown"."""
    customer = session.execute(select(Customer).where(
        Customer.loyalty_card == card.strip(), Customer.erased_at.is_(None))).scalar_one_or_none()
    if customer is None:
        return "unknown"
    return activate_card(session, customer, None, store_code, now)
