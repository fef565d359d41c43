"""What the retailer gets to review: misunderstood turns kept masked, demand signals,
nothing for a conversation that objected, erasure and the retention purge."""
import datetime as dt

import pytest
from rasa_sdk import Tracker
from sqlalchemy import select

from actions.handover import ActionFallback
from actions.stock import ActionCheckStock
from bot.core.chats import identity_for
from bot.core.models import DemandSignal, ReviewMessage, utcnow
from bot.customers.consent import set_consent
from bot.review import analytics, capture
from tests.harness import run_action, stock_tracker


@pytest.mark.parametrize("said, gone, shown", [
    ("écrivez-moi à jeanne.dupont@gmail.com svp", "jeanne.dupont", "[e-mail]"),
    ("mon numéro : 06 12 34 56 78", "06 12", "[téléphone]"),
    ("rappelez-moi au +33 6 12 34 56 78", "+33", "[téléphone]"),
    ("ma carte fidélité 8000 0000 0012 ne marche pas", "8000", "[carte]"),
    ("j'ai payé avec la 4970 1012 3456 7890", "4970", "[carte]"),
    ("le code reçu est 483920", "483920", "[code]"),
    ("mon code de retrait : K7PQ3M", "K7PQ3M", "[code]"),
    ("le bon ANNIV-K7PQ-3MZX ne passe pas", "ANNIV-K7PQ", "[code]"),
    ("livrez au 12 rue de la République, 69002 Lyon merci", "République", "[adresse]"),
])
def test_personal_data_is_masked_before_review_keeps_it(said, gone, shown):
    kept = capture.masked(said)
    assert gone not in kept and shown in kept
    if "69002" in said:
        assert "69002" not in kept and "Lyon" not in kept and kept.endswith("merci")


def tracker(intent, text, confidence=0.9, events=(), sender="web-review-1", slots=None,
            ranking=()):
    return Tracker.from_dict({
        "sender_id": sender, "slots": slots or {}, "events": list(events),
        "latest_message": {"text": text, "intent": {"name": intent, "confidence": confidence},
                           "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
                           "entities": [], "metadata": {"comptoir_channel": "telegram"}}})


def user(intent):
    return {"event": "user", "text": "…", "parse_data": {"intent": {"name": intent}}}


def kept(shop):
    with shop() as session:
        return session.execute(select(ReviewMessage).order_by(ReviewMessage.id)).scalars().all()


async def test_a_misunderstood_message_is_kept_masked_with_the_guess_and_no_identity(shop_database, shop):
    text = "Bonjour, ma fille jeanne.dupont@gmail.com cherche les pegasus, 06 12 34 56 78"
    await run_action(ActionFallback(), tracker(
        "nlu_fallback", text, 0.31, events=[user("greet"), user("nlu_fallback")],
        slots={"stock_store": "LYS-PDI"}, ranking=[("nlu_fallback", 0.31), ("check_stock", 0.3)]))
    [row] = kept(shop)
    assert row.text == "Bonjour, ma fille [e-mail] cherche les pegasus, [téléphone]"
    assert (row.reason, row.guess, row.confidence, row.channel, row.store_code, row.status) == (
        "clarify", "nlu_fallback", 0.31, "telegram", "LYS-PDI", "new")
    assert "web-review-1" not in row.conversation_ref


async def test_out_of_scope_a_plain_miss_and_a_person_offered_are_each_kept(shop_database, shop):
    await run_action(ActionFallback(), tracker("out_of_scope", "vous livrez en Corse ?", 0.8,
                                               events=[user("greet"), user("out_of_scope")]))
    await run_action(ActionFallback(), tracker("nlu_fallback", "kjhkjh", 0.2,
                                               events=[user("greet"), user("nlu_fallback")]))
    await run_action(ActionFallback(), tracker("nlu_fallback", "toujours pas", 0.2,
                                               events=[user("nlu_fallback"), user("nlu_fallback")]))
    # A button's payload is no shopper's words: the second miss offers a person, nothing kept.
    await run_action(ActionFallback(), tracker("nlu_fallback", "/nlu_fallback", 1.0,
                                               events=[user("nlu_fallback"), user("nlu_fallback")]))
    assert [(r.reason, r.text) for r in kept(shop)] == [
        ("out_of_scope", "vous livrez en Corse ?"), ("fallback", "kjhkjh"),
        ("handover", "toujours pas")]


async def test_an_unsure_answer_and_a_product_we_do_not_carry_are_kept(shop_database, shop):
    unsure = stock_tracker("pegasus 41 homme 42 noir lille", sender="web-review-2")
    unsure.latest_message["intent"]["confidence"] = 0.52
    await run_action(ActionCheckStock(), unsure)
    sure = stock_tracker("pegasus 41 homme 42 noir lille", sender="web-review-3")
    sure.latest_message["intent"]["confidence"] = 0.97
    await run_action(ActionCheckStock(), sure)
    messages, _ = await run_action(ActionCheckStock(), stock_tracker(
        "vous avez le parfum Chloé Nomade ?", [("product", "parfum Chloé Nomade")]))
    assert messages[0]["text"].startswith("Nous ne vendons pas « parfum Chloé Nomade »")
    assert [(r.reason, r.text) for r in kept(shop)] == [
        ("low_confidence", "pegasus 41 homme 42 noir lille"),
        ("not_carried", "vous avez le parfum Chloé Nomade ?")]
    with shop() as session:
        signals = session.execute(select(DemandSignal)).scalars().all()
    assert [(s.kind, s.asked) for s in signals] == [("not_carried", "parfum Chloé Nomade")]


