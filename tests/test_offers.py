"""Birthday offers and the loyalty card at the service level, on the real demo shop."""
import datetime as dt
from zoneinfo import ZoneInfo
import threading

import pytest
from sqlalchemy import func, select

from bot.core.chats import identity_for
from bot.core.db import make_session_factory
from bot.core.messaging import Messenger, send_queued_mail
from bot.core.models import (BirthdayPush, ChatIdentity, ConsentLedgerEntry, Customer,
                             OutboundMessage, Product, Purchase, Variant, Voucher)
from bot.core.replies import Pending
from bot.customers import verification as ident
from bot.customers.birthday import format_birthday, read_birthday
from bot.customers.consent import set_consent
from bot.offers.birthday import choose_offer, issue_birthday_voucher, window_for
from bot.offers.desk import ASK_BIRTHDAY, OffersDesk
from bot.offers.loyalty import activate_card_number, programme_text
from bot.offers.pushes import claim_queued, plan_pushes, queue_push, run_birthday_pushes
from bot.offers.rules import RulesError, load_rules
from bot.offers.vouchers import (VOUCHER_RE, check_voucher, code_from_image_path, image_path,
                                 qr_png, use_voucher)
from bot.privacy.desk import CODE_SENT, PrivacyDesk
from bot.privacy.proof import ASK_CONTACT, PrivacyAsk
from tests.harness import SECRET, last_code

RULES = load_rules()
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 12, 10, 0)  # naive UTC like the database: 11:00 in Paris
TODAY = dt.date(2026, 3, 12)


class Chat:
    def __init__(self, shop, outbox, sender="web-offers-1", now=NOW, channel="web"):
        self.shop, self.outbox, self.sender, self.now, self.channel = shop, outbox, sender, now, channel
        self.pending = None

    def say(self, kind, text):
        verifier = ident.Verifier(SECRET)
        with self.shop.begin() as session:
            privacy = PrivacyDesk(session, verifier, self.now, SECRET)
            offers = OffersDesk(privacy, RULES)
            ask = PrivacyAsk(text=text, channel=self.channel, sender=self.sender,
                             pending=Pending.read(self.pending))
            reply = getattr(offers, f"answer_{kind}", None) or getattr(privacy, f"answer_{kind}")
            reply = reply(ask)
        send_queued_mail(self.shop, Messenger(self.outbox))  # as the gateway does, after commit
        if "pending" in reply.slots:
            self.pending = reply.slots["pending"]
        return reply

    @staticmethod
    def text(reply):
        return "\n".join(m.get("text") or "" for m in reply.messages)

    def verify(self, email):
        assert self.text(self.say("verify", email)) == CODE_SENT
        return self.say("code", last_code(self.outbox, email))


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "outbox"


def variant_of(session, category):
    return session.execute(select(Variant.id).join(Product).where(Product.category == category)
                           .order_by(Variant.id)).scalars().first()


def new_member(session, email, *, birthday=dt.date(1990, 3, 12), status="active",
               personalisation=True, bought=(), birthday_channels=("email",), card=None):
    """A member with explicit purchases: [(category, days ago)]."""
    customer = Customer(first_name="Test", last_name="Membre", email=email, birthday=birthday,
                        loyalty_status=status, loyalty_card=card, loyalty_points=1234,
                        phone=None, preferred_channel="email")
    session.add(customer)
    session.flush()
    for category, days_ago in bought:
        session.add(Purchase(customer_id=customer.id, variant_id=variant_of(session, category),
                             store_id=1, quantity=1, amount_cents=1000,
                             purchased_at=NOW - dt.timedelta(days=days_ago)))
    if personalisation:
        set_consent(session, "personalisation", "email", True, customer_id=customer.id,
                    source_channel="store", wording_version="test")
    for channel in birthday_channels:
        set_consent(session, "birthday", channel, True, customer_id=customer.id,
                    source_channel="store", wording_version="test")
    return customer.id


# The window -------------------------------------------------------------------------------------

