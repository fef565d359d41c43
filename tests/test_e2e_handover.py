"""End to end, misunderstandings and people: a clarifying question, two misses offer a
person, orders go elsewhere, an upset customer is handed over, a web customer and an
agent talk through the console, and only the claiming agent reads a verified
customer's transcript, masked.
"""
import asyncio
import json

import pytest

from tests.harness import (AGENT_PASSWORD, console_session, launch_chromium, outbox_code,
                           require_chromium, stack_history, texts)

pytestmark = pytest.mark.slow


def test_triggers_two_misunderstandings_offer_a_person(stack):
    first = texts(stack.say("lost-1", "quel temps fera-t-il demain à Brest ?"))
    assert "je ne peux pas vous aider sur ce sujet" in first
    offer = stack.say("lost-1", "qui va gagner la coupe du monde ?")
    assert "Voulez-vous qu'un conseiller prenne le relais ?" in texts(offer)
    assert offer[0]["buttons"][0]["payload"] == "/request_human"


def test_an_order_question_says_where_to_go_and_offers_a_person(stack):
    replies = stack.say("orders-1", "Bonjour, ma commande n° 45521 n'est toujours pas livrée, où en est mon colis ?")
    assert "Je ne m'occupe pas des commandes ici" in texts(replies)
    assert "https://www.comptoir.example/aide/commandes" in texts(replies)
    assert replies[0]["buttons"][0]["payload"] == "/request_human"


HESITANT = ("pegasus ou bien ?", "les pegasus de côté ou pas", "et les pegasus du coup")


def test_an_unsure_guess_gets_a_clarifying_question_whose_buttons_go_on(stack):
    """Short messages the model hesitates on (no intent above the fallback's threshold).
    Which intents it hesitates between moves with each retraining, so the first of a few
    that offers the stock question is used. The button goes on as if understood, with the
    product said; "Autre chose" is a second miss, which offers a person."""
    from bot.assistant.fallback import CHOICES

    for index, message in enumerate(HESITANT):
        asked = stack.say(f"unsure-{index}", message)
        if texts(asked) != "Je ne suis pas sûr d'avoir bien compris. Vous voulez dire… ?":
            continue  # understood outright by this model
        buttons = {b["title"]: b["payload"] for b in asked[0]["buttons"]}
        assert set(buttons) - {"Autre chose"} <= set(CHOICES.values()) and buttons["Autre chose"] == "/nlu_fallback"
        if "Savoir si un article est en stock" in buttons:
            break
    else:
        raise AssertionError("no hesitant message got a clarifying question offering the stock question")
    assert buttons["Savoir si un article est en stock"] == '/check_stock{"product":"pegasus"}'
    chosen = stack.say(f"unsure-{index}", buttons["Savoir si un article est en stock"])
    assert "Nike Pegasus 41 homme" in [b["title"] for r in chosen for b in r.get("buttons") or []]

    stack.say("unsure-other", message)
    other = stack.say("unsure-other", "/nlu_fallback")
    assert "Voulez-vous qu'un conseiller prenne le relais ?" in texts(other)


def test_an_upset_customer_is_handed_over_with_an_apology(stack):
    answer = texts(stack.say("upset-1", "ça marche pas votre truc, c'est nul"))
    assert answer.startswith("Je suis désolé pour ce désagrément. Je vous passe un conseiller")


async def test_handover_between_a_web_customer_and_an_agent(stack, agent):
    import socketio

    customer_events = asyncio.Queue()
    customer = socketio.AsyncClient(reconnection=False, request_timeout=30)
    customer.on("session_confirm", lambda data: customer_events.put_nowait(("confirm", data)))
    customer.on("bot_uttered", lambda data: customer_events.put_nowait(("bot", data)))
    await customer.connect(stack.url, transports=["polling"], headers={"Origin": stack.url})
    await customer.emit("session_request", {})
    _, session_id = await asyncio.wait_for(customer_events.get(), 10)

    async def customer_says(text):
        await customer.emit("user_uttered", {"message": text, "session_id": session_id})

    await customer_says("je cherche les pegasus 41 homme")
    await asyncio.wait_for(customer_events.get(), 30)
    await customer_says("je veux parler à un conseiller")
    _, handed = await asyncio.wait_for(customer_events.get(), 30)
    assert handed["text"].startswith("Je vous passe un conseiller : vous êtes n°")

    http, csrf = await console_session(stack, agent)
    ws = await http.ws_connect("/console/ws", origin=stack.url)
    queue = (await ws.receive_json())["tickets"]
    ticket = next(t for t in queue if t["channel"] == "web" and t["status"] == "open"
                  and t["reason"] == "demande du client")
    await ws.send_json({"csrf": csrf, "ticket_id": ticket["id"], "action": "claim"})

    async def agent_event(kind):
        while True:
            event = await asyncio.wait_for(ws.receive_json(), 30)
            if event["type"] == kind:
                return event

    assert (await agent_event("result"))["ok"] is True
    response = await http.get(f"/console/api/tickets/{ticket['id']}")
    view = await response.json()
    assert response.status == 200, view
    assert view["summary"]["last_customer_messages"][-1] == "je veux parler à un conseiller"
    assert view["summary"]["product"] == "Nike Pegasus 41 homme (P000001)"
    assert "request_human" in view["summary"]["intents"]
    assert view["profile"] is None and view["verified"] is False

    await customer_says("ma taille est le 42, vous l'avez à Lille ?")
    message = await agent_event("message")
    assert (message["author"], message["text"]) == ("customer", "ma taille est le 42, vous l'avez à Lille ?")
    with pytest.raises(asyncio.TimeoutError):  # the bot stays quiet while a person answers
        await asyncio.wait_for(customer_events.get(), 3)

    await ws.send_json({"csrf": csrf, "ticket_id": ticket["id"], "action": "reply",
                        "text": "Bonjour, je regarde le stock de Lille pour vous."})
    _, reply = await asyncio.wait_for(customer_events.get(), 10)
    assert reply == {"text": "Bonjour, je regarde le stock de Lille pour vous."}

    note = await http.post(f"/console/api/tickets/{ticket['id']}/note",
                           json={"text": "client patient"}, headers={"X-CSRF-Token": csrf})
    assert (await note.json())["ok"] is True
    back = await http.post(f"/console/api/tickets/{ticket['id']}/handback",
                           headers={"X-CSRF-Token": csrf})
    assert (await back.json())["ok"] is True
    _, resumed = await asyncio.wait_for(customer_events.get(), 10)
    assert resumed["text"].startswith("Je reprends la main")

    await customer_says("bonjour")
    _, greeting = await asyncio.wait_for(customer_events.get(), 30)
    assert greeting["text"].startswith("Bonjour et bienvenue")

    history = [m["text"] for m in await stack_history(stack, session_id)]
    assert "Bonjour, je regarde le stock de Lille pour vous." in history  # recorded in Rasa
    view = await (await http.get(f"/console/api/tickets/{ticket['id']}")).json()
    assert [(m["author"], m["text"]) for m in view["messages"]] == [
        ("customer", "ma taille est le 42, vous l'avez à Lille ?"),
        ("agent", "Bonjour, je regarde le stock de Lille pour vous.")]
    assert view["notes"][0]["text"] == "client patient"
    await ws.close()
    await http.close()
    await customer.eio.disconnect(abort=True)


