"""Telegram adapter against a local fake Bot API: updates in, exact API calls out.

The conversation through the real Rasa is in tests/test_e2e_channels.py; here Rasa is
not running, which also proves the polite answer when it is down.
"""
import asyncio
import time

import pytest
from sqlalchemy import select

from bot.core.models import ConsentLedgerEntry
from bot.core.settings import load_settings
from bot.web.app import init_app
from bot.web.conversation import FLOOD_BURST, MAX_FLOOD_WAIT, REPLY_FLOOD, REPLY_RASA_DOWN
from bot.web.keys import SETTINGS, TELEGRAM
from integrations.telegram import PRIVATE_ONLY, STOP_REPLY, split_text
from tests.harness import TELEGRAM_TEST_TOKEN, free_port

TOKEN = TELEGRAM_TEST_TOKEN
SECRET = "webhook-secret-for-tests-0123456789"
USER = 424242


@pytest.fixture
def fake(fake_bot_api):
    return fake_bot_api


@pytest.fixture
async def gateway(aiohttp_client, tmp_path, shop_url, fake):
    fake.calls.clear()
    settings = load_settings({
        "COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": shop_url,
        "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()),
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.url,
        "TELEGRAM_WEBHOOK_URL": "https://shop.example/webhooks/telegram",
        "TELEGRAM_WEBHOOK_SECRET": SECRET})
    app = init_app(settings)
    client = await aiohttp_client(app)
    return client, app


