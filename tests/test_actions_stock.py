"""Stock actions as Rasa calls them: tracker in, messages and slot events out."""
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import common
from actions.resume import ActionResume
from actions.stock import ActionCheckStock, ActionHoldItem
from tests.conftest import free_port


def tracker(text, entities=(), slots=None, metadata=None, sender="web-session-1"):
    return Tracker.from_dict({
        "sender_id": sender, "slots": slots or {},
        "latest_message": {"text": text, "intent": {"name": "check_stock"},
                           "entities": [{"entity": k, "value": v} for k, v in entities],
                           "metadata": metadata or {"comptoir_channel": "web"}}})




async def run(action, track):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, track, {})
    return dispatcher.messages, events


async def test_check_stock_answers_and_keeps_the_context_in_slots(shop_database):
    messages, events = await run(ActionCheckStock(), tracker(
        "vous avez les pegasus 41 homme en 42 noir a lyon part dieu ?",
        [("product", "pegasus 41 homme"), ("size", "42"), ("colour", "noir"), ("city", "lyon part dieu")]))
    assert messages[0]["text"].startswith("Nike Pegasus 41 homme (42, noir) — 140 €")
    assert messages[0]["buttons"][0]["payload"] == "/hold_item"
    slots = {e["name"]: e["value"] for e in events}
    assert slots["stock_store"] == "LYS-PDI" and slots["stock_size"] == "42"
    assert slots["stock_variant"].startswith(slots["stock_product"] + "-")


async def test_resume_uses_the_pending_question(shop_database):
    first, events = await run(ActionCheckStock(), tracker("dispo les vomero 17 homme ?",
                                                          [("product", "vomero 17 homme")]))
    slots = {e["name"]: e["value"] for e in events}
    assert slots["pending"] == "size"
    messages, _ = await run(ActionResume(), tracker("en 44", [("size", "44")], slots=slots))
    assert "quelle couleur" in messages[0]["text"]


async def test_hold_from_the_action_reserves_for_this_chat_only(shop_database):
    _, events = await run(ActionCheckStock(), tracker("pegasus 41 homme 42 noir lille"))
    slots = {e["name"]: e["value"] for e in events}
    messages, _ = await run(ActionHoldItem(), tracker("gardez le moi", slots=slots))
    assert messages[0]["text"].startswith("C'est fait : 1 × Nike Pegasus 41 homme (42, noir)")
    again, _ = await run(ActionHoldItem(), tracker("gardez le moi", slots=slots, sender="other"))
    assert again[0]["text"].startswith("Désolé")


async def test_database_down_gives_the_polite_message(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/shop")
    common.reset_caches()
    try:
        messages, events = await run(ActionCheckStock(), tracker("pegasus 41"))
    finally:
        common.reset_caches()
    assert [m["response"] for m in messages] == ["utter_service_unavailable"]
    assert events == []


async def test_a_forged_channel_in_metadata_falls_back_to_web(shop_database):
    ask = common.stock_ask(tracker("x", metadata={"comptoir_channel": "email"}))
    assert ask.channel == "web"
