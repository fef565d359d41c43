"""Support console access rules: login, lock-out, CSRF, cookies, nothing without login."""
import re

import pytest

from bot.core.models import utcnow
from bot.core.settings import load_settings
from bot.handover import tickets as handover
from bot.handover.agents import create_agent
from bot.web.app import init_app
from bot.web.keys import CONSOLE
from tests.harness import free_port

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


async def test_five_failures_lock_the_account_from_that_address_only(aiohttp_client, tmp_path, shop_url, shop):
    with shop.begin() as session:
        create_agent(session, "alice", "Alice", PASSWORD)
        create_agent(session, "bob", "Bob", PASSWORD)
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": shop_url,
                              "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()),
                              "TRUSTED_PROXIES": "127.0.0.1"})  # as behind a reverse proxy
    client = await aiohttp_client(init_app(settings))

    async def attempt(username, password, address):
        page = await client.get("/console", headers={"X-Forwarded-For": address})
        token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
        response = await client.post("/console/login", headers={"X-Forwarded-For": address},
                                     data={"csrf": token, "username": username, "password": password})
        return response.status

    for _ in range(5):  # the README's five wrong passwords
        assert await attempt("alice", "guess", "203.0.113.9") == 401
    assert await attempt("alice", PASSWORD, "203.0.113.9") == 401  # even the right one, there
    assert await attempt("alice", PASSWORD, "198.51.100.4") == 200  # the agent's own machine
    assert await attempt("bob", PASSWORD, "203.0.113.9") == 200  # others unaffected


def test_a_lock_lasts_until_the_failures_are_fifteen_minutes_old(shop):
    import datetime as dt

    from bot.handover import agents

    now = dt.datetime(2026, 12, 2, 9, 0)
    with shop.begin() as session:
        create_agent(session, "dave", "Dave", PASSWORD)
        for second in range(5):
            agents.login(session, "dave", "guess", now + dt.timedelta(seconds=second), "10.0.0.1")
        assert agents.login(session, "dave", PASSWORD, now + dt.timedelta(minutes=14), "10.0.0.1") is None
        assert agents.login(session, "dave", PASSWORD, now + dt.timedelta(minutes=15, seconds=1),
                            "10.0.0.1") is not None


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
    other = await aiohttp_client(console.server)  # a second browser, logged in as Bob
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

    from bot.core.models import PrivacyRequest

    now = utcnow().replace(microsecond=0)
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
    from sqlalchemy import select

    from bot.core.models import Agent, PrivacyRequestChange

    with shop() as session:
        changes = session.execute(select(Agent.username, PrivacyRequestChange.request_id,
                                         PrivacyRequestChange.from_status, PrivacyRequestChange.to_status)
                                  .join(Agent, Agent.id == PrivacyRequestChange.agent_id)).all()
    assert [tuple(c) for c in changes] == [("alice", listed[0]["id"], "in_progress", "done")]


async def claimed_ticket(console, shop, sender="s-need"):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", sender, "demande du client").ticket_id
        handover.add_message(session, ticket_id, "customer",
                             "je suis joignable au 06 39 98 00 01 ou camille@example.org")
    csrf = (await (await login(console)).json())["csrf"]
    claim = await console.post(f"/console/api/tickets/{ticket_id}/claim", headers={"X-CSRF-Token": csrf})
    assert (await claim.json())["ok"] is True
    return ticket_id, csrf


async def test_only_the_agent_handling_a_ticket_reads_it_masked_and_each_view_is_logged(
        console, shop, aiohttp_client):
    from sqlalchemy import select

    from bot.core.models import DataAccessLog

    ticket_id, _csrf = await claimed_ticket(console, shop)
    view = await (await console.get(f"/console/api/tickets/{ticket_id}")).json()
    assert view["messages"][0]["text"] == "je suis joignable au [téléphone] ou [e-mail]"
    other = await aiohttp_client(console.server)
    await login(other, "bob")
    refused = await other.get(f"/console/api/tickets/{ticket_id}")
    assert refused.status == 403
    assert "camille" not in await refused.text()
    with shop() as session:
        logged = session.execute(select(DataAccessLog.agent_id, DataAccessLog.kind, DataAccessLog.ticket_id)).all()
    assert len(logged) == 1 and logged[0][1:] == ("transcript", ticket_id)


async def test_an_unclaimed_ticket_shows_no_conversation(console, shop):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", "s-open", "demande du client").ticket_id
    await login(console)
    assert (await console.get(f"/console/api/tickets/{ticket_id}")).status == 403


