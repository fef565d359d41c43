"""Stock actions as Rasa calls them: tracker in, messages and slot events out."""
from rasa_sdk import Tracker

from actions import common
from actions.resume import ActionResume
from actions.stock import ActionCheckStock, ActionHoldItem
from tests.harness import free_port, run_action, stock_tracker


async def test_check_stock_answers_and_keeps_the_context_in_slots(shop_database):
    messages, events = await run_action(ActionCheckStock(), stock_tracker(
        "vous avez les pegasus 41 homme en 42 noir a lyon part dieu ?",
        [("product", "pegasus 41 homme"), ("size", "42"), ("colour", "noir"), ("city", "lyon part dieu")]))
    assert messages[0]["text"].startswith("Nike Pegasus 41 homme (42, noir) — 140 €")
    assert messages[0]["buttons"][0]["payload"] == "/hold_item"
    slots = {e["name"]: e["value"] for e in events}
    assert slots["stock_store"] == "LYS-PDI" and slots["stock_size"] == "42"
    assert slots["stock_variant"].startswith(slots["stock_product"] + "-")


async def test_resume_uses_the_pending_question(shop_database):
    first, events = await run_action(ActionCheckStock(), stock_tracker("dispo les vomero 17 homme ?",
                                                          [("product", "vomero 17 homme")]))
    slots = {e["name"]: e["value"] for e in events}
    assert slots["pending"] == "size"
    messages, _ = await run_action(ActionResume(), stock_tracker("en 44", [("size", "44")], slots=slots))
    assert "quelle couleur" in messages[0]["text"]


async def test_hold_from_the_action_reserves_for_this_chat_only(shop_database):
    _, events = await run_action(ActionCheckStock(), stock_tracker("pegasus 41 homme 42 noir lille"))
    slots = {e["name"]: e["value"] for e in events}
    messages, _ = await run_action(ActionHoldItem(), stock_tracker("gardez le moi", slots=slots))
    assert messages[0]["text"].startswith("C'est fait : 1 × Nike Pegasus 41 homme (42, noir)")
    again, _ = await run_action(ActionHoldItem(), stock_tracker("gardez le moi", slots=slots, sender="other"))
    assert again[0]["text"].startswith("Désolé")


async def test_database_down_gives_the_polite_message(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/shop")
    common.reset_caches()
    try:
        messages, events = await run_action(ActionCheckStock(), stock_tracker("pegasus 41"))
    finally:
        common.reset_caches()
    assert [m["response"] for m in messages] == ["utter_service_unavailable"]
    assert events == []


async def test_a_forged_channel_in_metadata_falls_back_to_web(shop_database):
    ask = common.stock_ask(stock_tracker("x", metadata={"comptoir_channel": "email"}))
    assert ask.channel == "web"


async def test_a_clarified_message_is_answered_from_its_own_words(shop_database):
    """The shopper chose "Savoir si un article est en stock" after a clarifying question:
    the button's payload names no product, the message it clarifies does."""
    asked = "bonjour, je me demandais, les pegasus 41 homme en 42 noir à lille c'est possible ?"
    clarified = Tracker.from_dict({
        "sender_id": "web-session-2", "slots": {},
        "events": [{"event": "user", "text": asked, "parse_data": {"intent": {"name": "nlu_fallback"}}},
                   {"event": "user", "text": "/check_stock", "parse_data": {"intent": {"name": "check_stock"}}}],
        "latest_message": {"text": "/check_stock", "intent": {"name": "check_stock"}, "entities": [],
                           "metadata": {"comptoir_channel": "web"}}})
    messages, _ = await run_action(ActionCheckStock(), clarified)
    assert messages[0]["text"].startswith("Nike Pegasus 41 homme (42, noir) — 140 €")
    assert "À Lille Centre" in messages[0]["text"]
    # Any other button is only its payload: nothing to look up in its text.
    assert common.shopper_text(stock_tracker("/check_stock")) == ""


async def test_a_product_added_while_running_is_answered_without_retraining(shop_database, shop):
    """The model knows no catalog: a product inserted into the shop database is found
    from the shopper's words as soon as the action server's index notices it."""
    import asyncio
    import time

    from bot.core.models import Product, Stock, Store, Variant

    first, _ = await run_action(ActionCheckStock(), stock_tracker("vous avez les zorblax trail 3 ?", [("product", "zorblax trail 3")]))
    assert first[0]["text"].startswith("Nous ne vendons pas « zorblax trail 3 »")
    with shop.begin() as session:
        product = Product(sku="ZX-TRAIL-3", name="Zorblax Trail 3", brand="Zorblax", department="running",
                          category="chaussures de running", price_cents=9900)
        session.add(product)
        session.flush()
        variant = Variant(product_id=product.id, sku="ZX-TRAIL-3-01", ean="3999999999994")
        session.add(variant)
        session.flush()
        lille = session.query(Store).filter_by(code="LIL-CTR").one()
        session.add(Stock(variant_id=variant.id, store_id=lille.id, quantity=5))
    deadline = time.monotonic() + 10
    while True:
        messages, _ = await run_action(ActionCheckStock(), stock_tracker(
            "vous avez les zorblax trail 3 à lille ?", [("product", "zorblax trail 3"), ("city", "lille")]))
        if messages[0]["text"].startswith("Zorblax Trail 3 — 99 €") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert messages[0]["text"].startswith("Zorblax Trail 3 — 99 €")
    assert "À Lille Centre : en stock" in messages[0]["text"]
