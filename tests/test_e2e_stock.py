"""End to end, stock and stores: hours, a stock question with its size, a hold and its
cancellation, buttons, the nearest store from a shared position, a back-in-stock alert
after a stock update, a product we do not carry, a product imported while running.
"""
import re
import subprocess
import sys

import pytest

from bot.core.settings import PROJECT_ROOT
from tests.harness import STOCK_TOKEN, outbox_code, texts

pytestmark = pytest.mark.slow


def test_greeting_and_store_hours(stack):
    greeting = stack.say("client-1", "bonjour")
    assert greeting[0]["recipient_id"] == "client-1"
    assert "Bonjour" in greeting[0]["text"] and "stock" in greeting[0]["text"]
    assert greeting[0]["buttons"]

    lille = texts(stack.say("client-1", "horaires du magasin de lille svp"))
    assert "Lille Centre — 31 rue Neuve, 59000 Lille" in lille

    assert "Pour quel magasin" in texts(stack.say("client-2", "vous etes ouverts dimanche ?"))
    assert "Bordeaux Sainte-Catherine" in texts(stack.say("client-2", "Bordeaux"))


def test_stock_question_size_hold_and_cancel(stack):
    first = stack.say("shopper-1", "slt vous avez les pegasus 41 homme ?")
    assert "quelle taille" in texts(first)
    answer = texts(stack.say("shopper-1", "en 42 noir a lyon part dieu"))
    assert "Nike Pegasus 41 homme (42, noir)" in answer
    assert "À Lyon Part-Dieu : en stock." in answer
    held = texts(stack.say("shopper-1", "mettez le moi de côté svp"))
    assert held.startswith("C'est fait : 1 × Nike Pegasus 41 homme (42, noir) vous attend à "
                           "Lyon Part-Dieu")
    code = re.search(r"code de retrait : ([A-Z0-9]{6})", held).group(1)
    cancelled = texts(stack.say("shopper-1", "finalement annulez ma réservation"))
    assert f"Votre réservation {code}" in cancelled and "est annulée" in cancelled


def test_the_three_text_messages_of_the_nlu_brief(stack):
    """"slt vs avez les nike pegasus en 42 a lyon svp", "jvoudrais plus recevoir vos sms",
    "c mon anniv jai droit a koi": each reaches its capability, nothing said is asked again."""
    choices = stack.say("sms-1", "slt vs avez les nike pegasus en 42 a lyon svp")
    men = next(b for b in choices[0]["buttons"] if b["title"] == "Nike Pegasus 41 homme")
    assert "quelle couleur" in texts(stack.say("sms-1", men["payload"]))  # 42 is remembered
    answer = texts(stack.say("sms-1", "noir"))
    assert answer.startswith("Nike Pegasus 41 homme (42, noir)") and "À Lyon Part-Dieu :" in answer

    email = "justine.robert@example.org"
    assert texts(stack.say("sms-2", "jvoudrais plus recevoir vos sms")).startswith(
        "Pour arrêter les messages par SMS, je dois savoir qui vous êtes.")
    stack.say("sms-2", email)
    done = texts(stack.say("sms-2", outbox_code(stack, email)))
    assert "vous ne recevrez plus aucun message de notre part par SMS" in done

    email = "sophie.bernard@example.org"
    assert texts(stack.say("sms-3", "c mon anniv jai droit a koi")).startswith("Pour protéger vos données")
    stack.say("sms-3", email)
    offer = stack.say("sms-3", outbox_code(stack, email))
    assert "Merci Sophie" in texts(offer) and "anniversaire" in texts(offer[1:])


def test_buttons_payloads_work_through_the_gateway(stack):
    choices = stack.say("shopper-2", "vous avez les Pegasus 41 ?")
    buttons = choices[0]["buttons"]
    assert [b["title"] for b in buttons] == ["Nike Pegasus 41 homme", "Nike Pegasus 41 femme"]
    sizes = stack.say("shopper-2", buttons[1]["payload"])
    assert "Nike Pegasus 41 femme : quelle taille" in texts(sizes)
    size_38 = next(b for b in sizes[0]["buttons"] if b["title"] == "38")
    colours = stack.say("shopper-2", size_38["payload"])
    assert "Nike Pegasus 41 femme en 38 : quelle couleur" in texts(colours)
    black = next(b for b in colours[0]["buttons"] if b["title"] == "noir")
    assert "Nike Pegasus 41 femme (38, noir) — 140 €" in texts(stack.say("shopper-2", black["payload"]))


