"""A month of past conversations for the demo shop, so that the dashboard and the review
inbox show something on a fresh install (`python -m bot seed` writes it).

Conversations go into Rasa's tracker store as Rasa writes them (user, action and bot
events), under sender ids no channel can send from ("historique:N"); what they leave in
the shop goes there: handover tickets (closed), holds (collected, expired or
cancelled, so no stock is held), back-in-stock alerts (already sent), demand signals,
satisfaction answers and review messages (invented texts, no one's data). Deterministic for a seed and a day.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import delete, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.core.models import (ChatIdentity, DemandSignal, HandoverTicket, Product, Reservation,
                             ReviewMessage, SatisfactionAnswer, StockAlert, Store, Variant)
from bot.review.analytics import EVENTS, tracker_metadata
from bot.review.capture import analytics_ref

SENDER_PREFIX = "historique:"
DAYS = 30
MISUNDERSTOOD = (
    "bonjour je cherche un cadeau pour mon mari qui court beaucoup",
    "c'est pour savoir si les chaussures taillent grand ou petit",
    "est ce que je peux venir essayer avant d'acheter",
    "Bonjour, vous faites des prix pour les clubs de running ?",
    "le modèle que j'ai vu en vitrine samedi, il est encore là ?",
    "ma machine fait un bruit bizarre depuis hier",
)
OUT_OF_SCOPE = (
    "ma commande n'est toujours pas arrivée, c'est normal ?",
    "comment je fais pour retourner un article acheté sur le site",
    "je n'arrive pas à me connecter à mon compte client",
    "vous livrez en Corse ?",
    "quel temps fera-t-il ce week-end ?",
)
NOT_CARRIED = ("le parfum Chloé Nomade", "la crème Nuxe rêve de miel", "des Salomon XT-6",
               "la cafetière Smeg rouge", "le robot Thermomix TM7")
HANDOVERS = (("request_human", "un conseiller svp", "demande du client"),
             ("complain", "c'est inadmissible, personne ne répond au téléphone", "client mécontent"))


@dataclass
class History:
    """What was written, counted as the dashboard should count it."""

    conversations: Dict[str, int] = field(default_factory=dict)  # day -> conversations
    messages: int = 0
    events: List[Dict[str, Any]] = field(default_factory=list)
    handovers: int = 0
    review: int = 0
    demand: int = 0
    satisfaction: int = 0  # questions asked


class _Writer:
    def __init__(self, rng: random.Random, shop: Session, secret: str) -> None:
        self.rng, self.shop, self.secret = rng, shop, secret
        self.history = History()

    def turn(self, sender: str, at: float, text: str, intent: str, confidence: float,
             action: Optional[str], answer: str, ranking: Tuple[Tuple[str, float], ...] = ()) -> float:
        parse = {"text": text, "intent": {"name": intent, "confidence": confidence},
                 "intent_ranking": [{"name": n, "confidence": c} for n, c in
                                    ((intent, confidence),) + ranking], "entities": []}
        self._event(sender, "user", at, intent=intent, data={
            "event": "user", "timestamp": at, "text": text, "parse_data": parse,
            "input_channel": "comptoir", "message_id": f"{self.rng.getrandbits(128):032x}",
            "metadata": {}})
        if action:
            self._event(sender, "action", at + 0.2, action=action, data={
                "event": "action", "timestamp": at + 0.2, "name": action, "policy": "RulePolicy",
                "confidence": 1.0})
        self._event(sender, "bot", at + 0.3, data={"event": "bot", "timestamp": at + 0.3,
                                                   "text": answer, "data": {}, "metadata": {}})
        self._event(sender, "action", at + 0.4, action="action_listen", data={
            "event": "action", "timestamp": at + 0.4, "name": "action_listen"})
        self.history.messages += 1
        return at + self.rng.uniform(20, 90)

    def _event(self, sender: str, kind: str, at: float, intent: Optional[str] = None,
               action: Optional[str] = None, data: Optional[Dict[str, Any]] = None) -> None:
        self.history.events.append({"sender_id": sender, "type_name": kind, "timestamp": at,
                                    "intent_name": intent, "action_name": action,
                                    "data": json.dumps(data, ensure_ascii=False)})

    def review(self, sender: str, at: dt.datetime, text: str, reason: str, guess: str,
               confidence: float, channel: str) -> None:
        self.shop.add(ReviewMessage(text=text, reason=reason, guess=guess, confidence=confidence,
                                    channel=channel, conversation_ref=analytics_ref(self.secret, sender),
                                    created_at=at))
        self.history.review += 1

    def satisfaction(self, sender: str, at: dt.datetime, channel: str, kind: str, intent: str,
                     yes: float) -> None:
        """The question asked; about half answer it, `yes` of them with a thumb up."""
        answered = self.rng.random() < 0.5
        self.shop.add(SatisfactionAnswer(
            kind=kind, intent=intent, channel=channel, asked_at=at,
            conversation_ref=analytics_ref(self.secret, sender),
            score=(1 if self.rng.random() < yes else 0) if answered else None,
            answered_at=at + dt.timedelta(seconds=20) if answered else None))
        self.history.satisfaction += 1

    def demand(self, sender: str, at: dt.datetime, channel: str, **what: Any) -> None:
        self.shop.add(DemandSignal(channel=channel, conversation_ref=analytics_ref(self.secret, sender),
                                   created_at=at, **what))
        self.history.demand += 1


def seed_history(shop_engine: Engine, tracker_engine: Engine, seed: int, today: dt.date,
                 secret: str, timezone: str = "Europe/Paris", days: int = DAYS) -> History:
    """Write `days` days of past conversations (before `today`); once: a tracker store
    that already holds history is left alone."""
    zone = ZoneInfo(timezone)
    tracker_metadata.create_all(tracker_engine, checkfirst=True)
    with tracker_engine.connect() as connection:
        if connection.execute(select(EVENTS.c.id).where(
                EVENTS.c.sender_id.like(f"{SENDER_PREFIX}%")).limit(1)).first():
            return History()
    rng = random.Random(seed * 7919 + today.toordinal())
    with Session(shop_engine, future=True) as shop, shop.begin():
        stores = shop.execute(select(Store.code, Store.id, Store.city).where(Store.kind == "store")
                              .order_by(Store.code)).all()
        online = shop.execute(select(Store.id).where(Store.kind == "online")).scalar()
        items = shop.execute(select(Product.sku, Product.name, Variant.sku, Variant.id, Variant.size)
                             .join(Variant, Variant.product_id == Product.id)
                             .where(Product.category.in_(("chaussures de running", "machines à café",
                                                          "beauté et soins")))
                             .order_by(Variant.sku)).all()
        writer = _Writer(rng, shop, secret)
        number = 0
        for back in range(days, 0, -1):
            day = today - dt.timedelta(days=back)
            count = rng.randint(12, 30) + (8 if day.weekday() == 5 else 0)
            writer.history.conversations[day.isoformat()] = count
            for _ in range(count):
                number += 1
                sender = f"{SENDER_PREFIX}{number}"
                channel = "telegram" if rng.random() < 0.35 else "web"
                local = dt.datetime.combine(day, dt.time(rng.randint(9, 20), rng.randint(0, 59)), zone)
                _conversation(writer, shop, sender, channel, local, stores, online, items)
        shop.flush()
    history = writer.history
    with tracker_engine.begin() as connection:
        connection.execute(EVENTS.insert(), history.events)
    return history


def _conversation(w: _Writer, shop: Session, sender: str, channel: str, local: dt.datetime,
                  stores, online: int, items) -> None:
    rng = w.rng
    at = local.timestamp()
    utc = local.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if rng.random() < 0.4:
        at = w.turn(sender, at, rng.choice(("bonjour", "Bonjour !", "slt")), "greet", 0.98, "utter_greet",
                    "Bonjour, je suis Comptoir…")
    kind = rng.choices(("stock", "hours", "misunderstood", "out_of_scope", "not_carried", "handover"),
                       (40, 20, 12, 10, 8, 10))[0]
    if kind == "stock":
        # A few items and stores get most of the questions, as in a real shop.
        product_sku, name, variant_sku, variant_id, size = items[int(len(items) * rng.random() ** 4)]
        code, store_id, city = stores[int(len(stores) * rng.random() ** 2)]
        at = w.turn(sender, at, f"vous avez {name.lower()} en {size or 'taille unique'} à {city} ?",
                    "check_stock", round(rng.uniform(0.7, 0.99), 2), "action_check_stock", "…")
        if rng.random() < 0.35:
            w.demand(sender, utc, channel, kind="not_available", product_sku=product_sku,
                     variant_sku=variant_sku, store_code=code)
            if rng.random() < 0.4:
                at = w.turn(sender, at, "prévenez-moi quand il revient", "notify_back_in_stock", 0.95,
                            "action_notify_back_in_stock", "…")
                identity = ChatIdentity(channel=channel, external_id=sender, created_at=utc,
                                        last_seen_at=utc)
                shop.add(identity)
                shop.flush()
                shop.add(StockAlert(variant_id=variant_id, identity_id=identity.id, store_id=store_id,
                                    channel=channel, created_at=utc, sent_at=utc + dt.timedelta(days=2)))
        elif rng.random() < 0.3:
            at = w.turn(sender, at, "mettez-le moi de côté svp", "hold_item", 0.96, "action_hold_item", "…")
            shop.add(Reservation(code=f"H{rng.getrandbits(32):08X}", variant_id=variant_id,
                                 store_id=store_id, quantity=1, created_at=utc,
                                 expires_at=utc + dt.timedelta(hours=48),
                                 status=rng.choices(("collected", "expired", "cancelled"), (6, 3, 1))[0]))
    elif kind == "hours":
        _code, _id, city = rng.choice(stores)
        at = w.turn(sender, at, f"horaires du magasin de {city.lower()}", "ask_store_info", 0.97,
                    "action_store_hours", "…")
    elif kind == "misunderstood":
        text = rng.choice(MISUNDERSTOOD)
        at = w.turn(sender, at, text, "nlu_fallback", 0.4, "action_fallback", "Vous voulez dire… ?",
                    (("check_stock", 0.31), ("ask_store_info", 0.12)))
        w.review(sender, utc, text, "clarify", "nlu_fallback", 0.4, channel)
        at = w.turn(sender, at, "/check_stock", "check_stock", 1.0, "action_check_stock", "…")
    elif kind == "out_of_scope":
        text = rng.choice(OUT_OF_SCOPE)
        at = w.turn(sender, at, text, "out_of_scope", 0.88, "action_fallback", "…")
        w.review(sender, utc, text, "out_of_scope", "out_of_scope", 0.88, channel)
    elif kind == "not_carried":
        asked = rng.choice(NOT_CARRIED)
        text = f"vous avez {asked} ?"
        at = w.turn(sender, at, text, "check_stock", 0.9, "action_check_stock", "Nous ne vendons pas…")
        w.demand(sender, utc, channel, kind="not_carried", asked=asked)
        w.review(sender, utc, text, "not_carried", "check_stock", 0.9, channel)
    else:
        intent, text, reason = rng.choice(HANDOVERS)
        at = w.turn(sender, at, text, intent, 0.95, "action_handover", "Je vous passe un conseiller…")
        closed = utc + dt.timedelta(minutes=rng.randint(5, 40))
        shop.add(HandoverTicket(channel=channel, sender_id=sender, status="closed", reason=reason,
                                priority=1 if intent == "complain" else 2, created_at=utc,
                                closed_at=closed))
        w.history.handovers += 1
        w.satisfaction(sender, closed, channel, "handover", "request_human", 0.65)
        return
    if rng.random() < 0.6:
        w.turn(sender, at, rng.choice(("merci", "merci beaucoup, bonne journée", "super merci")), "thank",
               0.97, "action_thank", "Avec plaisir !")
        if kind in ("stock", "hours", "misunderstood"):  # a request served: the question
            w.satisfaction(sender, utc + dt.timedelta(minutes=3), channel, "bot",
                           "ask_store_info" if kind == "hours" else "check_stock", 0.82)


def forget_history(tracker_engine: Engine) -> None:
    """`seed --reset`: the history's conversations leave the tracker store too."""
    with tracker_engine.begin() as connection:
        if "events" in inspect(connection).get_table_names():
            connection.execute(delete(EVENTS).where(EVENTS.c.sender_id.like(f"{SENDER_PREFIX}%")))
