"""Satisfaction (CSAT): one tap, asked at most once a day in a conversation, and only in
it (never pushed elsewhere): after a conversation the bot solved (thanks or goodbye
after a request it served) and after an agent closed a handover.

The buttons' payloads never reach Rasa: the gateway records the answer
(`bot.web.conversation`) with the conversation's intent and channel only.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterable, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.core.models import SatisfactionAnswer
from bot.core.replies import button
from bot.review.capture import analytics_ref, objected

QUESTION = "Une dernière chose : cet échange vous a-t-il été utile ?"
BUTTONS = [button("👍 Oui", "satisfaction_oui"), button("👎 Pas vraiment", "satisfaction_non")]
YES, NO = (b["payload"] for b in BUTTONS)
THANKS = {1: "Merci pour votre réponse, elle nous aide à nous améliorer.",
          0: "Merci de nous l'avoir dit. Si vous le souhaitez, écrivez « un conseiller » : "
             "quelqu'un reprendra votre demande."}
ONCE_EVERY = dt.timedelta(hours=24)

# The actions that answer a request (action_resume: the answer to the bot's question,
# a size or a city; action_privacy_code: what a good code opens): after one of them,
# thanks or goodbye end a conversation the bot solved. The action server sees the
# events of the last two messages only, so "a request served" means just before.
SERVING_ACTIONS = frozenset((
    "action_resume", "action_privacy_code", "action_birthday_date",
    "action_store_hours", "action_check_stock", "action_nearest_store", "action_hold_item",
    "action_cancel_hold", "action_notify_back_in_stock", "action_parts", "action_my_data",
    "action_export_data", "action_correct_data", "action_show_consents", "action_change_consent",
    "action_why_data", "action_birthday_offer", "action_loyalty_card", "action_activate_card",
    "action_loyalty_programme", "action_promo"))


def served_intent(events: Iterable[Dict[str, Any]]) -> Optional[str]:
    """The intent of the latest request the bot served in these tracker events, or None
    (nothing served, or the conversation went to a person or a miss since)."""
    intent, served = None, None
    for event in events:
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        elif event.get("event") == "action":
            name = event.get("name")
            if name in SERVING_ACTIONS:
                served = intent
            elif name in ("action_handover", "action_fallback"):
                served = None
    return served


def score_of(message: str) -> Optional[int]:
    """1 or 0 for a satisfaction button's payload; None for anything else."""
    return {YES: 1, NO: 0}.get(message.strip())


def ask(session: Session, secret: str, sender: str, channel: str, kind: str,
        intent: Optional[str], now: dt.datetime) -> bool:
    """Record that the question is asked now; False (ask nothing) if it was asked in this
    conversation within a day, or the customer objected to analytics."""
    ref = analytics_ref(secret, sender)
    recent = session.execute(select(SatisfactionAnswer.id).where(
        SatisfactionAnswer.conversation_ref == ref,
        SatisfactionAnswer.asked_at > now - ONCE_EVERY)).first()
    if recent is not None or objected(session, channel, sender):
        return False
    session.add(SatisfactionAnswer(kind=kind, intent=intent, channel=channel,
                                   conversation_ref=ref, asked_at=now))
    return True


def withdraw(session: Session, secret: str, sender: str, asked_at: dt.datetime) -> None:
    """The question could not be shown after all: as if never asked."""
    session.execute(delete(SatisfactionAnswer).where(
        SatisfactionAnswer.conversation_ref == analytics_ref(secret, sender),
        SatisfactionAnswer.asked_at == asked_at, SatisfactionAnswer.score.is_(None)))


def answer(session: Session, secret: str, sender: str, score: int, now: dt.datetime) -> bool:
    """The answer to the question last asked in this conversation (the first tap counts);
    False if none is waiting."""
    row = session.execute(select(SatisfactionAnswer).where(
        SatisfactionAnswer.conversation_ref == analytics_ref(secret, sender),
        SatisfactionAnswer.score.is_(None), SatisfactionAnswer.asked_at > now - ONCE_EVERY)
        .order_by(SatisfactionAnswer.asked_at.desc())).scalars().first()
    if row is None:
        return False
    row.score, row.answered_at = score, now
    return True
