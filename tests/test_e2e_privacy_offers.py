"""End to end, personal data and offers: data rights with the one-time code from the mail
outbox, a birthday voucher with its image used at a till, promo-code questions.
"""
import concurrent.futures
import io
import json
import re
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.harness import TILL_TOKEN, outbox_code, text_found, texts

pytestmark = pytest.mark.slow


def test_a_promo_code_question_gets_what_can_really_be_had_never_a_code(stack):
    from bot.offers.vouchers import VOUCHER_RE

    answer = texts(stack.say("promo-1", "Bonjour, auriez-vous un code promo pour ma prochaine visite ?"))
    assert answer.startswith("Je n'ai pas de code promo à vous donner ici")
    assert "carte de fidélité est gratuite" in answer and not VOUCHER_RE.search(answer)


def test_birthday_voucher_with_its_image_then_used_at_a_till(stack):
    """Camille Martin's birthday is the seeding day, which is today for this stack."""
    from bot.offers.vouchers import VOUCHER_RE

    email, sender = "camille.martin@example.org", "birthday-1"
    asked = texts(stack.say(sender, "c'est mon anniversaire, j'ai droit à un cadeau ?"))
    assert asked.startswith("Pour protéger vos données") and "Camille" not in asked
    stack.say(sender, email)
    replies = stack.say(sender, outbox_code(stack, email))
    code = VOUCHER_RE.search(texts(replies)).group(0)
    assert "les vêtements et accessoires de running" in texts(replies)  # she runs, and agreed
    [image] = [r["image"] for r in replies if r.get("image")]
    assert image.startswith(stack.url + f"/vouchers/{code}/")
    with urllib.request.urlopen(image, timeout=30) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read().startswith(b"\x89PNG")
    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(image.replace(code, "ANNIV-AAAA-AAAA"), timeout=30)
    assert forged.value.code == 404
    assert code in texts(stack.say(sender, "mon bon d'anniversaire ?"))  # the same one, again
    # A birthday email may have left on the day (outside quiet hours): hers carries that
    # code. (Other members born near the seeding day get theirs, with their own codes.)
    outbox = Path(stack.env["COMPTOIR_VAR_DIR"]) / "outbox"
    to_her = [path.read_text() for path in outbox.glob("*email*.txt")]
    to_her = [sent for sent in to_her if sent.startswith(f"To: {email}\n")]
    assert {found for sent in to_her for found in VOUCHER_RE.findall(sent)} <= {code}

    till = {"Authorization": f"Bearer {TILL_TOKEN}"}
    assert stack.post(f"/api/vouchers/{code}/use", {"store": "LYS-PDI"})[0] == 401
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # four tills scan it at once
        results = sorted(pool.map(lambda store: stack.post(f"/api/vouchers/{code}/use", {"store": store}, till),
                                  ("LYS-PDI", "PAR-RIV", "LIL-CTR", "WEB")), key=lambda result: result[0])
    assert [(status, body.get("status")) for status, body in results][0] == (200, "used_now")
    assert [status for status, _ in results[1:]] == [409, 409, 409]
    assert all(body["reason"].startswith("Ce bon a déjà été utilisé le") for _, body in results[1:])
    assert "déjà utilisé votre bon anniversaire" in texts(stack.say(sender, "c'est mon anniversaire"))


def test_data_rights_end_to_end_with_the_code_from_the_outbox(stack):
    email, phone = "julien.moreau@example.org", "+33639980002"
    sender = "rights-1"
    asked = texts(stack.say(sender, "quelles données avez-vous sur moi ?"))
    assert asked.startswith("Pour protéger vos données") and "Julien" not in asked
    sent = texts(stack.say(sender, email))
    assert "un code à 6 chiffres vient d'être envoyé" in sent
    summary = texts(stack.say(sender, outbox_code(stack, email)))
    assert "Merci Julien, c'est bien vous." in summary
    assert f"• Contact : {email}, {phone}" in summary

    link = re.search(r"(/exports/\S+)", texts(stack.say(sender, "je veux exporter mes données"))).group(1)
    with urllib.request.urlopen(stack.url + link, timeout=30) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    exported = json.loads(archive.read("export.json"))
    assert exported["profile"][0]["email"] == email
    assert "quelles données avez-vous sur moi ?" in [m["text"] for m in exported["conversations"][sender]]

    first = stack.say(sender, "supprimez mes données")
    second = stack.say(sender, first[0]["buttons"][0]["payload"])
    assert "Dernière confirmation" in texts(second)
    done = texts(stack.say(sender, second[0]["buttons"][0]["payload"]))
    assert done.startswith("C'est fait : vos données personnelles sont supprimées.")
    for needle in (email, phone, "800000000002", sender):
        assert text_found(stack.shop_url, needle) is None, needle
        assert text_found(stack.trackers_url, needle) is None, needle
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(stack.url + link, timeout=30)
    assert gone.value.code == 410  # the link died with the data
