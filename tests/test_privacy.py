"""Identity, consent and data rights at the service level, on the real demo shop."""
import datetime as dt
import json
import zipfile
import io

import pytest
from sqlalchemy import inspect, select, text

from bot.core.chats import identity_for
from bot.core.messaging import Messenger, send_queued_mail
from bot.core.models import (ChatIdentity, ConsentLedgerEntry, Customer, DemandSignal,
                             PrivacyRequest, Reservation, ReviewMessage, Stock, Store)
from bot.core.replies import Note, Pending
from bot.customers import verification as ident
from bot.privacy import requests as privacy
from bot.privacy.desk import CODE_SENT, PrivacyDesk
from bot.privacy.proof import PrivacyAsk
from bot.review import capture
from bot.stock.reservations import hold
from tests.harness import SECRET, last_code

NOW = dt.datetime(2026, 3, 12, 10, 0)
CAMILLE = "camille.martin@example.org"


class Chat:
    def __init__(self, shop, outbox, sender="web-priv-1", now=NOW):
        self.shop, self.outbox, self.sender, self.now = shop, outbox, sender, now
        self.pending = None

    def say(self, kind, text, confirm=None):
        verifier = ident.Verifier(SECRET)
        with self.shop.begin() as session:
            desk = PrivacyDesk(session, verifier, self.now, SECRET)
            ask = PrivacyAsk(text=text, channel="web", sender=self.sender, pending=Pending.read(self.pending),
                             confirm=confirm)
            reply = getattr(desk, f"answer_{kind}")(ask)
        send_queued_mail(self.shop, Messenger(self.outbox))  # as the gateway does, after commit
        if "pending" in reply.slots:
            self.pending = reply.slots["pending"]
        return reply

    @staticmethod
    def text(reply):
        return "\n".join(m.get("text") or "" for m in reply.messages)


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "outbox"


def verify(chat, outbox, contact=CAMILLE):
    assert Chat.text(chat.say("verify", f"mon email c'est {contact}")) == CODE_SENT
    return chat.say("code", last_code(outbox, contact))


def test_an_unverified_chat_gets_nothing_personal_for_a_known_email(shop, outbox):
    chat = Chat(shop, outbox)
    asked = Chat.text(chat.say("summary", f"quelles données avez-vous sur {CAMILLE} ?"))
    known = Chat.text(chat.say("verify", f"c'est {CAMILLE}"))
    unknown = Chat.text(Chat(shop, outbox, "web-priv-2").say("verify", "c'est nobody@example.org"))
    assert known == unknown == CODE_SENT  # no account enumeration
    for said in (asked, known):
        assert "Camille" not in said and "Martin" not in said and "+336" not in said
    assert len(list(outbox.glob("*.txt"))) == 1  # only the real customer got a code


def test_the_right_code_links_the_chat_and_shows_the_summary(shop, outbox):
    chat = Chat(shop, outbox)
    chat.say("summary", "qu'avez-vous sur moi ?")
    assert chat.pending == "contact summary"
    chat.say("verify", CAMILLE)
    done = Chat.text(chat.say("code", last_code(outbox, CAMILLE)))
    assert done.startswith("Merci Camille, c'est bien vous.")
    assert "Voici ce que nous avons sur vous, Camille" in done and CAMILLE in done
    assert "anniversaire : 12 mars\n" in done and "1904" not in done  # day and month, no age
    with shop() as session:
        assert session.execute(select(PrivacyRequest.kind)).scalars().all() == ["access"]