@pytest.mark.parametrize("birthday,today,open_now,opens", [
    (dt.date(1990, 3, 12), dt.date(2026, 3, 12), True, dt.date(2026, 3, 5)),
    (dt.date(1990, 3, 12), dt.date(2026, 3, 5), True, dt.date(2026, 3, 5)),    # 7 days before
    (dt.date(1990, 3, 12), dt.date(2026, 3, 4), False, dt.date(2026, 3, 5)),   # one day early
    (dt.date(1990, 3, 12), dt.date(2026, 4, 11), True, dt.date(2026, 3, 5)),   # 30 days after
    (dt.date(1990, 3, 12), dt.date(2026, 4, 12), False, dt.date(2027, 3, 5)),  # closed: next year
    (dt.date(1985, 1, 3), dt.date(2026, 12, 28), True, dt.date(2026, 12, 27)),  # across new year
    (dt.date(1985, 12, 30), dt.date(2026, 1, 20), True, dt.date(2025, 12, 23)),
    (dt.date(1992, 2, 29), dt.date(2027, 2, 21), True, dt.date(2027, 2, 21)),   # 28 Feb in 2027
])
def test_offer_window(birthday, today, open_now, opens):
    window, is_open = window_for(birthday, today, RULES)
    assert (is_open, window.opens) == (open_now, opens)
    assert window.closes == window.birthday + dt.timedelta(days=30)


# On request, once a year --------------------------------------------------------------------------

def test_verified_member_gets_one_voucher_with_an_image_and_the_same_one_again(shop, outbox):
    with shop.begin() as session:
        new_member(session, "anna@example.org")
    chat = Chat(shop, outbox)
    asked = chat.say("birthday", "c'est mon anniversaire !")
    assert Chat.text(asked) == ASK_CONTACT  # nothing before proof
    followed = chat.verify("anna@example.org")  # what was asked follows a good code
    text = Chat.text(followed)
    assert "Joyeux anniversaire" in text
    code = VOUCHER_RE.search(text).group(0)
    assert "20 % de remise sur les vêtements et accessoires de running" not in text  # no purchases
    assert "10 € de remise sur tout le magasin, dès 50 € d'achat" in text
    assert "Valable jusqu'au samedi 11 avril inclus" in text and "en ligne" in text
    image = [m["image"] for m in followed.messages if m.get("image")]
    assert image == [f"http://127.0.0.1:8080{image_path(SECRET, code)}"]
    assert code_from_image_path(SECRET, image[0]) == code
    again = Chat.text(chat.say("birthday", "mon bon d'anniversaire ?"))
    assert code in again and "un seul par an" in again
    with shop.begin() as session:
        assert session.execute(select(func.count()).select_from(Voucher).join(Customer).where(
            Customer.email == "anna@example.org")).scalar_one() == 1


def test_two_requests_at_once_make_one_voucher(shop):
    with shop.begin() as session:
        customer_id = new_member(session, "duo@example.org")
    window, _ = window_for(dt.date(1990, 3, 12), TODAY, RULES)
    factory = shop
    codes, barrier = [], threading.Barrier(4)

    def request():
        barrier.wait()
        with factory.begin() as session:
            voucher, _ = issue_birthday_voucher(session, session.get(Customer, customer_id),
                                                       window, TODAY, RULES)
            codes.append(voucher.code)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(codes)) == 1 and len(codes) == 4


def test_outside_the_window_says_when_it_opens(shop, outbox):
    with shop.begin() as session:
        new_member(session, "later@example.org", birthday=dt.date(1990, 6, 20))
    chat = Chat(shop, outbox)
    chat.verify("later@example.org")
    text = Chat.text(chat.say("birthday", "j'ai droit à un cadeau ?"))
    assert "s'ouvrira le samedi 13 juin" in text and "jusqu'au lundi 20 juillet" in text
    assert not VOUCHER_RE.search(text)


