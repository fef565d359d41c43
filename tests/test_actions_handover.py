"""Handover actions as Rasa calls them: pause in hours, tell when off hours, two misses."""
import datetime as dt
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import common
from actions.handover import ActionFallback, ActionHandover, ActionHandoverContact
from bot.core.models import HandoverTicket
from bot.core.text import WEEKDAYS_FR

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


def ranked(*pairs):
    return [{"name": name, "confidence": confidence} for name, confidence in pairs]


async def test_an_unsure_guess_gets_a_clarifying_question_and_the_second_miss_a_person(shop_database):
    unsure = tracker("nlu_fallback", "bonjour je voudrais les pegasus pour ma fille",
                     entities=[("product", "pegasus")], events=[user("greet"), user("nlu_fallback")])
    unsure.latest_message["intent_ranking"] = ranked(("nlu_fallback", 0.55), ("check_stock", 0.41),
                                                     ("greet", 0.33), ("hold_item", 0.12),
                                                     ("birthday_offer", 0.04))
    once, _ = await run(ActionFallback(), unsure)
    assert once[0]["text"] == "Je ne suis pas sûr d'avoir bien compris. Vous voulez dire… ?"
    # Small talk is no choice; the entities ride on each button; "Autre chose" is a miss.
    assert once[0]["buttons"] == [
        {"title": "Savoir si un article est en stock", "payload": '/check_stock{"product":"pegasus"}'},
        {"title": "Mettre un article de côté", "payload": '/hold_item{"product":"pegasus"}'},
        {"title": "Autre chose", "payload": "/nlu_fallback"}]
    twice, _ = await run(ActionFallback(), tracker("out_of_scope", events=[user("nlu_fallback"),
                                                                          user("out_of_scope")]))
    assert twice[0]["buttons"][0] == {"title": "Oui, un conseiller", "payload": "/request_human"}
    other, _ = await run(ActionFallback(), tracker("nlu_fallback", "/nlu_fallback",
                                                   events=[user("nlu_fallback"), user("nlu_fallback")]))
    assert other[0]["text"].startswith("Je ne parviens pas à vous comprendre")


async def test_no_likely_meaning_asks_to_rephrase(shop_database):
    lost = tracker("nlu_fallback", "kjhkjh", events=[user("greet"), user("nlu_fallback")])
    lost.latest_message["intent_ranking"] = ranked(("nlu_fallback", 0.6), ("greet", 0.3), ("check_stock", 0.05))
    messages, _ = await run(ActionFallback(), lost)
    assert messages[0]["text"].startswith("Pardon, je n'ai pas bien compris.")
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/help"]


async def test_order_questions_say_where_to_go_and_offer_a_person(monkeypatch, shop_database):
    monkeypatch.setenv("ORDERS_URL", "https://boutique.example/aide")
    monkeypatch.setenv("ORDERS_CONTACT", "le service client au 01 02 03 04 05")
    common.reset_caches()
    orders, _ = await run(ActionFallback(), tracker(
        "out_of_scope", "Bonjour, mon colis n'est toujours pas arrivé, commande 12345",
        events=[user("greet"), user("out_of_scope")]))
    assert "Je ne m'occupe pas des commandes ici" in orders[0]["text"]
    assert "le service client au 01 02 03 04 05" in orders[0]["text"]
    assert "https://boutique.example/aide" in orders[0]["text"]
    assert orders[0]["buttons"][0] == {"title": "Parler à un conseiller", "payload": "/request_human"}
    weather, _ = await run(ActionFallback(), tracker("out_of_scope", "quel temps fera-t-il demain ?",
                                                     events=[user("greet"), user("out_of_scope")]))
    assert weather[0]["text"].startswith("Je suis désolé, je ne peux pas vous aider sur ce sujet.")
    assert "commandes" not in weather[0]["text"]