def test_guessed_expired_and_exhausted_codes_are_refused(shop, outbox):
    chat = Chat(shop, outbox)
    chat.say("verify", CAMILLE)
    code = last_code(outbox, CAMILLE)
    wrong = "000000" if code != "000000" else "111111"
    assert "ne correspond pas" in Chat.text(chat.say("code", wrong))
    for _ in range(3):
        chat.say("code", wrong)
    assert "Trop d'essais" in Chat.text(chat.say("code", wrong))  # the fifth try
    assert "Trop d'essais" in Chat.text(chat.say("code", code))  # even the right one now

    late = Chat(shop, outbox, "web-priv-late")
    late.say("verify", CAMILLE)
    late.now = NOW + dt.timedelta(minutes=11)
    assert "a expiré" in Chat.text(late.say("code", last_code(outbox, CAMILLE)))
    with shop() as session:
        assert session.execute(select(ChatIdentity.customer_id).where(
            ChatIdentity.external_id.in_(("web-priv-1", "web-priv-late")))).scalars().all() == [None, None]


def test_codes_are_rate_limited_per_chat(shop, outbox):
    chat = Chat(shop, outbox)
    for _ in range(3):
        assert Chat.text(chat.say("verify", CAMILLE)) == CODE_SENT
    assert "plusieurs codes" in Chat.text(chat.say("verify", CAMILLE))


def test_known_and_unknown_contacts_get_the_same_answers_however_often_asked(shop, outbox):
    def answers(contact):
        return [Chat.text(Chat(shop, outbox, sender=f"probe-{n}-{contact}").say("verify", f"mon email : {contact}"))
                for n in range(ident.MAX_CODES_PER_CONTACT + 2)]

    known, unknown = answers(CAMILLE), answers("personne.inconnue@example.org")
    assert known == unknown
    assert known[:ident.MAX_CODES_PER_CONTACT] == [CODE_SENT] * ident.MAX_CODES_PER_CONTACT
    assert CODE_SENT not in known[ident.MAX_CODES_PER_CONTACT:]


def test_a_code_leaves_after_commit_from_the_mail_outbox(shop, outbox):
    from bot.core.models import QueuedMail

    verifier = ident.Verifier(SECRET)
    with shop.begin() as session:
        chat = identity_for(session, "web", "after-commit")
        assert verifier.request_code(session, chat, ident.read_contact(CAMILLE), NOW)
        assert not outbox.exists() or not list(outbox.iterdir())  # nothing sent mid-transaction
    with shop() as session:
        assert session.execute(select(QueuedMail.recipient)).scalars().all() == [CAMILLE]
    assert send_queued_mail(shop, Messenger(outbox)) == 1
    assert last_code(outbox, CAMILLE)
    assert send_queued_mail(shop, Messenger(outbox)) == 0  # sent once


def test_customer_tokens_forged_expired_or_replayed_are_refused(shop):
    key = "k" * 40
    good = ident.sign_customer_token(key, "800000000001", NOW + dt.timedelta(minutes=5), jti="j1")
    forged = ident.sign_customer_token("x" * 40, "800000000001", NOW + dt.timedelta(minutes=5))
    expired = ident.sign_customer_token(key, "800000000001", NOW - dt.timedelta(seconds=1))
    tampered = good.replace(good.split(".")[0], ident._b64(json.dumps(
        {"card": "800000000002", "exp": 9999999999, "jti": "j2"}).encode()))
    with shop.begin() as session:
        chat = identity_for(session, "web", "web-token")
        for bad in (forged, expired, tampered, "garbage", ""):
            assert ident.accept_customer_token(session, key, bad, chat, NOW) is None
        assert ident.accept_customer_token(session, None, good, chat, NOW) is None  # no secret set
        assert ident.accept_customer_token(session, key, good, chat, NOW) == 1
        other = identity_for(session, "web", "web-replay")
        assert ident.accept_customer_token(session, key, good, other, NOW) is None  # replayed