async def test_a_verified_customers_transcript_reaches_only_the_claiming_agent_masked(stack, agent):
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.shop_url, future=True)
    with engine.connect() as connection:
        email, phone = connection.execute(text(
            "SELECT email, phone FROM customers WHERE id = 7")).one()
    sender = "need-to-know-1"
    stack.say(sender, "quelles données avez-vous sur moi ?")
    stack.say(sender, email)
    assert email in texts(stack.say(sender, outbox_code(stack, email)))
    assert "/exports/" in texts(stack.say(sender, "je veux exporter mes données"))
    assert "conseiller" in texts(stack.say(sender, "je veux parler à un conseiller"))

    http, csrf = await console_session(stack, agent)
    queue = (await (await http.get("/console/api/queue")).json())["tickets"]
    ticket_id = max(t["id"] for t in queue if t["status"] == "open")
    assert (await http.get(f"/console/api/tickets/{ticket_id}")).status == 403  # not claimed yet
    claimed = await http.post(f"/console/api/tickets/{ticket_id}/claim", headers={"X-CSRF-Token": csrf})
    assert (await claimed.json())["ok"] is True
    body = await (await http.get(f"/console/api/tickets/{ticket_id}")).text()
    view = json.loads(body)
    assert view["verified"] is True
    shown = "\n".join(m["text"] for m in view["transcript"])
    assert "quelles données avez-vous sur moi ?" in shown and "[lien d'export]" in shown
    for secret in (email, phone, "/exports/"):
        assert secret not in body, secret
    with engine.connect() as connection:
        kinds = connection.execute(text("SELECT kind FROM data_access_log WHERE ticket_id = :t"),
                                   {"t": ticket_id}).scalars().all()
    engine.dispose()
    assert sorted(kinds) == ["profile", "transcript"]
    await http.post(f"/console/api/tickets/{ticket_id}/close", headers={"X-CSRF-Token": csrf})
    await http.close()


def test_console_in_a_browser_reaches_the_customer_page(stack, agent):
    shots = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        shopper = browser.new_context().new_page()
        shopper.goto(stack.url + "/")
        shopper.locator(".cpt-bot").first.wait_for(timeout=30000)
        shopper.get_by_label("Votre message").fill("un humain svp")
        shopper.keyboard.press("Enter")
        shopper.locator(".cpt-bot", has_text="Je vous passe un conseiller").wait_for(timeout=30000)

        console = browser.new_context().new_page()
        console.goto(stack.url + "/console")
        console.get_by_label("Identifiant").fill(agent)
        console.get_by_label("Mot de passe").fill(AGENT_PASSWORD)
        console.get_by_role("button", name="Se connecter").click()
        ticket = console.locator(".ticket", has_text="demande du client").filter(
            has=console.get_by_role("button", name="Prendre en charge")).last
        ticket.get_by_role("button", name="Prendre en charge").click()
        console.get_by_text("Client non vérifié").wait_for(timeout=15000)
        console.get_by_label("Réponse au client").fill("Bonjour, ici Claire du service client.")
        console.get_by_role("button", name="Envoyer").click()
        shopper.locator(".cpt-bot", has_text="ici Claire du service client").wait_for(timeout=15000)
        console.locator(".from-agent", has_text="ici Claire").wait_for(timeout=15000)
        console.screenshot(path=str(shots / "console.png"), full_page=True)
        browser.close()
