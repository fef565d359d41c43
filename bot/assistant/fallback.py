"""What Comptoir says when it did not understand, or when the question is not its own.

- Unsure of the intent: a clarifying question ("Vous voulez dire… ?") with the likeliest
  intents as buttons in plain French, and "Autre chose". A button sends the intent with
  the entities of the message it clarifies, so the flow goes on as if understood;
  "Autre chose" counts as a second miss, which offers a person.
- Orders, deliveries, returns, payment, the web site's account: Comptoir does not handle
  them here; it says where to go (a contact and a URL from settings) and offers a person.
- Anything else out of scope: what Comptoir can do, and a person.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

from bot.core.replies import Reply, button

# The intents a clarifying question may offer, in the shopper's words. Small talk,
# answers to a question (a code, a contact, yes or no) and the fallback itself are left
# out: a button for them would mean nothing on its own.
CHOICES: Dict[str, str] = {
    "check_stock": "Savoir si un article est en stock",
    "ask_store_info": "Les horaires d'un magasin",
    "ask_nearest_store": "Le magasin le plus proche",
    "hold_item": "Mettre un article de côté",
    "cancel_hold": "Annuler une réservation",
    "notify_back_in_stock": "Être prévenu d'un retour en stock",
    "ask_parts": "Des pièces ou consommables",
    "birthday_offer": "Mon offre anniversaire",
    "ask_promo": "Codes promo et réductions",
    "loyalty_card": "Ma carte et mes points",
    "activate_card": "Activer ma carte",
    "loyalty_programme": "La carte de fidélité",
    "ask_my_data": "Voir mes données",
    "export_data": "Recevoir mes données",
    "correct_data": "Corriger mes informations",
    "erase_data": "Supprimer mes données",
    "stop": "Ne plus recevoir de messages",
    "show_consents": "Mes abonnements",
    "change_consent": "Changer mes abonnements",
    "why_data": "Pourquoi ces données",
    "request_human": "Parler à un conseiller",
    "complain": "Faire une réclamation",
    "help": "Ce que vous savez faire",
}
MAX_CHOICES = 3
MIN_CONFIDENCE = 0.1  # below this, an intent is noise, not a likely meaning
MISSES = ("nlu_fallback", "out_of_scope")
# The entities a button carries over to the intent it stands for.
CARRIED = ("product", "size", "colour", "city", "postcode", "quantity", "field", "alert_channel")

ORDER_WORDS = re.compile(
    r"\b(command\w*|colis|livr\w*|exp[ée]di\w*|retour\w*|renvo\w*|rembours\w*|[ée]chang\w*|"
    r"paie\w*|pay[ée]\w*|pr[ée]l[èe]v\w*|factur\w*|garantie|sav|transporteur|suivi|"
    r"point relais|carte cadeau|panier|mot de passe|compte client|espace client|site|appli\w*)\b",
    re.IGNORECASE)

HELP_BUTTON = button("Ce que je sais faire", "help")
PERSON_BUTTON = button("Parler à un conseiller", "request_human")


def two_misses(intents: List[Optional[str]]) -> bool:
    """The latest two user turns were both misunderstood or out of scope."""
    return len(intents) >= 2 and all(intent in MISSES for intent in intents[-2:])


def offer_person() -> Reply:
    return Reply().say("Je ne parviens pas à vous comprendre, pardon. Voulez-vous qu'un "
                       "conseiller prenne le relais ?",
                       [{"title": "Oui, un conseiller", "payload": "/request_human"},
                        {"title": "Non merci", "payload": "/deny"}])


def carried_entities(entities: Iterable[Mapping[str, Any]]) -> Dict[str, str]:
    """The entities of a message that a button sends on, one value each (the product's
    pieces joined, as DIET may cut a long name)."""
    values: Dict[str, List[str]] = {}
    for entity in entities:
        name, value = entity.get("entity"), entity.get("value")
        if name in CARRIED and isinstance(value, (str, int, float)) and str(value).strip():
            values.setdefault(name, []).append(str(value).strip())
    return {name: (" ".join(dict.fromkeys(found)) if name == "product" else found[0])
            for name, found in values.items()}


def likely_intents(ranking: Iterable[Mapping[str, Any]]) -> List[str]:
    """The intents a clarifying question may offer, likeliest first (none: a plain miss)."""
    return [item["name"] for item in ranking
            if item.get("name") in CHOICES and float(item.get("confidence") or 0) >= MIN_CONFIDENCE]


def clarify(ranking: Iterable[Mapping[str, Any]], entities: Iterable[Mapping[str, Any]]) -> Reply:
    """The clarifying question for a message the model was unsure about."""
    likely = likely_intents(ranking)
    if not likely:
        return Reply().say("Pardon, je n'ai pas bien compris. Je peux vérifier un stock, donner les "
                           "horaires d'un magasin, retrouver votre offre anniversaire ou gérer vos "
                           "données. Pouvez-vous reformuler ?", [HELP_BUTTON])
    carried = carried_entities(entities)
    buttons = []
    for intent in likely[:MAX_CHOICES]:
        payload = f"/{intent}"
        if carried:
            payload += json.dumps(carried, ensure_ascii=False, separators=(",", ":"))
        buttons.append({"title": CHOICES[intent], "payload": payload})
    buttons.append({"title": "Autre chose", "payload": "/nlu_fallback"})
    return Reply().say("Je ne suis pas sûr d'avoir bien compris. Vous voulez dire… ?", buttons)


def out_of_scope(text: str, orders_contact: str, orders_url: str) -> Reply:
    """Not Comptoir's question: where to go instead, and a person."""
    if ORDER_WORDS.search(text or ""):
        return Reply().say(
            "Je ne m'occupe pas des commandes ici : suivi, livraison, retour, remboursement, "
            f"paiement ou compte du site. Pour cela, contactez {orders_contact}, ou rendez-vous "
            f"sur {orders_url}. Un conseiller peut aussi prendre le relais.",
            [PERSON_BUTTON, HELP_BUTTON])
    return Reply().say(
        "Je suis désolé, je ne peux pas vous aider sur ce sujet. Je peux en revanche vérifier un "
        "stock, vous donner les horaires d'un magasin, retrouver votre offre anniversaire ou gérer "
        "vos données personnelles. Un conseiller peut aussi prendre le relais.",
        [HELP_BUTTON, PERSON_BUTTON])
