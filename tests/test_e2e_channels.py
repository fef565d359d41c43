"""End to end, the channels: Telegram (buttons, location, pushed alerts, a bad update), a
Rasa socket.io client, the web widget in a real browser, and what a reload replays.
"""
import asyncio
import datetime as dt


import pytest

from bot.core.models import utcnow
from bot.ops.rasa_server import SESSION_WINDOW_TURNS
from tests.harness import (STOCK_TOKEN, TELEGRAM_USER, launch_chromium, next_of, outbox_code,
                           require_chromium, sent_to, web_chat, web_turn)

pytestmark = pytest.mark.slow


def test_telegram_conversation_with_buttons_and_location(stack, telegram):
    user = TELEGRAM_USER
    telegram.push(telegram.user_message(user, "/start"))
    greeting = telegram.wait_for(sent_to(telegram, user))[-1]
    assert greeting["text"].startswith("Bonjour et bienvenue")
    keyboard = greeting["reply_markup"]["inline_keyboard"]
    assert ["Vérifier un stock"] in [[b["text"] for b in row] for row in keyboard]
    hours = next(b for row in keyboard for b in row if b["text"] == "Horaires d'un magasin")

    before = len(telegram.calls)
    telegram.push(telegram.button_tap(user, hours["callback_data"]))
    telegram.wait_for(lambda c: c["method"] == "answerCallbackQuery")
    asked = telegram.wait_for(lambda c: telegram.calls.index(c) >= before
                              and sent_to(telegram, user)(c))[-1]
    assert asked["text"].startswith("Pour quel magasin ?")

    before = len(telegram.calls)
    telegram.push(telegram.user_message(user, "vous avez la tondeuse bosch rotak ?"))
    telegram.wait_for(lambda c: telegram.calls.index(c) >= before and sent_to(telegram, user, "sendPhoto")(c))
    before = len(telegram.calls)
    telegram.push(telegram.user_message(user, location={"latitude": 45.77, "longitude": 4.89}))
    near = telegram.wait_for(lambda c: telegram.calls.index(c) >= before
                             and sent_to(telegram, user)(c))[-1]
    assert "près de votre position" in near["text"]


def test_a_stock_answer_on_telegram_is_a_product_card(stack, telegram):
    """The product's picture, uploaded (Telegram cannot reach a private gateway), with the
    answer as its caption and the usual buttons under it."""
    user = TELEGRAM_USER + 2
    telegram.push(telegram.user_message(user, "nike pegasus 41 homme en 42 noir à lyon part dieu"))
    (card,) = telegram.wait_for(sent_to(telegram, user, "sendPhoto"))
    assert card["photo"]["png"] is True
    assert card["caption"].startswith("Nike Pegasus 41 homme (42, noir) — 140 €")
    assert "À Lyon Part-Dieu : en stock." in card["caption"]
    buttons = [b for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert "Le mettre de côté" in [b["text"] for b in buttons]
    assert not any("url" in b for b in buttons)  # an http:// gateway: no link button
    assert not any(sent_to(telegram, user)(c) for c in telegram.calls)  # no text besides


def test_telegram_survives_a_bad_update_and_receives_pushed_alerts(stack, telegram):
    user = TELEGRAM_USER + 1
    telegram.push({"edited_message": {"message_id": 5, "date": 0, "chat": {"id": user, "type": "private"}}})
    telegram.push(telegram.user_message(user, "hoka speedgoat 6 femme en 40 vert à lille"))
    telegram.wait_for(lambda c: sent_to(telegram, user, "sendPhoto")(c) and "Speedgoat" in c["caption"])
    telegram.push(telegram.user_message(user, "prévenez-moi quand il revient"))
    offer = telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "reply_markup" in c
                              and "Ici" in str(c["reply_markup"]))[-1]
    here = next(b for row in offer["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Ici")
    telegram.push(telegram.button_tap(user, here["callback_data"]))
    telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "je vous préviens ici" in c["text"])
    status, body = stack.post("/api/stock", {"updates": [{"sku": "P000022-05", "store": "LIL-CTR",
                                                          "quantity": 2}]},
                              {"Authorization": f"Bearer {STOCK_TOKEN}"})
    assert (status, body["alerts_queued"]) == (200, 1)
    # Pushed by the gateway without waiting for the customer to write again.
    (alert,) = telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "Bonne nouvelle" in c["text"])
    assert "Hoka Speedgoat 6 femme (40, vert) est de retour en stock à Lille Centre" in alert["text"]


