"""Handover actions as Rasa calls them: pause in hours, tell when off hours, two misses."""
import datetime as dt
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import common
from actions.handover import ActionFallback, ActionHandover, ActionHandoverContact
from bot.models import HandoverTicket
from bot.text import WEEKDAYS_FR

DAY_CODES = ("lun", "mar", "mer", "jeu", "ven", "sam", "dim")


def tracker(intent, text="", sender="web-abc", entities=(), events=()):
    return Tracker.from_dict({
        "sender_id": sender, "slots": {}, "events": list(events),
        "latest_message": {"text": text, "intent": {"name": intent},
                           "entities": [{"entity": k, "value": v} for k, v in entities],
                           "metadata": {"comptoir_channel": "web"}}})


async def run(action, track):
    dispatcher = CollectingDispatcher()
    return dispatcher.messages, await action.run(dispatcher, track, {})


async def test_in_hours_the_bot_pauses_and_gives_the_queue_position(shop_database, monkeypatch, shop):
    monkeypatch.setenv("SUPPORT_HOURS", "lun-dim 00:00-00:00")
    common.reset_caches()
    messages, events = await run(ActionHandover(), tracker("request_human", "un conseiller"))
    assert messages[0]["text"].startswith("Je vous passe un conseiller : vous êtes n°1 dans la file")
    assert events == [ConversationPaused()]
    upset, _ = await run(ActionHandover(), tracker("complain", "c'est nul", sender="web-upset"))
    assert upset[0]["text"].startswith("Je suis désolé pour ce désagrément.")
    with shop() as session:
        tickets = session.execute(select(HandoverTicket).order_by(HandoverTicket.id)).scalars().all()
    assert [(t.reason, t.priority, t.off_hours) for t in tickets] == [
        ("demande du client", 2, False), ("client mécontent", 1, False)]


async def test_off_hours_says_when_and_records_how_to_answer(shop_database, monkeypatch, shop):
    tomorrow = (dt.datetime.now(ZoneInfo("Europe/Paris")) + dt.timedelta(days=1)).weekday()
    code = DAY_CODES[tomorrow]
    monkeypatch.setenv("SUPPORT_HOURS", f"{code}-{code} 09:00-10:00")
    common.reset_caches()
    messages, events = await run(ActionHandover(), tracker("request_human", "un humain"))
    assert "demain à partir de 9h" in messages[0]["text"]
    assert f"du {WEEKDAYS_FR[tomorrow]} au {WEEKDAYS_FR[tomorrow]}" in messages[0]["text"]
    assert [b["title"] for b in messages[0]["buttons"]] == ["Être rappelé", "Réponse écrite"]
    assert events == []  # the bot keeps answering until someone is there
    done, _ = await run(ActionHandoverContact(), tracker("handover_contact", entities=[("contact", "rappel")]))
    assert done[0]["text"].startswith("C'est noté : un conseiller vous rappellera")
    with shop() as session:
        ticket = session.execute(select(HandoverTicket)).scalar_one()
    assert (ticket.off_hours, ticket.contact_preference) == (True, "rappel")


def user(intent):
    return {"event": "user", "text": "…", "parse_data": {"intent": {"name": intent}}}


async def test_a_person_is_offered_after_two_misses_in_a_row():
    once, _ = await run(ActionFallback(), tracker("nlu_fallback", events=[user("greet"), user("nlu_fallback")]))
    assert once[0]["response"] == "utter_default"
    twice, _ = await run(ActionFallback(), tracker("out_of_scope", events=[user("nlu_fallback"),
                                                                          user("out_of_scope")]))
    assert twice[0]["buttons"][0] == {"title": "Oui, un conseiller", "payload": "/request_human"}
    off_topic, _ = await run(ActionFallback(), tracker("out_of_scope", events=[user("greet"),
                                                                              user("out_of_scope")]))
    assert off_topic[0]["response"] == "utter_out_of_scope"
