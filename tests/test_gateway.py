"""The gateway's REST endpoint and health, with Rasa and the action server down.

The conversation itself, with the real Rasa, is in tests/test_e2e_*.py.
"""
import asyncio
import json

import pytest
from sqlalchemy import select

from bot.core.chats import identity_for
from bot.core.models import Product, Stock, Store, utcnow
from bot.core.settings import load_settings
from bot.stock.reservations import hold
from bot.web.app import init_app
from bot.web.conversation import (FLOOD_BURST, MAX_FLOOD_WAIT, MAX_MESSAGE_CHARS, REPLY_FLOOD,
                                  safe_metadata)
from bot.web.keys import SETTINGS, WEBCHAT
from bot.web.media import picture_bytes
from tests.harness import free_port


def gateway_settings(tmp_path, database_url, **extra):
    return load_settings({
        "COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": database_url,
        "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()), **extra})


@pytest.fixture
async def client(aiohttp_client, tmp_path, shop_url):
    # A private copy: the gateway's scheduler (holds, birthday pushes) may write to it.
    return await aiohttp_client(init_app(gateway_settings(tmp_path, shop_url)))


async def test_rasa_down_gets_a_polite_french_answer_not_an_error(client):
    response = await client.post("/webhooks/rest/webhook", json={"sender": "c1", "message": "bonjour"})
    assert response.status == 200
    replies = await response.json()
    assert replies == [{"recipient_id": "c1", "text": replies[0]["text"]}]
    assert "momentanément indisponible" in replies[0]["text"]


async def test_health_names_each_component_and_fails_when_one_is_down(client):
    response = await client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "degraded"
    assert body["components"]["rasa"]["status"] == "down"
    assert body["components"]["action_server"]["status"] == "down"
    assert body["components"]["database"]["status"] == "up"


async def test_health_reports_a_database_that_is_down(aiohttp_client, tmp_path):
    app = init_app(gateway_settings(tmp_path, f"postgresql://x@127.0.0.1:{free_port()}/shop"))
    response = await (await aiohttp_client(app)).get("/health")
    assert (await response.json())["components"]["database"]["status"] == "down"


@pytest.mark.parametrize("message", ["", "   ", "\x00\x01", None])
async def test_empty_message_is_answered_without_bothering_rasa(client, message):
    response = await client.post("/webhooks/rest/webhook", json={"sender": "c1", "message": message})
    assert response.status == 200
    assert "Je n'ai rien reçu" in (await response.json())[0]["text"]


async def test_a_huge_message_is_declined_politely(client):
    response = await client.post("/webhooks/rest/webhook",
                                 json={"sender": "c1", "message": "a" * 100_000})
    assert response.status == 200
    assert str(MAX_MESSAGE_CHARS) in (await response.json())[0]["text"]


@pytest.mark.parametrize("body", [
    b"not json", b"\xff\xfe\x00binary", b"[1, 2]", b'"text"',
    b'{"message": "bonjour"}', b'{"sender": "c1"}', b'{"sender": "", "message": "x"}',
    b'{"sender": 12, "message": "x"}', b'{"sender": "c1", "message": ["x"]}',
    b'{"sender": "c1", "message": "x", "metadata": "loc"}',
    b'{"sender": "' + b"s" * 200 + b'", "message": "x"}',
])
async def test_malformed_requests_get_a_clean_400_in_french(client, body):
    response = await client.post("/webhooks/rest/webhook", data=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error"].startswith("Requête invalide")


async def test_a_body_over_one_megabyte_is_refused(client):
    response = await client.post("/webhooks/rest/webhook", data=b"x" * (2 * 1024 * 1024),
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413


async def test_rest_token_is_required_when_configured(aiohttp_client, tmp_path, shop_url):
    token = "a-long-enough-secret-token"
    app = init_app(gateway_settings(tmp_path, shop_url, GATEWAY_REST_TOKEN=token))
    client = await aiohttp_client(app)
    body = {"sender": "c1", "message": ""}
    assert (await client.post("/webhooks/rest/webhook", json=body)).status == 401
    wrong = {"Authorization": "Bearer wrong-token-of-some-length"}
    assert (await client.post("/webhooks/rest/webhook", json=body, headers=wrong)).status == 401
    right = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/webhooks/rest/webhook", json=body, headers=right)).status == 200


TILL_TOKEN = "till-token-for-the-tests"


async def test_till_api_checks_uses_once_activates_cards_and_collects_holds(aiohttp_client, tmp_path, shop_url, shop):
    import datetime as dt

    from bot.offers.birthday import issue_birthday_voucher, window_for
    from bot.offers.rules import load_rules
    from bot.offers.vouchers import image_path
    from bot.core.models import Customer

    today = dt.datetime.now(dt.timezone.utc).date()
    with shop.begin() as session:
        customer = Customer(first_name="Till", email="till-api@example.org", birthday=today,
                            loyalty_status="pending", loyalty_card="800077770001")
        session.add(customer)
        session.flush()
        window, _ = window_for(today, today, load_rules())
        code = issue_birthday_voucher(session, customer, window, today, load_rules())[0].code
    settings = gateway_settings(tmp_path, shop_url, TILL_API_TOKEN=TILL_TOKEN)
    client = await aiohttp_client(init_app(settings))
    till = {"Authorization": f"Bearer {TILL_TOKEN}"}

    assert (await client.get(f"/api/vouchers/{code}")).status == 401
    assert (await client.get(f"/api/vouchers/{code}", headers={"Authorization": "Bearer nope"})).status == 401
    checked = await client.get(f"/api/vouchers/{code}", headers=till)
    body = await checked.json()
    assert checked.status == 200 and body["status"] == "valid" and body["code"] == code
    assert (await client.get("/api/vouchers/ANNIV-ZZZZ-ZZZZ", headers=till)).status == 404
    assert (await client.post(f"/api/vouchers/{code}/use", headers=till, data=b"\xff")).status == 400
    used = await client.post(f"/api/vouchers/{code}/use", headers=till, json={"store": "lys-pdi"})
    assert used.status == 200 and (await used.json())["used_where"] == "LYS-PDI"
    refused = await client.post(f"/api/vouchers/{code}/use", headers=till, json={"store": "WEB"})
    assert refused.status == 409 and "déjà été utilisé" in (await refused.json())["reason"]

    activated = await client.post("/api/cards/800077770001/activate", headers=till, json={"store": "NCE-MAS"})
    assert activated.status == 200 and (await activated.json())["status"] == "activated"
    unknown = await client.post("/api/cards/123/activate", headers=till, json={"store": "NCE-MAS"})
    assert unknown.status == 404 and (await unknown.json())["reason"] == "Ce numéro de carte est inconnu."

    with shop.begin() as session:
        lyon = session.execute(select(Store.id).where(Store.code == "LYS-PDI")).scalar_one()
        line = session.execute(select(Stock).where(Stock.store_id == lyon, Stock.quantity > 0)).scalars().first()
        held = hold(session, line.variant_id, lyon, 1, now=utcnow(), identity_id=identity_for(
            session, "web", "web-till").id).code
    assert (await client.post(f"/api/holds/{held}/collect", json={"store": "LYS-PDI"})).status == 401
    elsewhere = await client.post(f"/api/holds/{held}/collect", headers=till, json={"store": "NCE-MAS"})
    assert elsewhere.status == 409 and "autre magasin" in (await elsewhere.json())["reason"]
    picked = await client.post(f"/api/holds/{held}/collect", headers=till, json={"store": "LYS-PDI"})
    assert picked.status == 200 and (await picked.json())["reason"].startswith("Réservation retirée")
    again = await client.post(f"/api/holds/{held}/collect", headers=till, json={"store": "LYS-PDI"})
    assert again.status == 409 and "déjà été retirée" in (await again.json())["reason"]

    image = await client.get(image_path(settings.identity_secret, code))
    assert image.status == 200 and image.content_type == "image/png"
    assert (await image.read()).startswith(b"\x89PNG")
    forged = image_path("x" * 40, code)
    assert (await client.get(forged)).status == 404


async def test_json_nested_thousands_deep_is_a_clean_400(client):
    body = b'{"sender": "c1", "message": "x", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post("/webhooks/rest/webhook", data=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]


async def test_a_flood_from_one_sender_is_slowed_then_answered_at_once_others_unaffected(client):
    async def say(sender):
        response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "bonjour"})
        assert response.status == 200
        return (await response.json())[0]["text"]

    flood = FLOOD_BURST + int(MAX_FLOOD_WAIT) + 6
    answers = await asyncio.gather(*(say("flooder") for _ in range(flood)))
    assert answers.count(REPLY_FLOOD) == 6
    assert REPLY_FLOOD not in answers[:FLOOD_BURST]
    assert "momentanément indisponible" in await say("someone-else")


def test_only_a_position_and_the_channel_go_to_rasa_from_client_metadata():

    sent = {"location": {"latitude": "45.76", "longitude": 4.84, "note": "x" * 60_000},
            "comptoir_channel": "telegram", "padding": "y" * 900_000}
    assert safe_metadata(sent, "web") == {"comptoir_channel": "web",
                                          "location": {"latitude": 45.76, "longitude": 4.84}}
    assert safe_metadata({"location": {"latitude": 1e400, "longitude": 0}}, "web") == \
        {"comptoir_channel": "web"}
    assert safe_metadata({"location": {"latitude": 10**400, "longitude": 0}}, "web") == \
        {"comptoir_channel": "web"}


async def test_a_web_socket_keeps_its_first_session_and_counts_once(aiohttp_client, tmp_path, shop_url):
    import asyncio

    import socketio


    port = free_port()
    client = await aiohttp_client(init_app(gateway_settings(tmp_path, shop_url, GATEWAY_PORT=str(port))),
                                  server_kwargs={"port": port})
    confirmed = asyncio.Queue()
    browser = socketio.AsyncClient(reconnection=False)
    browser.on("session_confirm", confirmed.put_nowait)
    origin = str(client.make_url("")).rstrip("/")
    await browser.connect(origin, transports=["polling"], headers={"Origin": origin})
    try:
        await browser.emit("session_request", {})
        first = await asyncio.wait_for(confirmed.get(), 10)
        for _ in range(20):  # each a fresh, valid id: an attempt to switch past the limits
            await browser.emit("session_request", {"session_id": "f" * 32})
            assert await asyncio.wait_for(confirmed.get(), 10) == first
        assert client.server.app[WEBCHAT].connected == {first: 1}
    finally:
        # The server closes it: a polling client's own goodbye waits out a long poll.
        await client.server.app[WEBCHAT].sio.eio.disconnect()
        await browser.disconnect()
        for task in (browser.eio.read_loop_task, browser.eio.write_loop_task):
            if task is not None:
                task.cancel()


@pytest.mark.parametrize("sender", ["telegram:4242", "effacé:7", "a:b"])
async def test_a_rest_sender_cannot_name_another_channels_conversation(client, sender):
    response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "bonjour"})
    assert response.status == 400
    assert "« : »" in (await response.json())["error"]


