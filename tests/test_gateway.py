"""The gateway's REST endpoint and health, with Rasa and the action server down.

The conversation itself, with the real Rasa, is in tests/test_integration.py.
"""
import pytest

from bot.gateway import MAX_MESSAGE_CHARS, init_app
from bot.settings import load_settings
from tests.conftest import free_port


def gateway_settings(tmp_path, database_url, **extra):
    return load_settings({
        "COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": database_url,
        "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()), **extra})


@pytest.fixture
async def client(aiohttp_client, tmp_path, seeded_sqlite_url):
    return await aiohttp_client(init_app(gateway_settings(tmp_path, seeded_sqlite_url)))


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
    b'{"message": "bonjour"}', b'{"sender": "", "message": "x"}',
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
    response = await client.post("/webhooks/rest/webhook", data=b"x" * (2 * 1024 * 1024))
    assert response.status == 413


async def test_rest_token_is_required_when_configured(aiohttp_client, tmp_path, seeded_sqlite_url):
    token = "a-long-enough-secret-token"
    app = init_app(gateway_settings(tmp_path, seeded_sqlite_url, GATEWAY_REST_TOKEN=token))
    client = await aiohttp_client(app)
    body = {"sender": "c1", "message": ""}
    assert (await client.post("/webhooks/rest/webhook", json=body)).status == 401
    wrong = {"Authorization": "Bearer wrong-token-of-some-length"}
    assert (await client.post("/webhooks/rest/webhook", json=body, headers=wrong)).status == 401
    right = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/webhooks/rest/webhook", json=body, headers=right)).status == 200