def test_long_texts_are_split_on_boundaries_under_the_limit():
    text = ("Ligne de stock. " * 40 + "\n") * 20
    parts = split_text(text)
    assert len(parts) == 4 and all(len(p) <= 4096 for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    assert split_text("x" * 9000) == ["x" * 4096, "x" * 4096, "x" * 808]


async def test_webhook_is_registered_with_its_secret(gateway, fake):
    (call,) = await fake.calls_matching(lambda c: c["method"] == "setWebhook", timeout=5)
    assert call["url"] == "https://shop.example/webhooks/telegram"
    assert call["secret_token"] == SECRET


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong-secret-value-123"}])
async def test_webhook_refuses_calls_without_the_secret(gateway, fake, headers):
    client, _app = gateway
    response = await client.post("/webhooks/telegram", json={"update_id": 1, **fake.user_message(USER, "bonjour")},
                                 headers=headers)
    assert response.status == 403
    assert not [c for c in fake.calls if c["method"] == "sendMessage"]


async def test_webhook_update_is_answered_in_the_same_chat(gateway, fake):
    client, _app = gateway
    update = {"update_id": 7, **fake.user_message(USER, "bonjour")}
    response = await client.post("/webhooks/telegram", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert response.status == 200
    (sent,) = await fake.calls_matching(lambda c: c["method"] == "sendMessage", timeout=10)
    assert int(sent["chat_id"]) == USER
    assert sent["text"] == REPLY_RASA_DOWN  # Rasa is not running in this test


async def test_webhook_rejects_a_body_that_is_not_an_update(gateway):
    client, _app = gateway
    response = await client.post("/webhooks/telegram", data=b"\xff not json",
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert response.status == 400


async def test_buttons_become_an_inline_keyboard_and_images_photos(gateway, fake):
    _client, app = gateway
    channel = app[TELEGRAM]
    long_payload = '/inform{"colour":"' + "bleu nuit " * 8 + '"}'
    await channel.send_replies(USER, [
        {"text": "Quelle taille ?", "buttons": [{"title": "42", "payload": '/inform{"size":"42"}'},
                                                {"title": "43", "payload": '/inform{"size":"43"}'}]},
        {"text": "Quelle couleur ?", "buttons": [{"title": "bleu nuit", "payload": long_payload}]},
        {"image": "https://shop.example/bon.png", "text": "Votre bon d'anniversaire"},
        {"text": "x" * 5000},
    ])
    calls = await fake.calls_matching(lambda c: c["method"] in ("sendMessage", "sendPhoto"), timeout=5)
    sizes, colours, photo, first, second = calls
    assert sizes["reply_markup"] == {"inline_keyboard": [[
        {"text": "42", "callback_data": '/inform{"size":"42"}'},
        {"text": "43", "callback_data": '/inform{"size":"43"}'}]]}
    data = colours["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert len(data.encode()) <= 64 and await channel.shared.get(f"telegram:{data}") == long_payload
    assert (photo["method"], photo["photo"], photo["caption"]) == (
        "sendPhoto", "https://shop.example/bon.png", "Votre bon d'anniversaire")
    assert (len(first["text"]), len(second["text"])) == (4096, 904)


async def test_a_pushed_birthday_voucher_uploads_our_own_image(gateway, fake):
    """Telegram's servers cannot fetch the shop's own URLs: the code image is uploaded."""
    from bot.offers.vouchers import image_path

    _client, app = gateway
    settings = app[SETTINGS]
    url = settings.gateway_url + image_path(settings.identity_secret, "ANNIV-ABCD-EFGH")
    assert await app[TELEGRAM].push(f"telegram:{USER}", {"text": "Joyeux anniversaire !", "image": url})
    (photo,) = await fake.calls_matching(lambda c: c["method"] == "sendPhoto", timeout=5)
    assert isinstance(photo["photo"], dict) and "filename" in photo["photo"]  # a file, not a URL
    assert photo["caption"] == "Joyeux anniversaire !" and photo["chat_id"] == str(USER)


async def test_stop_withdraws_telegram_consent_even_unverified(gateway, fake, shop):
    client, _app = gateway
    update = {"update_id": 8, **fake.user_message(USER, "/stop")}
    await client.post("/webhooks/telegram", json=update,
                      headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    (sent,) = await fake.calls_matching(lambda c: c["method"] == "sendMessage", timeout=10)
    assert sent["text"] == STOP_REPLY
    with shop() as session:
        entries = session.execute(select(ConsentLedgerEntry).where(
            ConsentLedgerEntry.identity_id.isnot(None))).scalars().all()
    assert {(e.purpose, e.channel, e.new_state, e.source_conversation) for e in entries} == {
        (p, "telegram", False, f"identity:{entries[0].identity_id}")
        for p in ("offers", "birthday", "back_in_stock", "personalisation")}


async def test_in_a_group_chat_the_bot_asks_for_a_private_conversation(gateway, fake):
    client, _app = gateway
    update = {"update_id": 8, **fake.user_message(USER, "quelles données avez-vous sur moi ?")}
    update["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "Famille"}
    response = await client.post("/webhooks/telegram", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert response.status == 200
    (sent,) = await fake.calls_matching(lambda c: c["method"] == "sendMessage", timeout=10)
    assert (int(sent["chat_id"]), sent["text"]) == (-100123, PRIVATE_ONLY)


async def test_a_telegram_flood_gets_the_same_limit_as_every_channel_and_one_answer_each(gateway, fake):
    """The gateway's one flood limit: a burst, then one message a second, and past
    MAX_FLOOD_WAIT of backlog an answer at once instead of a long wait; nothing dropped
    in silence, every message answered once in the same chat."""
    client, _app = gateway
    flood = FLOOD_BURST + int(MAX_FLOOD_WAIT) + 4

    async def post(update_id):
        response = await client.post(
            "/webhooks/telegram", json={"update_id": 100 + update_id, **fake.user_message(USER, "bonjour")},
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status == 200

    await asyncio.gather(*(post(update_id) for update_id in range(flood)))
    deadline = time.monotonic() + 30
    while True:
        sent = [c["text"] for c in fake.calls if c["method"] == "sendMessage" and int(c["chat_id"]) == USER]
        if len(sent) >= flood or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert len(sent) == flood
    # 4 beyond the backlog; one fewer if the updates took over a second to arrive (a slow
    # machine refills the allowance meanwhile).
    assert sent.count(REPLY_FLOOD) in (3, 4)
    assert sent.count(REPLY_RASA_DOWN) == flood - sent.count(REPLY_FLOOD)  # Rasa is not running here