def test_a_database_error_names_no_value_of_its_statement(tmp_path):
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from bot.core.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SQLAlchemyError) as failed, engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE email = :e"), {"e": "camille@example.org"})
    assert "camille@example.org" not in str(failed.value)
    engine.dispose()


async def test_rest_wants_json_so_a_web_page_cannot_post_to_a_local_gateway(client):
    form = await client.post("/webhooks/rest/webhook", data="sender=a&message=supprimez mes données",
                             headers={"Content-Type": "text/plain"})
    assert form.status == 415
    assert "JSON" in (await form.json())["error"]


def test_a_public_address_beyond_this_machine_wants_a_rest_token(tmp_path):
    from bot.core.settings import SettingsError

    with pytest.raises(SettingsError, match="GATEWAY_REST_TOKEN"):
        load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "PUBLIC_URL": "https://boutique.example"})


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"updates": "P000001-01"}',
                                  b'{"updates": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}",
                                  json.dumps({"updates": [{}] * 10_001}).encode()])
async def test_the_stock_api_refuses_what_is_not_a_list_of_updates_in_french(aiohttp_client, tmp_path,
                                                                            shop_url, body):
    """Checked without `assert`, which `python -O` would remove."""
    client = await aiohttp_client(init_app(gateway_settings(tmp_path, shop_url,
                                                            STOCK_API_TOKEN="stock-token-0123456789")))
    response = await client.post("/api/stock", data=body, headers={
        "Authorization": "Bearer stock-token-0123456789", "Content-Type": "application/json"})
    assert response.status == 400
    assert "Requête invalide" in (await response.json())["error"]