def test_an_export_has_all_of_one_customer_and_nothing_of_anyone_else(shop, outbox):
    chat = Chat(shop, outbox)
    verify(chat, outbox)
    link = Chat.text(chat.say("export", "je veux exporter mes données"))
    token = link.rsplit("/exports/", 1)[1]
    with shop.begin() as session:
        assert privacy.use_export_link(session, token[:-2] + "00", NOW) is None
        assert privacy.use_export_link(session, token, NOW + dt.timedelta(hours=25)) is None
        assert privacy.use_export_link(session, token, NOW + dt.timedelta(hours=23)) == 1
        assert privacy.use_export_link(session, token, NOW + dt.timedelta(hours=23)) is None  # once
    with shop() as session:
        data = privacy.export(session, 1, {"web-priv-1": []})
        purchases = session.execute(text("SELECT count(*) FROM purchases WHERE customer_id = 1")).scalar()
        consents = session.execute(text("SELECT count(*) FROM consents WHERE customer_id = 1")).scalar()
        others = session.execute(select(Customer.email).where(Customer.id != 1)).scalars().all()
    assert data["profile"][0]["email"] == CAMILLE
    assert data["profile"][0]["birthday"] == "--03-12"  # ISO 8601 day and month, no year
    assert len(data["purchases"]) == purchases > 0
    assert len(data["consents"]) == consents > 0
    assert {row["customer_id"] for table in ("purchases", "consents", "consent_ledger", "requests")
            for row in data[table]} == {1}
    blob = json.dumps(data)
    assert not any(email in blob for email in others if email)
    archive = zipfile.ZipFile(io.BytesIO(privacy.export_zip(data)))
    assert {"export.json", "profile.csv", "purchases.csv"} <= set(archive.namelist())


def test_corrections_are_validated_and_a_new_email_is_verified_first(shop, outbox):
    chat = Chat(shop, outbox)
    verify(chat, outbox)
    assert "votre date d'anniversaire ?" in Chat.text(chat.say("correct", "ma date de naissance est fausse"))
    assert "le jour et le mois, par exemple 12/03" in Chat.text(chat.say("correct", "31/02/1991"))
    assert "est à jour" in Chat.text(chat.say("correct", "03/03/1991"))
    with shop() as session:  # the year given is not kept
        assert session.get(Customer, 1).birthday == dt.date(1904, 3, 3)
    asked = Chat.text(chat.say("correct", "je veux changer mon email pour camille.neuve@example.org"))
    assert "j'envoie un code à ce nouveau contact (c•••@example.org)" in asked
    with shop() as session:
        assert session.get(Customer, 1).email == CAMILLE  # not before the code
    done = Chat.text(chat.say("code", last_code(outbox, "camille.neuve@example.org")))
    assert done == "C'est fait : votre adresse e-mail est mise à jour."
    with shop() as session:
        customer = session.get(Customer, 1)
        assert (customer.email, customer.birthday) == ("camille.neuve@example.org", dt.date(1904, 3, 3))


def test_stop_in_the_middle_of_a_stock_question_stops_this_chat_unverified(shop, outbox):
    chat = Chat(shop, outbox, "web-stop")
    chat.pending = "size"  # the bot had just asked for a size
    said = Chat.text(chat.say("stop", "STOP"))
    assert said.startswith("C'est noté : vous ne recevrez plus aucun message de notre part par chat du site")
    sms = Chat.text(chat.say("stop", "STOP SMS"))
    assert "Pour arrêter les messages par SMS, je dois savoir qui vous êtes" in sms
    with shop() as session:
        rows = session.execute(select(ConsentLedgerEntry).where(
            ConsentLedgerEntry.identity_id.isnot(None))).scalars().all()
    assert {(r.channel, r.new_state) for r in rows} == {("web", False)} and len(rows) == 4


def test_stop_sms_after_verification_withdraws_the_customers_sms_consents(shop, outbox):
    chat = Chat(shop, outbox)
    chat.say("stop", "je ne veux plus de SMS")
    assert chat.pending == "contact stop-sms"
    chat.say("verify", CAMILLE)
    done = Chat.text(chat.say("code", last_code(outbox, CAMILLE)))
    assert "par SMS" in done
    with shop() as session:
        granted = session.execute(text("SELECT count(*) FROM consents WHERE customer_id = 1 "
                                       "AND channel = 'sms' AND granted")).scalar()
    assert granted == 0


