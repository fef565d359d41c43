"""End to end, the retailer's side: a misunderstood message reaches the review inbox
masked, the labels reach the training data, a model is swapped into the running Rasa
while shoppers keep talking, satisfaction is asked and kept on Telegram and the web
chat, and the inbox and the dashboard of the seeded month work in a real browser."""
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqlalchemy import text

from bot.core.db import make_engine
from bot.core.settings import PROJECT_ROOT
from bot.review import satisfaction
from tests.harness import (AGENT_PASSWORD, TELEGRAM_USER, console_session, launch_chromium,
                           next_of, require_chromium, sent_to, texts, web_chat, web_turn)

pytestmark = pytest.mark.slow
FAILURES = ("momentanément indisponible", "je n'arrive pas à consulter", "je n'ai pas de réponse")


@pytest.fixture(scope="session")
def reviewer(stack):
    for name, role in (("rita", "reviewer"), ("adam", "admin")):
        result = subprocess.run([sys.executable, "-m", "bot", "agents", "add", name, "--role", role,
                                 "--password-stdin"], input=AGENT_PASSWORD + "\n", text=True,
                                capture_output=True, cwd=PROJECT_ROOT, env=stack.env, timeout=120)
        assert result.returncode == 0, result.stderr
    return "rita"


# Messages the model gets wrong (out of scope, or unsure): which of them it is unsure of
# moves with each retraining, so each is sent and every one kept must be masked.
MISUNDERSTOOD = (
    "Bonjour, mon colis n'est jamais arrivé, répondez-moi sur tante.lise@orange.fr svp",
    "vous pouvez envoyer le catalogue de noël à tante.lise@orange.fr ?",
    "c'est pour un cadeau, mon adresse c'est tante.lise@orange.fr, vous faites les paquets ?")


async def test_a_misunderstood_message_with_an_email_reaches_the_inbox_masked(stack, reviewer):
    answers = [texts(stack.say(f"review-{n}", said)) for n, said in enumerate(MISUNDERSTOOD)]
    assert not any(failure in answer for answer in answers for failure in FAILURES)
    http, csrf = await console_session(stack, reviewer)
    page = await (await http.get("/console/api/review")).json()
    assert "tante.lise" not in str(page)
    shown = [g for g in page["groups"] if "[e-mail]" in g["text"]]
    assert shown, f"none in the inbox; the bot said: {answers}"
    labelled = await http.post("/console/api/review/label", headers={"X-CSRF-Token": csrf},
                               json={"ids": shown[0]["ids"], "label": "out_of_scope"})
    assert labelled.status == 200
    await http.close()
    # What `python -m bot train` will train on, from this stack's shop database.
    from bot.core.settings import load_settings
    from bot.ops.training import export_reviewed

    [data] = export_reviewed(load_settings(stack.env), print)
    example = shown[0]["text"].replace("[e-mail]", "prenom.nom@example.org")
    assert f"- {example}" in data.read_text(encoding="utf-8")


async def test_a_new_model_is_swapped_in_while_shoppers_keep_talking(stack):
    """Rasa's `PUT /model` with a copy of the model in use (a retraining's result, as far
    as Rasa can tell): every message sent meanwhile gets its usual answer."""
    import aiohttp

    from bot.assistant.client import RasaClient
    from bot.core.settings import load_settings

    settings = load_settings(stack.env)
    current = (Path(stack.env["COMPTOIR_MODELS_DIR"]) / "current.tar.gz").resolve()
    copy = current.with_name("swap-test.tar.gz")
    shutil.copyfile(current, copy)
    answers, slowest, swapped = [], 0.0, asyncio.Event()

    async def shopper(number: int) -> None:
        nonlocal slowest
        async with aiohttp.ClientSession() as http:
            turn = 0
            while turn < 3 or not swapped.is_set():  # before, during and after the swap
                started = time.monotonic()
                async with http.post(f"{stack.url}/webhooks/rest/webhook", json={
                        "sender": f"swap-{number}-{turn // 15}",
                        "message": "horaires du magasin de lille"}) as response:
                    answers.append(texts(await response.json()))
                slowest = max(slowest, time.monotonic() - started)
                turn += 1
                await asyncio.sleep(0.5)

    async def swap() -> float:
        await asyncio.sleep(1.5)
        started = time.monotonic()
        try:
            async with aiohttp.ClientSession() as http:
                await RasaClient(http, settings.rasa_urls, settings.rasa_token,
                                 settings.action_server_url).load_model(str(copy))
        finally:
            swapped.set()
        return time.monotonic() - started

    try:
        *_, took = await asyncio.gather(*(shopper(n) for n in range(3)), swap())
    finally:
        copy.unlink(missing_ok=True)
    print(f"model swap: {took:.1f} s for {stack.replicas} replica(s); {len(answers)} answers "
          f"meanwhile, the slowest in {slowest:.2f} s")
    assert len(answers) >= 9 and all("Lille" in answer for answer in answers), answers
    stack.wait_for_line(r"gc: rasa froze \d+ objects after a model swap", timeout=60)