async def test_product_pictures_and_pages_are_served_for_the_catalog_only(client, shop):
    with shop.begin() as session:
        product = session.execute(select(Product).where(Product.sku == "P000001")).scalar_one()
        assert (product.image_url, product.link) == ("/media/products/P000001.png", "/produits/P000001")
        withdrawn = session.execute(select(Product).where(Product.sku == "P000002")).scalar_one()
        withdrawn.active = False
        withdrawn.name = "<script>alert(1)</script>"
    picture = await client.get("/media/products/P000001.png")
    assert picture.status == 200 and picture.content_type == "image/png"
    assert (await picture.read()).startswith(b"\x89PNG\r\n\x1a\n")
    page = await client.get("/produits/P000001")
    body = await page.text()
    assert page.status == 200 and "<h1>Nike Pegasus 41 homme</h1>" in body and "140 €" in body
    assert "script-src" not in page.headers["Content-Security-Policy"]  # no script at all
    for missing in ("/media/products/NOPE.png", "/media/products/..%2Fshop.png", "/produits/P000002",
                    "/produits/NOPE"):
        assert (await client.get(missing)).status == 404, missing
    # Telegram uploads our own pictures only; a retailer's is sent as its address.
    own = client.server.app[SETTINGS].public_url + "/media/products/P000001.png"
    assert (await picture_bytes(client.server.app, own)).startswith(b"\x89PNG")
    assert await picture_bytes(client.server.app, "https://cdn.example.fr/media/products/P000001.png") is None


async def test_the_gateway_stops_though_a_polling_widget_left_without_a_word(aiohttp_client, tmp_path,
                                                                            shop_url):
    """A polling client that stops polling never fetches its close packet: stopping the
    gateway must not wait for it (`bot up`'s Ctrl-C then had to kill the gateway)."""
    port = free_port()
    client = await aiohttp_client(init_app(gateway_settings(tmp_path, shop_url, GATEWAY_PORT=str(port))),
                                  server_kwargs={"port": port})
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    opened = await client.get("/socket.io/?EIO=4&transport=polling", headers=origin)
    sid = json.loads((await opened.text())[1:])["sid"]
    joined = await client.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="40", headers=origin)
    assert joined.status == 200 and client.server.app[WEBCHAT].sio.eio.sockets
    # ...and it never polls again.
    app = client.server.app
    await asyncio.wait_for(client.close(), timeout=15)  # the whole way out: shutdown, cleanup
    assert not app[WEBCHAT].sio.eio.sockets
