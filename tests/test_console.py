"""Support console access rules: login, lock-out, CSRF, cookies, nothing without login."""
import re

import pytest

from bot import handover
from bot.agents import MAX_FAILURES, create_agent
from bot.gateway import init_app
from bot.settings import load_settings
from tests.conftest import free_port

PASSWORD = "correct horse battery"


@pytest.fixture
async def console(aiohttp_client, tmp_path, shop_url, shop):
    with shop.begin() as session:
        create_agent(session, "alice", "Alice", PASSWORD)
        create_agent(session, "bob", "Bob", PASSWORD)
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": shop_url,
                              "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port())})
    return await aiohttp_client(init_app(settings))


async def login(client, username="alice", password=PASSWORD):
    page = await client.get("/console")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    return await client.post("/console/login", data={"csrf": token, "username": username,
                                                     "password": password})


async def test_nothing_is_reachable_without_login(console):
    for path in ("/console/api/me", "/console/api/queue", "/console/api/tickets/1",
                 "/console/api/requests", "/console/ws"):
        assert (await console.get(path)).status == 401, path
    assert (await console.post("/console/api/tickets/1/claim")).status == 401


async def test_login_sets_an_httponly_strict_cookie_and_logout_ends_it(console):
    response = await login(console)
    assert response.status == 200
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    csrf = (await response.json())["csrf"]
    assert (await console.get("/console/api/queue")).status == 200
    assert (await console.post("/console/logout", headers={"X-CSRF-Token": csrf})).status == 200
    assert (await console.get("/console/api/queue")).status == 401


async def test_wrong_password_and_unknown_user_get_the_same_answer(console):
    wrong = await login(console, password="not the password")
    unknown = await login(console, username="mallory")
    assert wrong.status == unknown.status == 401
    assert (await wrong.json()) == (await unknown.json())


async def test_repeated_failures_lock_the_account(console):
    for _ in range(MAX_FAILURES):
        assert (await login(console, password="guess")).status == 401
    assert (await login(console)).status == 401  # even the right password, for a while
    assert (await login(console, username="bob")).status == 200  # others unaffected


async def test_login_without_the_form_token_is_refused(console):
    await console.get("/console")
    response = await console.post("/console/login", data={"csrf": "forged", "username": "alice",
                                                          "password": PASSWORD})
    assert response.status == 403


async def test_changes_need_the_csrf_token(console, shop):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", "s1", "demande du client").ticket_id
    csrf = (await (await login(console)).json())["csrf"]
    claim = f"/console/api/tickets/{ticket_id}/claim"
    assert (await console.post(claim)).status == 403
    assert (await console.post(claim, headers={"X-CSRF-Token": "wrong"})).status == 403
    response = await console.post(claim, headers={"X-CSRF-Token": csrf})
    assert (response.status, (await response.json())["ok"]) == (200, True)


async def test_a_ticket_claimed_by_one_agent_is_refused_to_another(console, shop, aiohttp_client):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", "s9", "demande du client").ticket_id
    alice = (await (await login(console)).json())["csrf"]
    assert (await console.post(f"/console/api/tickets/{ticket_id}/claim",
                               headers={"X-CSRF-Token": alice})).status == 200
    other = await aiohttp_client(console.server.app)  # a second browser, logged in as Bob
    bob = (await (await login(other, "bob")).json())["csrf"]
    second = await other.post(f"/console/api/tickets/{ticket_id}/claim", headers={"X-CSRF-Token": bob})
    assert (second.status, (await second.json())["error"]) == (409, "Ce ticket est déjà pris.")
    reply = await other.post(f"/console/api/tickets/{ticket_id}/reply", json={"text": "hello"},
                             headers={"X-CSRF-Token": bob})
    assert reply.status == 409


async def test_the_console_websocket_refuses_another_origin(console):
    await login(console)
    response = await console.get("/console/ws", headers={"Origin": "https://evil.example",
                                                         "Upgrade": "websocket", "Connection": "Upgrade",
                                                         "Sec-WebSocket-Version": "13",
                                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert response.status == 403


async def test_a_ticket_shows_its_messages_summary_and_no_profile_when_unverified(console, shop):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", "s5", "demande du client").ticket_id
        handover.add_message(session, ticket_id, "customer", "vous êtes là ?")
    csrf = (await (await login(console)).json())["csrf"]
    await console.post(f"/console/api/tickets/{ticket_id}/claim", headers={"X-CSRF-Token": csrf})
    view = await (await console.get(f"/console/api/tickets/{ticket_id}")).json()
    assert view["messages"][0]["text"] == "vous êtes là ?"
    assert view["profile"] is None and view["verified"] is False
    assert set(view["summary"]) == {"last_customer_messages", "last_bot_answers", "intents", "product"}


async def test_staff_see_open_data_requests_by_due_date_and_move_them_on(console, shop):
    import datetime as dt

    from bot.models import PrivacyRequest

    now = dt.datetime.utcnow().replace(microsecond=0)
    with shop.begin() as session:
        session.add_all([
            PrivacyRequest(customer_id=1, kind="erasure", status="received", created_at=now,
                           due_at=now + dt.timedelta(days=30)),
            PrivacyRequest(customer_id=2, kind="access", status="in_progress",
                           created_at=now - dt.timedelta(days=40), due_at=now - dt.timedelta(days=10)),
        ])
    csrf = (await (await login(console)).json())["csrf"]
    listed = (await (await console.get("/console/api/requests")).json())["requests"]
    assert [(r["kind"], r["overdue"]) for r in listed] == [("access", True), ("erasure", False)]
    assert (await console.post(f"/console/api/requests/{listed[0]['id']}", json={"status": "done"})).status == 403
    moved = await console.post(f"/console/api/requests/{listed[0]['id']}", json={"status": "done"},
                               headers={"X-CSRF-Token": csrf})
    assert moved.status == 200
    bad = await console.post(f"/console/api/requests/{listed[1]['id']}", json={"status": "lost"},
                             headers={"X-CSRF-Token": csrf})
    assert bad.status == 400
    remaining = (await (await console.get("/console/api/requests")).json())["requests"]
    assert [r["kind"] for r in remaining] == ["erasure"]