def test_the_ledger_cannot_be_altered_through_the_application(shop):
    with shop() as session:
        entry = session.execute(select(ConsentLedgerEntry)).scalars().first()
        entry.new_state = not entry.new_state
        with pytest.raises(RuntimeError, match="append-only"):
            session.flush()


def test_erasure_needs_two_confirmations_and_leaves_nothing_identifying(shop, outbox):
    chat = Chat(shop, outbox)
    verify(chat, outbox)
    with shop.begin() as session:  # what review kept of her chat, and of someone else's
        for sender in ("web-priv-1", "web-someone-else"):
            capture.note_turn(session, capture.Turn("kjhkjh", "web", sender), "fallback",
                              [Note("not_carried", asked="parfum X")], SECRET, NOW)
    first = chat.say("erase", "supprimez mes données")
    assert [b["title"] for b in first.messages[0]["buttons"]][0] == "Oui, supprimer mes données"
    second = chat.say("erase", "/erase_data", confirm="1")
    assert "Dernière confirmation" in Chat.text(second)
    with shop() as session:
        assert session.get(Customer, 1).email == CAMILLE  # nothing erased yet
    done = chat.say("erase", "/erase_data", confirm="2")
    assert done.messages[-1]["custom"]["comptoir_erase_conversations"] == ["web-priv-1"]
    with shop() as session:
        for needle in (CAMILLE, "+33639980001", "800000000001", "web-priv-1"):
            assert not _found_anywhere(session, needle), needle
        erased = session.get(Customer, 1)  # other customers may share her first name
        assert (erased.first_name, erased.last_name, erased.birthday) == (None, None, None)
        request = session.execute(select(PrivacyRequest).where(PrivacyRequest.kind == "erasure")).scalar_one()
        assert (request.status, request.customer_id) == ("done", 1)
        assert session.execute(text("SELECT count(*) FROM consent_ledger WHERE customer_id = 1")).scalar() > 0
        someone_else = capture.analytics_ref(SECRET, "web-someone-else")
        assert session.execute(select(ReviewMessage.conversation_ref)).scalars().all() == [someone_else]
        assert session.execute(select(DemandSignal.conversation_ref)).scalars().all() == [someone_else]


def test_the_last_erasure_confirmation_alone_erases_nothing(shop, outbox):
    chat = Chat(shop, outbox, sender="web-skip")
    verify(chat, outbox)
    skipped = chat.say("erase", "/erase_data", confirm="2")
    assert "Voulez-vous continuer ?" in Chat.text(skipped)  # back to the first question
    chat.say("erase", "/erase_data", confirm="1")
    chat.pending = None  # something else was said in between
    assert "Voulez-vous continuer ?" in Chat.text(chat.say("erase", "/erase_data", confirm="2"))
    with shop() as session:
        assert session.get(Customer, 1).email == CAMILLE


def erase_all(chat):
    chat.say("erase", "supprimez mes données")
    chat.say("erase", "/erase_data", confirm="1")
    return chat.say("erase", "/erase_data", confirm="2")


def test_erasure_gives_back_what_the_conversation_held_before_verifying(shop, outbox):
    chat = Chat(shop, outbox, sender="web-holder")
    with shop.begin() as session:
        row = session.execute(select(Stock).join(Store, Store.id == Stock.store_id).where(
            Store.kind == "store", Stock.quantity - Stock.reserved >= 2)).scalars().first()
        place, free = (row.variant_id, row.store_id), row.quantity - row.reserved
        hold(session, *place, 2, now=NOW, identity_id=identity_for(session, "web", "web-holder").id)
    verify(chat, outbox)
    erase_all(chat)
    with shop() as session:
        row = session.get(Stock, place)
        assert row.quantity - row.reserved == free
        assert session.execute(select(Reservation.status)).scalars().all() == ["cancelled"]