def test_nearest_store_from_a_telegram_location(stack):
    stack.say("shopper-3", "vous avez la tondeuse bosch rotak ?")
    reply = stack.say("shopper-3", "quel magasin près de chez moi l'a ?",
                      metadata={"location": {"latitude": 45.77, "longitude": 4.89}})
    assert "près de votre position" in texts(reply)


def test_back_in_stock_alert_is_delivered_once_after_a_stock_update(stack):
    stack.say("shopper-4", "hoka speedgoat 6 femme en 38 vert à lille")
    offer = stack.say("shopper-4", "prévenez-moi quand il revient")
    here = next(b for b in offer[0]["buttons"] if b["title"] == "Ici")
    assert "je vous préviens ici" in texts(stack.say("shopper-4", here["payload"]))

    status, _ = stack.post("/api/stock", {"updates": [{"sku": "x", "store": "LIL-CTR", "quantity": 1}]})
    assert status == 401
    auth = {"Authorization": f"Bearer {STOCK_TOKEN}"}
    status, body = stack.post("/api/stock", {"updates": [{"sku": "nope", "store": "LIL-CTR",
                                                          "quantity": 1}]}, auth)
    assert status == 400 and "article inconnu" in body["error"]
    sku = "P000022-03"  # Hoka Speedgoat 6 femme, 38, vert (demo catalog order)
    status, body = stack.post("/api/stock", {"updates": [{"sku": sku, "store": "LIL-CTR",
                                                          "quantity": 3}]}, auth)
    assert (status, body["alerts_queued"]) == (200, 1)
    next_turn = texts(stack.say("shopper-4", "merci"))
    assert "Bonne nouvelle : Hoka Speedgoat 6 femme (38, vert) est de retour en stock à Lille Centre" in next_turn
    assert "Bonne nouvelle" not in texts(stack.say("shopper-4", "merci"))


def test_a_product_we_do_not_carry_is_said_plainly_with_a_person_to_ask(stack):
    replies = stack.say("unknown-1", "Bonjour, est-ce que vous avez le parfum Chloé Nomade en stock ?")
    assert texts(replies).startswith("Nous ne vendons pas")
    assert "/request_human" in [b["payload"] for r in replies for b in r.get("buttons") or []]


def test_stop_in_the_middle_of_a_stock_question(stack):
    assert "quelle taille" in texts(stack.say("stopper-1", "vous avez les pegasus 41 homme ?"))
    stopped = texts(stack.say("stopper-1", "STOP"))
    assert stopped.startswith("C'est noté : vous ne recevrez plus aucun message de notre part")


def test_a_product_imported_while_running_is_answered_at_once(stack, tmp_path):
    """No restart, no retraining: the action server's catalog notices the new product."""
    before = texts(stack.say("imported-1", "vous avez les hoka mafate speed 4 à lyon part dieu ?"))
    assert "Hoka Mafate Speed 4" not in before
    products, inventory = tmp_path / "products.tsv", tmp_path / "inventory.tsv"
    products.write_text("id\ttitle\tbrand\tproduct_type\tprice\tgtin\n"
                        "MAFATE-4\tHoka Mafate Speed 4\tHoka\tRunning > Chaussures de trail\t165.00 EUR\t"
                        "4006381333931\n", encoding="utf-8")
    inventory.write_text("store_code\tid\tquantity\tavailability\nLYS-PDI\tMAFATE-4\t3\tin_stock\n",
                         encoding="utf-8")
    for kind, path in (("products", products), ("inventory", inventory)):
        done = subprocess.run([sys.executable, "-m", "bot", "import", kind, str(path)], cwd=PROJECT_ROOT,
                              env=stack.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    answer = texts(stack.say("imported-2", "vous avez les hoka mafate speed 4 à lyon part dieu ?"))
    assert "Hoka Mafate Speed 4" in answer and "165 €" in answer and "À Lyon Part-Dieu : en stock." in answer