async def test_a_rasa_socketio_client_holds_a_conversation(stack):
    import socketio

    events = asyncio.Queue()
    client = socketio.AsyncClient(reconnection=False, request_timeout=30)
    for name in ("session_confirm", "bot_uttered", "history"):
        client.on(name, lambda data, name=name: events.put_nowait((name, data)))
    # Polling: python-engineio's websocket client needs aiohttp >= 3.10, Rasa pins 3.9.
    await client.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
    await client.emit("session_request", {"session_id": "short"})
    name, session_id = await asyncio.wait_for(events.get(), 10)
    assert name == "session_confirm" and len(session_id) >= 32 and session_id != "short"
    await client.emit("user_uttered", {"message": "bonjour", "session_id": session_id})
    name, greeting = await asyncio.wait_for(events.get(), 30)
    assert name == "bot_uttered" and greeting["text"].startswith("Bonjour et bienvenue")
    assert {"content_type": "text", "title": "Vérifier un stock",
            "payload": "/check_stock"} in greeting["quick_replies"]
    # A plain disconnect() waits out the open long-poll (about 30 s); the server notices anyway.
    await client.eio.disconnect(abort=True)

    again = socketio.AsyncClient(reconnection=False, request_timeout=30)
    again.on("session_confirm", lambda data: events.put_nowait(("session_confirm", data)))
    again.on("history", lambda data: events.put_nowait(("history", data)))
    await again.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
    await again.emit("session_request", {"session_id": session_id})
    assert await asyncio.wait_for(events.get(), 10) == ("session_confirm", session_id)
    await again.emit("history_request", {})
    name, history = await asyncio.wait_for(events.get(), 10)
    assert [m["sender"] for m in history] == ["user", "bot"]
    assert history[0]["text"] == "bonjour"
    await again.eio.disconnect(abort=True)


def test_the_web_widget_in_a_real_browser(stack):
    shots = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(stack.url + "/")
        bot = page.locator(".cpt-bot")
        bot.first.wait_for(timeout=30000)  # the widget greets a new visitor
        assert "Bonjour et bienvenue" in bot.first.inner_text()

        page.get_by_label("Votre message").fill("bonjour")
        page.get_by_role("button", name="Envoyer").click()
        bot.nth(1).wait_for(timeout=30000)
        page.get_by_role("button", name="Horaires d'un magasin").click()
        bot.nth(2).wait_for(timeout=30000)
        assert bot.nth(2).inner_text().endswith("Pour quel magasin ? Indiquez-moi la ville, par exemple Lille ou Lyon.")
        assert page.locator(".cpt-user").nth(1).inner_text().endswith("Horaires d'un magasin")

        attack = "<img src=x onerror=alert(1)>"
        page.get_by_label("Votre message").fill(attack)
        page.keyboard.press("Enter")
        bot.nth(3).wait_for(timeout=30000)
        assert page.locator(".cpt-user").nth(2).inner_text().endswith(attack)
        assert page.locator(".cpt-log img").count() == 0
        count = page.locator(".cpt-msg").count()

        page.reload()
        page.locator(".cpt-msg").nth(count - 1).wait_for(timeout=30000)
        assert page.locator(".cpt-msg").count() == count
        assert page.locator(".cpt-user").nth(2).inner_text().endswith(attack)
        page.screenshot(path=str(shots / "webchat.png"), full_page=True)
        assert dialogs == []
        browser.close()