def test_erasure_empties_the_customers_tickets_and_touches_no_other_channel(shop, outbox):
    from bot.handover import tickets as handover
    from bot.handover.agents import create_agent
    from bot.core.models import HandoverTicket, TicketMessage, TicketNote

    chat = Chat(shop, outbox, sender="4242")
    with shop.begin() as session:
        agent_id = create_agent(session, "zoe", "Zoé", "a long password").id
        mine = [handover.open_ticket(session, "web", "4242", "demande du client").ticket_id]
        handover.add_message(session, mine[0], "customer", "je déménage au 8 rue Neuve à Lille")
        handover.add_note(session, mine[0], agent_id, "Mme Martin rappellera lundi")
        handover.finish(session, mine[0], "closed")
        mine.append(handover.open_ticket(session, "web", "4242", "demande du client").ticket_id)
        theirs = handover.open_ticket(session, "telegram", "4242", "demande du client").ticket_id
        handover.add_message(session, theirs, "customer", "bonjour, une question sur ma commande")
    verify(chat, outbox)
    erase_all(chat)
    with shop() as session:
        erased = [session.get(HandoverTicket, t) for t in mine]
        assert sorted(t.sender_id for t in erased) == sorted(f"effacé:{t}" for t in mine)
        assert {t.status for t in erased} == {"closed"}
        texts = session.execute(select(TicketMessage.text).where(TicketMessage.ticket_id.in_(mine))).scalars().all() \
            + session.execute(select(TicketNote.text).where(TicketNote.ticket_id.in_(mine))).scalars().all()
        assert texts == [privacy.ERASED_TEXT] * 2
        other = session.get(HandoverTicket, theirs)
        assert (other.channel, other.sender_id, other.status) == ("telegram", "4242", "open")
        assert session.execute(select(TicketMessage.text).where(TicketMessage.ticket_id == theirs)).scalar_one() \
            == "bonjour, une question sur ma commande"


def _found_anywhere(session, needle):
    for table in inspect(session.bind).get_table_names():
        columns = [c["name"] for c in inspect(session.bind).get_columns(table)
                   if str(c["type"]).startswith(("VARCHAR", "TEXT"))]
        for column in columns:
            if session.execute(text(f'SELECT 1 FROM "{table}" WHERE "{column}" LIKE :n LIMIT 1'),
                               {"n": f"%{needle}%"}).first():
                return f"{table}.{column}"
    return None


def test_staff_list_requests_with_due_dates_from_the_command_line(shop, shop_url, outbox, monkeypatch, capsys):
    from bot.ops.cli import main

    chat = Chat(shop, outbox)
    verify(chat, outbox)
    chat.say("summary", "mes données")
    monkeypatch.setenv("DATABASE_URL", shop_url)
    assert main(["requests", "--all"]) == 0
    out = capsys.readouterr().out
    assert "access" in out and "due 2026-04-11" in out


def test_a_code_taken_for_a_contact_is_still_read_as_the_code(shop, outbox):
    chat = Chat(shop, outbox)
    chat.say("verify", CAMILLE)
    assert Chat.text(chat.say("verify", last_code(outbox, CAMILLE))).startswith("Merci Camille")


def test_consents_are_shown_and_changed_per_purpose_and_channel(shop, outbox):
    chat = Chat(shop, outbox)
    verify(chat, outbox)
    shown = Chat.text(chat.say("consents", "mes abonnements"))
    assert shown.startswith("Vos choix de communication :") and "• Offres :" in shown
    granted = Chat.text(chat.say("change_consent", "j'accepte les offres par SMS"))
    assert granted == "C'est noté : vous acceptez désormais : offres (SMS)."
    objection = Chat.text(chat.say("change_consent", "n'utilisez plus mes achats pour me faire des suggestions"))
    assert objection.startswith("C'est noté : nous n'utiliserons plus vos achats")
    with shop() as session:
        sms = session.execute(text("SELECT granted FROM consents WHERE customer_id = 1 AND "
                                   "purpose = 'offers' AND channel = 'sms'")).scalar()
        personal = session.execute(text("SELECT count(*) FROM consents WHERE customer_id = 1 AND "
                                        "purpose = 'personalisation' AND granted")).scalar()
        kinds = session.execute(select(PrivacyRequest.kind)).scalars().all()
    assert sms in (1, True) and personal == 0 and "objection" in kinds