def test_not_a_member_hears_about_the_programme_and_a_pending_card_is_offered_activation(shop, outbox):
    chat = Chat(shop, outbox)
    chat.verify("lucas.petit@example.org")  # demo customer without a card
    text = Chat.text(chat.say("birthday", "mon cadeau d'anniversaire"))
    assert "réservée aux membres" in text and "gratuite" in text and "activer ma carte" in text
    with shop.begin() as session:
        new_member(session, "pending@example.org", status="pending", card="800099990001")
    other = Chat(shop, outbox, sender="web-offers-2")
    other.verify("pending@example.org")
    reply = other.say("birthday", "c'est mon anniv")
    assert "n'est pas encore activée" in Chat.text(reply)
    assert reply.messages[0]["buttons"][0]["payload"] == "/activate_card"


def test_unknown_birthday_is_asked_and_stored_with_the_birthday_consent(shop, outbox):
    with shop.begin() as session:
        customer_id = new_member(session, "nobday@example.org", birthday=None, birthday_channels=())
    chat = Chat(shop, outbox)
    chat.verify("nobday@example.org")
    assert Chat.text(chat.say("birthday", "j'ai droit à un cadeau d'anniversaire ?")) == ASK_BIRTHDAY
    assert chat.pending == "birthday_date"
    assert "pas reconnu" in Chat.text(chat.say("birthday_date", "bientôt"))
    text = Chat.text(chat.say("code", "le 10 mars"))  # the NLU may take a date for a code
    assert "votre anniversaire est le 10 mars" in text and "Joyeux anniversaire" in text
    with shop.begin() as session:
        assert session.get(Customer, customer_id).birthday == dt.date(1904, 3, 10)
        ledger = session.execute(select(ConsentLedgerEntry).where(
            ConsentLedgerEntry.customer_id == customer_id,
            ConsentLedgerEntry.purpose == "birthday")).scalars().all()
        assert [(e.channel, e.new_state) for e in ledger] == [("web", True)]


@pytest.mark.parametrize("text,expected", [
    ("12 mars", (3, 12)), ("le 12 mars 1985", (3, 12)), ("12/03/1985", (3, 12)),
    ("1er avril", (4, 1)), ("je suis né le 29 fevrier", (2, 29)), ("03/11/85", (11, 3)),
    ("12/03", (3, 12)), ("1985-03-12", (3, 12)), ("--03-12", (3, 12)), ("31/02/1990", None), ("demain", None), ("12/13", None),
])
def test_birthday_dates_in_french_forms_keep_day_and_month_only(text, expected):
    """A year written is not kept: a birthday offer needs none, and no answer needs the age."""
    day = read_birthday(text)
    assert (day.month, day.day) == expected if expected else day is None
    if day is not None:
        assert day.year == 1904 and format_birthday(day) in ("12 mars", "1er avril", "29 février", "3 novembre")


# Personal, not creepy ------------------------------------------------------------------------------

@pytest.mark.parametrize("bought,personalisation,rule,categories", [
    ([("chaussures de running", 20)], True, "running", ["textile running", "accessoires running"]),
    ([("machines à café", 200)], True, "coffee", ["cafés et capsules", "pièces et entretien"]),
    # Running textile just bought: the offer leaves it out.
    ([("chaussures de running", 300), ("textile running", 5)], True, "running", ["accessoires running"]),
    # Books bought last week: a books offer now would be for what was just bought.
    ([("livres", 7)], True, "generic", None),
    ([("jardin", 400), ("jardin", 100), ("livres", 300)], True, "garden", ["jardin"]),
    ([("chaussures de running", 20)], False, "generic", None),  # no consent: no profiling
    ([], True, "generic", None),
    ([("chaussures de running", 1000)], True, "generic", None),  # too old to say anything
])
def test_offer_rules(shop, bought, personalisation, rule, categories):
    with shop.begin() as session:
        customer_id = new_member(session, f"rules-{rule}-{len(bought)}@example.org",
                                 bought=bought, personalisation=personalisation)
        offer = choose_offer(session, customer_id, TODAY, RULES)
    assert offer.rule == rule
    assert (list(offer.categories) if offer.categories else None) == categories
    if rule == "generic":
        assert (offer.amount_cents, offer.minimum_cents, offer.percent_off) == (1000, 5000, None)