async def test_claims_go_by_agent_not_by_display_name(console, shop, aiohttp_client):
    with shop.begin() as session:
        create_agent(session, "alice2", "Alice", PASSWORD)  # a namesake
    ticket_id, _csrf = await claimed_ticket(console, shop)
    namesake = await aiohttp_client(console.server)
    csrf = (await (await login(namesake, "alice2")).json())["csrf"]
    reply = await namesake.post(f"/console/api/tickets/{ticket_id}/reply", json={"text": "coucou"},
                                headers={"X-CSRF-Token": csrf})
    assert reply.status == 409
    assert (await namesake.get(f"/console/api/tickets/{ticket_id}")).status == 403


async def next_event(ws, kind, timeout=3):
    import asyncio

    while True:
        event = await asyncio.wait_for(ws.receive_json(), timeout)
        if event["type"] == kind:
            return event


async def test_a_customer_message_goes_to_the_handling_agent_only_and_masked(
        console, shop, aiohttp_client):
    import asyncio


    ticket_id, _csrf = await claimed_ticket(console, shop)
    other = await aiohttp_client(console.server)
    await login(other, "bob")
    alice_ws, bob_ws = await console.ws_connect("/console/ws"), await other.ws_connect("/console/ws")
    await console.server.app[CONSOLE].customer_message(ticket_id, "mon code est 483920")
    message = await next_event(alice_ws, "message")
    assert (message["ticket_id"], message["text"]) == (ticket_id, "mon code est [code]")
    with pytest.raises(asyncio.TimeoutError):
        await next_event(bob_ws, "message", timeout=1)
    await alice_ws.close()
    await bob_ws.close()


async def test_logging_out_closes_the_agents_live_socket(console):
    csrf = (await (await login(console)).json())["csrf"]
    ws = await console.ws_connect("/console/ws")
    await next_event(ws, "queue")
    assert (await console.post("/console/logout", headers={"X-CSRF-Token": csrf})).status == 200
    closing = await ws.receive(timeout=3)
    assert ws.closed or closing.type.name in ("CLOSE", "CLOSED", "CLOSING")


def test_a_locked_account_spends_the_same_work_as_a_wrong_password(shop, monkeypatch):
    from bot.handover import agents

    with shop.begin() as session:
        create_agent(session, "carol", "Carol", PASSWORD)
        for _ in range(5):
            agents.login(session, "carol", "guess")
    checked = []

    class Counting(type(agents._hasher)):  # the real hasher, watched
        def verify(self, hash_, password):
            checked.append(password)
            return super().verify(hash_, password)

    monkeypatch.setattr(agents, "_hasher", Counting())
    with shop.begin() as session:
        assert agents.login(session, "carol", PASSWORD) is None  # locked
        assert agents.login(session, "carol", "guess") is None
    assert checked == [PASSWORD, "guess"]  # a hash checked both times, as for a wrong password


async def test_the_console_websocket_ignores_actions_without_the_csrf_token(console, shop):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", "s-ws", "demande du client").ticket_id
    await login(console)
    ws = await console.ws_connect("/console/ws")
    await ws.send_json({"ticket_id": ticket_id, "action": "claim"})
    assert (await next_event(ws, "error"))["error"] == "Jeton CSRF invalide."
    with shop() as session:
        assert handover.queue(session)[0].status == "open"
    await ws.close()


async def test_behind_a_tls_proxy_cookies_are_secure_and_the_public_origin_may_open_the_socket(
        aiohttp_client, tmp_path, shop_url, shop):
    with shop.begin() as session:
        create_agent(session, "erin", "Erin", PASSWORD)
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "DATABASE_URL": shop_url,
                              "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()),
                              "PUBLIC_URL": "https://boutique.example",
                              "GATEWAY_REST_TOKEN": "a-rest-token-long-enough"})
    client = await aiohttp_client(init_app(settings))
    page = await client.get("/console")  # the test speaks http: Secure cookies are sent by hand
    assert "Secure" in page.headers["Set-Cookie"]
    form = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    response = await client.post("/console/login", data={"csrf": form, "username": "erin", "password": PASSWORD},
                                 headers={"Cookie": f"comptoir_login_csrf={page.cookies['comptoir_login_csrf'].value}"})
    assert response.status == 200
    assert "Secure" in response.headers["Set-Cookie"]
    session_cookie = {"Cookie": f"comptoir_console={response.cookies['comptoir_console'].value}"}
    ws = await client.ws_connect("/console/ws", origin="https://boutique.example", headers=session_cookie)
    assert (await next_event(ws, "queue"))["type"] == "queue"
    await ws.close()
    refused = await client.get("/console/ws", headers={
        "Origin": "https://evil.example", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **session_cookie})
    assert refused.status == 403