async def test_a_reload_replays_no_personal_data_after_logout_and_an_old_session_id_expires(stack):
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.shop_url, future=True)
    with engine.connect() as connection:
        email = connection.execute(text("SELECT email FROM customers WHERE id = 8")).scalar_one()
    client, session_id, events = await web_chat(stack)
    for message in ("quelles données avez-vous sur moi ?", email):
        await web_turn(client, session_id, events, message)
    assert email in await web_turn(client, session_id, events, outbox_code(stack, email))
    await client.emit("history_request", {})
    shown = [m["text"] for m in await next_of(events, "history")]
    assert any(email in text for text in shown)  # verified: their own data, on a reload
    assert "n'est plus liée" in await web_turn(client, session_id, events, "déconnectez-moi")
    await client.emit("history_request", {})
    shown = [m["text"] for m in await next_of(events, "history")]
    assert "[message masqué]" in shown and not any(email in text for text in shown)
    await client.eio.disconnect(abort=True)

    with engine.begin() as connection:  # eight days without a message
        connection.execute(text("UPDATE chat_identities SET last_seen_at = :old WHERE external_id = :s"),
                           {"old": utcnow() - dt.timedelta(days=8), "s": session_id})
    engine.dispose()
    client, renewed, events = await web_chat(stack, session_id)
    assert renewed != session_id
    await client.emit("history_request", {})
    assert await next_of(events, "history") == []
    await client.eio.disconnect(abort=True)


async def test_a_long_web_conversation_is_replayed_whole(stack):
    """Past SESSION_WINDOW_TURNS messages Rasa goes on in a new session (bot/ops/rasa_server.py):
    the shopper still sees the whole conversation on a reload."""
    import aiohttp

    client, session_id, events = await web_chat(stack)
    first = "bonsoir"
    assert "Bonjour" in await web_turn(client, session_id, events, first)
    for turn in range(SESSION_WINDOW_TURNS + 1):
        said = await web_turn(client, session_id, events, "merci beaucoup" if turn % 2 else "bonjour")
        assert said, f"no answer at turn {turn + 2}"
    await client.emit("history_request", {})
    shown = [m for m in await next_of(events, "history") if m["sender"] == "user"]
    assert len(shown) == SESSION_WINDOW_TURNS + 2 and shown[0]["text"] == first
    async with aiohttp.ClientSession() as session:
        async with session.get(stack.tracker_url(session_id)) as response:
            starts = [e for e in (await response.json())["events"] if e["event"] == "session_started"]
    assert len(starts) == 2 and starts[1]["metadata"].get("comptoir_continued")
    await client.eio.disconnect(abort=True)


def test_a_stock_answer_in_the_web_widget_is_a_product_card(stack):
    shots = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(stack.url + "/")
        page.locator(".cpt-bot").first.wait_for(timeout=30000)
        page.get_by_label("Votre message").fill("vous avez les pegasus 41 homme en 42 noir à lyon part dieu ?")
        page.keyboard.press("Enter")
        card = page.locator(".cpt-card")
        card.wait_for(timeout=30000)
        picture = card.locator("img")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        assert picture.get_attribute("alt") == "Nike Pegasus 41 homme (42, noir)"
        assert card.locator("strong").inner_text() == "Nike Pegasus 41 homme (42, noir)"
        assert card.locator("p").inner_text().startswith("140 €\nÀ Lyon Part-Dieu : en stock.")
        link = card.get_by_role("link", name="Voir la fiche produit").get_attribute("href")
        assert page.get_by_role("button", name="Le mettre de côté").is_visible()
        page.screenshot(path=str(shots / "webchat-card.png"), full_page=True)

        page.reload()  # the card is shown again with the conversation
        page.locator(".cpt-card").wait_for(timeout=30000)
        product = browser.new_page()
        product.goto(link)
        assert product.locator("h1").inner_text() == "Nike Pegasus 41 homme"
        assert product.locator(".price").inner_text() == "140 €"
        browser.close()
