"""Satisfaction: asked once after a request the bot served (thanks, goodbye), never
after nothing served or a person, kept when tapped, and never sent to Rasa."""
import datetime as dt

from rasa_sdk import Tracker
from sqlalchemy import select

from actions.satisfaction import ActionGoodbye, ActionThank
from bot.core.chats import identity_for
from bot.core.models import SatisfactionAnswer, utcnow
from bot.core.settings import load_settings
from bot.customers.consent import set_consent
from bot.review import satisfaction
from bot.web.app import init_app
from tests.harness import free_port, run_action


def user(intent, text="…"):
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


def action(name):
    return {"event": "action", "name": name}


SERVED = [user("greet"), action("utter_greet"), user("ask_store_info"), action("action_store_hours"),
          action("action_listen"), user("thank")]


def tracker(events, sender="web-csat-1", intent="thank"):
    return Tracker.from_dict({"sender_id": sender, "slots": {}, "events": events,
                              "latest_message": {"text": "merci", "intent": {"name": intent},
                                                 "entities": [], "metadata": {"comptoir_channel": "web"}}})


def test_the_request_served_is_the_one_before_thanks():
    assert satisfaction.served_intent(SERVED) == "ask_store_info"
    assert satisfaction.served_intent([user("greet"), action("utter_greet"), user("thank")]) is None
    handed = SERVED[:-1] + [user("request_human"), action("action_handover"), user("thank")]
    assert satisfaction.served_intent(handed) is None  # the agent's close asks instead
    missed = SERVED[:-1] + [user("nlu_fallback"), action("action_fallback"), user("thank")]
    assert satisfaction.served_intent(missed) is None
    # As the action server sees it (the last two messages): the size the bot asked for.
    answered = [user("inform"), action("action_resume"), action("action_listen"), user("thank")]
    assert satisfaction.served_intent(answered) == "inform"
    stopped = [user("stop"), action("action_stop"), action("action_listen"), user("thank")]
    assert satisfaction.served_intent(stopped) is None  # no survey after a STOP


async def test_thanks_after_a_served_request_asks_once(shop_database, shop):
    messages, _ = await run_action(ActionThank(), tracker(SERVED))
    assert [m.get("response") or m.get("text") for m in messages] == [
        "utter_you_are_welcome", satisfaction.QUESTION]
    assert [b["payload"] for b in messages[1]["buttons"]] == [satisfaction.YES, satisfaction.NO]
    again, _ = await run_action(ActionGoodbye(), tracker(SERVED + [user("goodbye")], intent="goodbye"))
    assert [m.get("response") for m in again] == ["utter_goodbye"]  # once a day at most
    nothing, _ = await run_action(ActionThank(), tracker(SERVED[:2] + [user("thank")], sender="web-csat-2"))
    assert [m.get("response") for m in nothing] == ["utter_you_are_welcome"]
    with shop() as session:
        rows = session.execute(select(SatisfactionAnswer)).scalars().all()
    assert [(r.kind, r.intent, r.channel, r.score) for r in rows] == [("bot", "ask_store_info", "web", None)]
    assert "web-csat-1" not in rows[0].conversation_ref


async def test_no_question_for_a_chat_that_objected_to_analytics(shop_database, shop):
    with shop.begin() as session:
        chat = identity_for(session, "web", "web-csat-3")
        set_consent(session, "analytics", "web", False, identity_id=chat.id, source_channel="web",
                    wording_version="test")
    messages, _ = await run_action(ActionThank(), tracker(SERVED, sender="web-csat-3"))
    assert [m.get("response") for m in messages] == ["utter_you_are_welcome"]


async def test_a_tap_is_kept_by_the_gateway_and_never_sent_to_rasa(aiohttp_client, tmp_path, shop_url, shop):
    # Rasa is not running here: a message that reached it would get the "unavailable" apology.
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": shop_url,
                              "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port())})
    with shop.begin() as session:
        assert satisfaction.ask(session, settings.identity_secret, "web-csat-4", "web", "bot",
                                "check_stock", utcnow())
    client = await aiohttp_client(init_app(settings))

    async def say(text):
        response = await client.post("/webhooks/rest/webhook", json={"sender": "web-csat-4", "message": text})
        return [r["text"] for r in await response.json()]

    assert await say(satisfaction.NO) == [satisfaction.THANKS[0]]
    assert await say(satisfaction.YES) == ["Votre réponse est déjà notée, merci."]  # the first tap counts
    with shop() as session:
        row = session.execute(select(SatisfactionAnswer)).scalar_one()
    assert (row.score, row.intent) == (0, "check_stock")
    assert (await say("bonjour"))[0].startswith("Désolé, notre assistant est momentanément indisponible")


def test_a_question_that_could_not_be_shown_is_withdrawn(shop):
    now = utcnow()
    with shop.begin() as session:
        assert satisfaction.ask(session, "s", "web-csat-5", "web", "handover", "request_human", now)
        satisfaction.withdraw(session, "s", "web-csat-5", now)
        assert satisfaction.ask(session, "s", "web-csat-5", "web", "handover", "request_human",
                                now + dt.timedelta(seconds=1))  # it can be asked again
        assert not satisfaction.answer(session, "s", "web-csat-6", 1, now)  # nothing asked there