def test_rules_name_only_categories_of_the_catalog(shop):
    with shop.begin() as session:
        categories = set(session.execute(select(Product.category).distinct()).scalars())
    for rule in RULES.rules:
        assert set(rule.bought) <= categories and set(rule.offer) <= categories, rule.name


def test_a_broken_rules_file_is_refused_by_name(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("birthday: {days_before: 7}\n")
    with pytest.raises(RulesError, match="rules.yml"):
        load_rules(path)


# Vouchers at the till ------------------------------------------------------------------------------

def test_vouchers_are_used_once_and_refused_with_the_reason(shop):
    with shop.begin() as session:
        customer_id = new_member(session, "till@example.org")
        window, _ = window_for(dt.date(1990, 3, 12), TODAY, RULES)
        voucher, _ = issue_birthday_voucher(session, session.get(Customer, customer_id),
                                                   window, TODAY, RULES)
        code = voucher.code
    with shop.begin() as session:
        assert check_voucher(session, code.lower(), TODAY).status == "valid"
        assert check_voucher(session, "ANNIV-XXXX-XXXX", TODAY).status == "unknown"
        late = check_voucher(session, code, dt.date(2026, 4, 12))
        assert late.status == "expired" and "a expiré le 11/04/2026" in late.reason
    factory = shop
    outcomes, barrier = [], threading.Barrier(3)

    def scan(store):
        barrier.wait()
        with factory.begin() as session:
            outcomes.append(use_voucher(session, code, store, NOW, TODAY).status)

    threads = [threading.Thread(target=scan, args=(s,)) for s in ("LYS-PDI", "PAR-RIV", "WEB")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["used", "used", "used_now"]
    with shop.begin() as session:
        again = check_voucher(session, code, TODAY)
        assert again.status == "used" and "déjà été utilisé le 12/03/2026" in again.reason
        assert again.as_json()["used_where"] in ("LYS-PDI", "PAR-RIV", "WEB")


def test_voucher_image_is_a_png_behind_a_signed_path():
    path = image_path(SECRET, "ANNIV-ABCD-EFGH")
    assert code_from_image_path(SECRET, path) == "ANNIV-ABCD-EFGH"
    assert code_from_image_path(SECRET, path.replace("ABCD", "ABCE")) is None
    assert code_from_image_path("another secret" * 3, path) is None
    assert qr_png("ANNIV-ABCD-EFGH").startswith(b"\x89PNG\r\n\x1a\n")


# Loyalty card ----------------------------------------------------------------------------------------

def test_card_status_points_and_activation_from_a_chat(shop, outbox):
    with shop.begin() as session:
        new_member(session, "card@example.org", status="pending", card="800099990002")
    chat = Chat(shop, outbox, sender="tg:555", channel="telegram")
    assert Chat.text(chat.say("loyalty", "ma carte est-elle active ?")) == ASK_CONTACT
    assert "n'est pas encore activée" in Chat.text(chat.verify("card@example.org"))
    assert "ne correspond pas" in Chat.text(chat.say("activate", "activer la carte 800099990003"))
    done = Chat.text(chat.say("activate", "activez ma carte 800099990002"))
    assert "est active" in done and "•••• 0002" in done and "tous nos magasins" in done
    status = Chat.text(chat.say("loyalty", "combien j'ai de points"))
    assert "est active, dans tous nos magasins" in status and "1 234 points" in status \
        and "1 bon(s) de 10 €" in status
    with shop.begin() as session:
        customer = session.execute(select(Customer).where(Customer.email == "card@example.org")).scalar_one()
        assert (customer.loyalty_status, customer.loyalty_activated_via) == ("active", "telegram")


def test_activation_by_card_number_starts_with_a_code_and_a_till_activates_in_any_store(shop, outbox):
    with shop.begin() as session:
        new_member(session, "card2@example.org", status="pending", card="800099990004")
        new_member(session, "card3@example.org", status="pending", card="800099990005")
    chat = Chat(shop, outbox)
    assert Chat.text(chat.say("activate", "je veux activer ma carte 800099990004")) == CODE_SENT
    done = chat.say("code", last_code(outbox, "card2@example.org"))
    assert "C'est fait : votre carte •••• 0004 est active" in Chat.text(done)
    with shop.begin() as session:
        assert activate_card_number(session, "800099990005", "MRS-TDP", NOW) == "activated"
        assert activate_card_number(session, "800099990005", "LIL-CTR", NOW) == "already"
        assert activate_card_number(session, "123456789012", "LIL-CTR", NOW) == "unknown"
        customer = session.execute(select(Customer).where(Customer.email == "card3@example.org")).scalar_one()
        assert customer.loyalty_activated_via == "MRS-TDP"


# Pushed on the day ----------------------------------------------------------------------------------

def at_paris(hour, minute=0, day=TODAY):
    return dt.datetime.combine(day, dt.time(hour, minute)).replace(
        tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


def emails_to(outbox, address):
    return [p for p in outbox.glob("*email*.txt") if f"To: {address}" in p.read_text()]


def run(shop, outbox, now):
    factory = shop
    return run_birthday_pushes(factory, RULES, now, SECRET, "http://shop.test",
                                      Messenger(outbox))


def test_the_daily_push_sends_once_within_quiet_hours(shop, outbox):
    with shop.begin() as session:
        new_member(session, "push@example.org", bought=[("machines à café", 90)])
    assert run(shop, outbox, at_paris(8, 59)) == (0, 0)  # before 9:00 Paris time
    assert emails_to(outbox, "push@example.org") == []
    queued, sent = run(shop, outbox, at_paris(9, 5))
    assert queued >= 1 and sent == queued
    [mail] = emails_to(outbox, "push@example.org")
    body = mail.read_text()
    assert "Joyeux anniversaire Test" in body and "25 % de remise sur le café" in body
    assert "http://shop.test/vouchers/ANNIV-" in body and "STOP" in body
    assert run(shop, outbox, at_paris(9, 10)) == (0, 0)  # the job runs again: nothing twice
    assert run(shop, outbox, at_paris(19, 59)) == (0, 0)
    assert len(emails_to(outbox, "push@example.org")) == 1
    run(shop, outbox, at_paris(10, 0, dt.date(2027, 3, 12)))  # next year: a new one
    assert len(emails_to(outbox, "push@example.org")) == 2


def test_quiet_hours_hold_the_push_until_morning(shop, outbox):
    with shop.begin() as session:
        new_member(session, "night@example.org")
    assert run(shop, outbox, at_paris(20, 0)) == (0, 0)
    assert run(shop, outbox, at_paris(23, 30, TODAY - dt.timedelta(days=1))) == (0, 0)
    assert emails_to(outbox, "night@example.org") == []


def test_a_crash_mid_run_and_a_double_run_never_send_twice(shop, outbox):
    with shop.begin() as session:
        ids = [new_member(session, f"crash{i}@example.org") for i in range(3)]
    factory = shop
    with factory.begin() as session:
        plans = [p for p in plan_pushes(session, RULES, at_paris(10)) if p.customer_id in ids]
    with factory.begin() as session:  # queued, then the gateway dies before sending
        queue_push(session, plans[0], RULES, SECRET, "http://shop.test")
    with factory.begin() as session:  # claimed, then it dies in the middle of sending
        queue_push(session, plans[1], RULES, SECRET, "http://shop.test")
    with factory.begin() as session:
        claimed = claim_queued(session)
    assert len(claimed) == 2
    with factory.begin() as session:
        stuck = claimed[1]
        session.get(BirthdayPush, claimed[0]).status = "queued"  # only the second was claimed
    barrier = threading.Barrier(2)

    def job():
        barrier.wait()
        run(shop, outbox, at_paris(10, 5))

    threads = [threading.Thread(target=job) for _ in range(2)]  # two replicas after restart
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = [len(emails_to(outbox, f"crash{i}@example.org")) for i in range(3)]
    with factory.begin() as session:
        stuck_status = session.get(BirthdayPush, stuck).status
        vouchers = session.execute(select(func.count()).select_from(Voucher)
                                   .where(Voucher.customer_id.in_(ids))).scalar_one()
    # The push whose send was cut off stays "sending": at most once, never twice.
    assert sorted(counts) == [0, 1, 1] and stuck_status == "sending" and vouchers == 3


def test_consent_decides_the_channel_and_telegram_gets_the_image(shop, outbox):
    with shop.begin() as session:
        none_id = new_member(session, "noconsent@example.org", birthday_channels=())
        tg_id = new_member(session, "tg@example.org", birthday_channels=("telegram", "email"))
        stopped_id = new_member(session, "stopped@example.org", birthday_channels=("telegram",))
        session.get(Customer, tg_id).preferred_channel = "telegram"
        for customer_id, chat_id in ((tg_id, "tg:9001"), (stopped_id, "tg:9002")):
            chat = identity_for(session, "telegram", chat_id)
            chat.customer_id, chat.verified_at = customer_id, NOW
        session.flush()
        stopped_chat = identity_for(session, "telegram", "tg:9002")
        set_consent(session, "birthday", "telegram", False, identity_id=stopped_chat.id,
                    source_channel="telegram", wording_version="stop")  # STOP in that chat
    with shop.begin() as session:
        plans = {p.customer_id: p for p in plan_pushes(session, RULES, at_paris(11))}
    assert none_id not in plans and stopped_id not in plans
    assert plans[tg_id].channel == "telegram"
    run(shop, outbox, at_paris(11))
    with shop.begin() as session:
        [message] = session.execute(select(OutboundMessage).join(ChatIdentity).where(
            ChatIdentity.external_id == "tg:9001", OutboundMessage.kind == "birthday")).scalars().all()
        assert message.image_url.startswith("http://shop.test/vouchers/ANNIV-")
        assert "Joyeux anniversaire" in message.text
    assert emails_to(outbox, "tg@example.org") == []


def test_dry_run_lists_the_days_pushes_without_sending(shop_database, capsys):
    from bot.ops.cli import main
    from bot.core.db import make_engine

    engine = make_engine(shop_database)

    def counts():
        with make_session_factory(engine).begin() as session:
            return [session.execute(select(func.count()).select_from(table)).scalar_one()
                    for table in (BirthdayPush, Voucher)]

    before = counts()
    assert main(["offers", "push", "--date", "2026-03-12", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "client 1\temail\trunning\t" in out  # Camille Martin, born on the seeding day
    assert "@" not in out and "Martin" not in out  # ids, not contacts
    assert main(["offers", "push", "--date", "2026-03-13", "--dry-run"]) == 0
    assert "client 1\t" not in capsys.readouterr().out
    assert counts() == before  # nothing issued, nothing sent
    engine.dispose()


# Promo codes ---------------------------------------------------------------------------------------

def test_a_promo_code_question_gets_what_the_customer_can_really_get_never_a_code(shop, outbox):
    with shop.begin() as session:
        new_member(session, "promo@example.org", birthday=dt.date(1990, 3, 15), card="800000009998")
        new_member(session, "later@example.org", birthday=dt.date(1990, 9, 1), card="800000009999")
    stranger = Chat(shop, outbox, sender="web-promo-0")
    first = stranger.say("promo", "vous avez un code promo ?")
    text = Chat.text(first)
    assert text.startswith("Je n'ai pas de code promo à vous donner ici")
    assert programme_text(RULES) in text
    assert not VOUCHER_RE.search(text)
    assert [b["payload"] for b in first.messages[0]["buttons"]] == [
        "/birthday_offer", "/loyalty_card", "/request_human"]

    member = Chat(shop, outbox, sender="web-promo-1")
    member.verify("promo@example.org")
    text = Chat.text(member.say("promo", "un petit code de réduction pour une fidèle cliente ?"))
    assert "votre offre anniversaire vous attend, jusqu'au mardi 14 avril" in text
    assert "Vous avez 1 234 points" in text and not VOUCHER_RE.search(text)

    later = Chat(shop, outbox, sender="web-promo-2")
    later.verify("later@example.org")
    text = Chat.text(later.say("promo", "des promos ?"))
    assert "votre offre anniversaire, à partir du mardi 25 août" in text
    with shop() as session:  # asking never issues a voucher
        assert session.execute(select(func.count(Voucher.id))).scalar() == 0