async def test_a_store_without_the_item_is_a_demand_signal(shop_database, shop):
    # 42 bleu: sold out at Lyon Part-Dieu in the demo shop; 42 noir: 4 there.
    await run_action(ActionCheckStock(), stock_tracker(
        "pegasus 41 homme 42 bleu lyon part dieu",
        [("product", "pegasus 41 homme"), ("size", "42"), ("colour", "bleu"), ("city", "lyon part dieu")]))
    await run_action(ActionCheckStock(), stock_tracker(
        "pegasus 41 homme 42 noir lyon part dieu",
        [("product", "pegasus 41 homme"), ("size", "42"), ("colour", "noir"), ("city", "lyon part dieu")]))
    with shop() as session:
        signals = session.execute(select(DemandSignal)).scalars().all()
    assert [(s.kind, s.store_code, s.variant_sku.startswith(s.product_sku)) for s in signals] == [
        ("not_available", "LYS-PDI", True)]
    assert kept(shop) == []  # understood: nothing to review


async def test_nothing_is_kept_for_a_chat_that_objected_to_analytics(shop_database, shop):
    with shop.begin() as session:
        chat = identity_for(session, "telegram", "web-review-1")
        set_consent(session, "analytics", "telegram", False, identity_id=chat.id,
                    source_channel="telegram", wording_version="test")
    await run_action(ActionFallback(), tracker("out_of_scope", "vous livrez en Corse ?", 0.8,
                                               events=[user("greet"), user("out_of_scope")]))
    await run_action(ActionFallback(), tracker("out_of_scope", "et à Ajaccio ?", 0.8,
                                               sender="web-review-9",
                                               events=[user("greet"), user("out_of_scope")]))
    assert [r.text for r in kept(shop)] == ["et à Ajaccio ?"]


def test_erasure_forgets_the_conversations_and_the_purge_keeps_labels(shop):
    now = utcnow()
    turn = capture.Turn("kjhkjh", "web", "web-gone")
    other = capture.Turn("qsdqsd", "web", "web-stays")
    with shop.begin() as session:
        capture.note_turn(session, turn, "fallback", [], "secret", now)
        capture.note_turn(session, other, "fallback", [], "secret", now - dt.timedelta(days=91))
        capture.note_turn(session, other, "fallback", [], "secret", now - dt.timedelta(days=89))
        labelled = capture.note_turn(session, other, "fallback", [], "secret", now - dt.timedelta(days=200))
        assert labelled == 1
        session.execute(select(ReviewMessage)).scalars().all()[-1].status = "labelled"
    with shop.begin() as session:
        assert capture.forget(session, ["web-gone"], "secret") == 1
        assert capture.purge(session, now, 90) == 1
    assert [(r.text, r.status, (now - r.created_at).days) for r in kept(shop)] == [
        ("qsdqsd", "new", 89), ("qsdqsd", "labelled", 200)]


async def test_what_was_asked_and_not_had_is_in_the_dashboards_demand_signals(shop_database, shop):
    await run_action(ActionCheckStock(), stock_tracker(
        "vous avez le parfum Chloé Nomade ?", [("product", "parfum Chloé Nomade")]))
    await run_action(ActionCheckStock(), stock_tracker(
        "pegasus 41 homme 42 bleu lyon part dieu",
        [("product", "pegasus 41 homme"), ("size", "42"), ("colour", "bleu"), ("city", "lyon part dieu")]))
    today = dt.datetime.now(dt.timezone.utc).date()
    with shop() as session:
        board = analytics.dashboard(session, None, today - dt.timedelta(days=1), today + dt.timedelta(days=1),
                                    "Europe/Paris")
    assert board.not_carried == [("parfum Chloé Nomade", 1)]
    assert board.not_available == [("Nike Pegasus 41 homme", "42 bleu", "Lyon Part-Dieu", 1)]


def test_one_chat_flooding_nonsense_does_not_bury_the_inbox(shop):
    now = utcnow()
    with shop.begin() as session:
        for number in range(capture.MAX_KEPT_A_DAY + 5):
            capture.note_turn(session, capture.Turn(f"qsdf {number}", "web", "web-flood"), "fallback",
                              [], "secret", now)
        capture.note_turn(session, capture.Turn("kjhkjh", "web", "web-calm"), "fallback", [], "secret", now)
    texts = [r.text for r in kept(shop)]
    assert len(texts) == capture.MAX_KEPT_A_DAY + 1 and texts[-1] == "kjhkjh"