def test_an_objection_to_analytics_stops_review_capture_for_all_her_chats(shop, outbox):
    chat = Chat(shop, outbox, sender="web-analytics")
    verify(chat, outbox)
    assert "Analyse de nos échanges pour améliorer l'assistant (messages masqués) : oui, sauf si" \
        in Chat.text(chat.say("consents", "mes abonnements"))
    said = Chat.text(chat.say("change_consent", "je refuse l'analyse de mes messages"))
    assert said == ("C'est noté : nous ne garderons plus vos messages, même masqués, pour "
                    "améliorer notre assistant.")
    assert ": non, vous vous y êtes opposé" in Chat.text(chat.say("consents", "mes abonnements"))
    with shop.begin() as session:
        entry = session.execute(select(ConsentLedgerEntry).where(
            ConsentLedgerEntry.purpose == "analytics")).scalars().first()
        assert (entry.customer_id, entry.new_state) == (1, False)
        assert capture.objected(session, "web", "web-analytics")
        assert capture.note_turn(session, capture.Turn("kjhkjh", "web", "web-analytics"), "fallback",
                                 [], SECRET, NOW) == 0
        assert not capture.objected(session, "web", "web-stranger")


def test_real_smtp_is_used_when_configured(tmp_path):
    from tests.fake_smtp import FakeSMTP

    with FakeSMTP() as server:
        messenger = Messenger(tmp_path / "outbox", smtp_url=f"smtp://127.0.0.1:{server.port}")
        messenger.email("camille@example.org", "Votre code", "Votre code Comptoir : 123456")
    (message,) = server.messages
    assert message["rcpt"] == ["camille@example.org"]
    assert "Subject: Votre code" in message["data"] and "123456" in message["data"]
    assert not (tmp_path / "outbox").exists()  # nothing written locally


def test_a_password_never_goes_to_a_relay_without_starttls(tmp_path):
    from tests.fake_smtp import FakeSMTP

    with FakeSMTP() as server:  # it offers no STARTTLS
        messenger = Messenger(tmp_path / "outbox", smtp_url=f"smtp://shop:secret@127.0.0.1:{server.port}")
        with pytest.raises(RuntimeError, match="STARTTLS"):
            messenger.email("camille@example.org", "Votre code", "Votre code Comptoir : 123456")
    assert server.messages == []


def test_logging_out_or_erasing_revokes_the_export_links_not_yet_used(shop, outbox):
    chat = Chat(shop, outbox, sender="web-revoke")
    verify(chat, outbox)
    first = Chat.text(chat.say("export", "exportez mes données")).rsplit("/exports/", 1)[1]
    chat.say("logout", "déconnectez-moi")
    verify(chat, outbox)
    second = Chat.text(chat.say("export", "exportez mes données")).rsplit("/exports/", 1)[1]
    erase_all(chat)
    with shop.begin() as session:
        assert privacy.use_export_link(session, first, NOW) is None
        assert privacy.use_export_link(session, second, NOW) is None


def test_verification_lapses_after_half_an_hour_without_a_message(shop, outbox):
    chat = Chat(shop, outbox)
    verify(chat, outbox)
    with shop.begin() as session:  # their last message was 31 minutes ago
        identity = session.execute(select(ChatIdentity).where(
            ChatIdentity.external_id == "web-priv-1")).scalar_one()
        identity.last_seen_at = NOW - dt.timedelta(minutes=31)
        identity.verified_at = NOW - dt.timedelta(minutes=40)
    assert Chat.text(chat.say("summary", "mes données")).startswith("Pour protéger vos données")