def answers_of(stack, channel):
    engine = make_engine(stack.shop_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT kind, intent, score FROM satisfaction WHERE channel = :c "
                                       "AND answered_at IS NOT NULL"), {"c": channel}).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_satisfaction_on_telegram_after_a_request_the_bot_served(stack, telegram):
    user = TELEGRAM_USER + 20
    telegram.push(telegram.user_message(user, "horaires du magasin de lille"))
    telegram.wait_for(lambda c: sent_to(telegram, user)(c) and "Lille" in c["text"])
    telegram.push(telegram.user_message(user, "merci beaucoup"))
    question = telegram.wait_for(lambda c: sent_to(telegram, user)(c)
                                 and c["text"] == satisfaction.QUESTION)[-1]
    keyboard = [b for row in question["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["text"] for b in keyboard] == ["👍 Oui", "👎 Pas vraiment"]
    telegram.push(telegram.button_tap(user, keyboard[0]["callback_data"]))
    telegram.wait_for(lambda c: sent_to(telegram, user)(c) and c["text"] == satisfaction.THANKS[1])
    assert ("bot", "ask_store_info", 1) in answers_of(stack, "telegram")
    before = len(telegram.calls)
    telegram.push(telegram.user_message(user, "merci encore"))  # asked once a day at most
    deadline = time.monotonic() + 30
    while not any(sent_to(telegram, user)(c) for c in telegram.calls[before:]):
        assert time.monotonic() < deadline, telegram.calls[before:]
        time.sleep(0.2)
    time.sleep(1)
    said = [c["text"] for c in telegram.calls[before:] if sent_to(telegram, user)(c)]
    assert said == ["Avec plaisir ! Puis-je vous aider pour autre chose ?"]


async def test_satisfaction_on_the_web_chat_after_an_agent_closed_the_ticket(stack, agent):
    client, session_id, events = await web_chat(stack)
    assert "Je vous passe un conseiller" in await web_turn(client, session_id, events,
                                                           "je voudrais parler à quelqu'un svp")
    http, csrf = await console_session(stack, agent)
    queue = (await (await http.get("/console/api/queue")).json())["tickets"]
    ticket = max((t for t in queue if t["channel"] == "web" and t["status"] == "open"),
                 key=lambda t: t["id"])
    for action in ("claim", "close"):
        done = await http.post(f"/console/api/tickets/{ticket['id']}/{action}",
                               headers={"X-CSRF-Token": csrf})
        assert (await done.json())["ok"] is True
    await http.close()
    closing = await next_of(events, "bot_uttered")
    assert closing["text"].startswith("Votre échange avec notre conseiller est terminé")
    question = await next_of(events, "bot_uttered")
    assert question["text"] == satisfaction.QUESTION
    assert [r["payload"] for r in question["quick_replies"]] == [satisfaction.YES, satisfaction.NO]
    await client.emit("user_uttered", {"message": satisfaction.NO, "session_id": session_id})
    assert (await next_of(events, "bot_uttered"))["text"] == satisfaction.THANKS[0]
    await client.eio.disconnect(abort=True)  # a plain disconnect() waits out the long-poll
    assert ("handover", "request_human", 0) in answers_of(stack, "web")


def test_the_inbox_and_the_dashboard_in_a_browser(stack, reviewer):
    shots = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(stack.url + "/console")
        page.get_by_label("Identifiant").fill(reviewer)
        page.get_by_label("Mot de passe").fill(AGENT_PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.get_by_role("link", name="Tableau de bord").click()
        page.wait_for_url("**/console/tableau-de-bord**")
        conversations = page.locator(".card", has_text="Conversations").locator("b")
        conversations.wait_for(timeout=15000)
        assert int(conversations.text_content()) > 100  # the seeded month
        page.locator("#table-non-references").wait_for(timeout=15000)
        assert page.locator("#chart-volume").bounding_box()["height"] > 100
        page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
        page.get_by_role("link", name="À revoir").click()
        # One of the seeded month's misunderstood messages, asked several times.
        group = page.locator(".group", has_text="venir essayer avant d'acheter")
        group.wait_for(timeout=15000)
        assert group.get_by_text("Le bot a compris : Non compris").is_visible()
        assert not page.get_by_role("button", name="Réentraîner").is_visible()  # admins only
        asked = int(group.locator(".count").text_content().split()[-1])
        page.screenshot(path=str(shots / "review-inbox.png"), full_page=True)
        group.get_by_label("Ce que le client voulait").select_option("ask_store_info")
        group.get_by_role("button", name="Valider").click()
        page.get_by_text(f"{asked} message(s) étiqueté(s) « Les horaires d'un magasin").wait_for(
            timeout=15000)
        browser.close()
