"""Stock conversations at the service level: what the shopper reads, checked against
the database, turn after turn with the context the slots would carry."""
import datetime as dt

import pytest
from sqlalchemy import select, update

from bot.core.models import Product, Reservation, Stock, Store
from bot.stock.catalog import CatalogIndex
from bot.stock.desk import StockDesk
from bot.stock.resolve import CONTEXT_SLOTS, StockAsk, parse_quantity

NOON = dt.datetime(2026, 3, 12, 11, 0, tzinfo=dt.timezone.utc)


class Conversation:
    def __init__(self, shop, sender="web-1", channel="web"):
        self.shop = shop
        self.sender = sender
        self.channel = channel
        self.context = {}
        with shop() as session:
            self.index = CatalogIndex.load(session)

    def say(self, kind, text, **entities):
        with self.shop.begin() as session:
            desk = StockDesk(session, self.index, NOON)
            ask = StockAsk(text=text, channel=self.channel, sender=self.sender,
                           context=dict(self.context), **entities)
            reply = getattr(desk, f"answer_{kind}")(ask)
        self.context.update({k: v for k, v in reply.slots.items() if k in CONTEXT_SLOTS})
        return reply

    @staticmethod
    def text(reply):
        return "\n".join(m["text"] for m in reply.messages)


def available(shop, sku, code):
    with shop() as session:
        row = session.execute(
            select(Stock.quantity - Stock.reserved).join(Store, Store.id == Stock.store_id)
            .where(Store.code == code, Stock.variant_id == _variant_id(session, sku))).first()
    return row[0] if row else None


def _variant_id(session, sku):
    from bot.core.models import Variant

    return session.execute(select(Variant.id).where(Variant.sku == sku)).scalar_one()


def test_ambiguous_model_offers_buttons_then_asks_only_what_was_not_said(shop):
    chat = Conversation(shop)
    first = chat.say("stock", "Vous avez les Pegasus 41 en 42 ?", product="Pegasus 41", size="42")
    assert [b["title"] for b in first.messages[0]["buttons"]] == [
        "Nike Pegasus 41 homme", "Nike Pegasus 41 femme"]
    payload = first.messages[0]["buttons"][0]["payload"]
    assert payload.startswith('/check_stock{"product":"P')

    assert payload.endswith(',"size":"42"}')  # the size said is not asked again
    sku = chat.index.search("pegasus 41 homme").matches[0].sku
    second = chat.say("stock", payload, product=sku, size="42")
    assert Conversation.text(second) == "Nike Pegasus 41 homme en 42 : quelle couleur préférez-vous ?"
    assert chat.context["pending"] == "colour"

    third = chat.say("stock", "noir a lyon part dieu", colour="noir", city="lyon part dieu")
    text = Conversation.text(third)
    assert text.startswith("Nike Pegasus 41 homme (42, noir) — 140 €")
    assert "À Lyon Part-Dieu : en stock." in text  # 4 units, documented demo stock
    assert chat.context["stock_store"] == "LYS-PDI"
    assert "Le mettre de côté" in [b["title"] for b in third.messages[0]["buttons"]]


def test_a_store_named_before_the_item_is_settled_is_kept_for_the_answer(shop):
    """The issue's own words: "slt vs avez les nike pegasus en 42 a lyon svp"."""
    chat = Conversation(shop)
    first = chat.say("stock", "slt vs avez les nike pegasus en 42 a lyon svp",
                     product="nike pegasus", size="42", city="lyon")
    men = first.messages[0]["buttons"][0]
    assert men["title"] == "Nike Pegasus 41 homme"
    second = chat.say("stock", men["payload"], product=chat.index.search("pegasus 41 homme").matches[0].sku,
                      size="42")
    assert "quelle couleur" in Conversation.text(second)
    third = chat.say("stock", "noir", colour="noir")  # the colour button, answered in context
    text = Conversation.text(third)
    assert text.startswith("Nike Pegasus 41 homme (42, noir) — 140 €")
    assert "À Lyon Part-Dieu : en stock." in text


def test_out_of_stock_here_points_to_the_nearest_store_with_distance_and_hours(shop):
    chat = Conversation(shop)
    reply = chat.say("stock", "pegasus 41 homme en 42 bleu à Lyon Part-Dieu")
    text = Conversation.text(reply)
    assert "À Lyon Part-Dieu : épuisé (retour prévu le mercredi 18 mars)." in text
    assert "En ligne : épuisé." in text
    assert "• Lyon Confluence (4 km) : en stock, " in text
    assert "Dans le même esprit, disponibles :" in text
    assert "Me prévenir de son retour" in [b["title"] for b in reply.messages[0]["buttons"]]


def test_context_follows_the_conversation_and_a_new_product_replaces_it(shop):
    chat = Conversation(shop)
    chat.say("stock", "pegasus 41 homme 42 noir a lille")
    assert "plus que 1" in Conversation.text(chat.say("stock", "et à Lille ?"))
    assert "(42, bleu)" in Conversation.text(chat.say("stock", "et en bleu ?"))
    vomero = chat.say("stock", "et les vomero 17 homme ?")
    assert "Nike Vomero 17 homme : quelle taille" in Conversation.text(vomero)


def test_hold_reserves_in_the_database_and_cancel_gives_it_back(shop):
    chat = Conversation(shop)
    chat.say("stock", "pegasus 41 homme 42 noir lyon part dieu")
    sku = chat.context["stock_variant"]
    before = available(shop, sku, "LYS-PDI")
    held = Conversation.text(chat.say("hold", "mettez m'en 2 de côté", quantity="2"))
    assert held.startswith("C'est fait : 2 × Nike Pegasus 41 homme (42, noir) vous attend à "
                           "Lyon Part-Dieu jusqu'au samedi 14 mars à 12h.")
    assert available(shop, sku, "LYS-PDI") == before - 2
    with shop() as session:
        code = session.execute(select(Reservation.code)).scalar_one()
    assert f"Votre code de retrait : {code}." in held

    stranger = Conversation(shop, sender="web-2")
    assert "pas de réservation" in Conversation.text(stranger.say("cancel", "annulez", code=code))
    cancelled = Conversation.text(chat.say("cancel", "annulez ma réservation"))
    assert cancelled == (f"Votre réservation {code} (2 × Nike Pegasus 41 homme à Lyon Part-Dieu) "
                         "est annulée.")
    assert available(shop, sku, "LYS-PDI") == before


def test_the_last_unit_cannot_be_held_twice(shop):
    first, second = Conversation(shop, "web-a"), Conversation(shop, "web-b")
    for chat in (first, second):
        chat.say("stock", "pegasus 41 homme 42 noir a lille")  # 1 unit left
    assert Conversation.text(first.say("hold", "gardez-le moi")).startswith("C'est fait")
    refused = Conversation.text(second.say("hold", "gardez-le moi"))
    assert refused.startswith("Désolé, Nike Pegasus 41 homme (42, noir) n'est plus disponible à "
                              "Lille Centre.")
    assert "Il reste du stock à : " in refused


@pytest.mark.parametrize("quantity", ["0", "6", "1000000", "-3", "beaucoup"])
def test_absurd_quantities_get_a_clear_answer(shop, quantity):
    chat = Conversation(shop)
    chat.say("stock", "pegasus 41 homme 42 noir lyon part dieu")
    text = Conversation.text(chat.say("hold", f"j'en veux {quantity}", quantity=quantity))
    assert "de 1 à 5 articles" in text


def test_nearest_store_asks_where_then_uses_a_postcode(shop):
    chat = Conversation(shop)
    chat.say("stock", "pegasus 41 homme 42 bleu")
    asked = Conversation.text(chat.say("nearest", "quel magasin près de chez moi l'a ?"))
    assert asked.startswith("Où êtes-vous ?")
    found = Conversation.text(chat.say("nearest", "69100", postcode="69100"))
    assert found.splitlines()[0] == "Nike Pegasus 41 homme (42, bleu), près de Villeurbanne :"
    assert found.splitlines()[1].startswith("• Lyon Confluence (7 km) : en stock")


def test_nearest_store_from_a_shared_location(shop):
    chat = Conversation(shop, channel="telegram")
    reply = chat.say("nearest", "", metadata={"location": {"latitude": 50.63, "longitude": 3.06}})
    assert Conversation.text(reply).splitlines()[1].startswith("• Lille Centre (1 km)")


def test_a_misspelt_model_offers_the_close_products(shop):
    chat = Conversation(shop)
    reply = chat.say("stock", "vous avez la magnificat ?", product="magnificat")
    assert "De'Longhi Magnifica S ECAM22.110" in [b["title"] for b in reply.messages[0]["buttons"]]


def test_a_product_we_do_not_carry_is_said_plainly_with_a_person_to_ask(shop):
    chat = Conversation(shop)
    reply = chat.say("stock", "vous avez des zzzqqq ?", product="zzzqqq")
    assert Conversation.text(reply).startswith("Nous ne vendons pas « zzzqqq », désolé")
    assert reply.messages[0]["buttons"] == [{"title": "Parler à un conseiller", "payload": "/request_human"}]


def test_a_brand_we_carry_but_not_that_product_offers_the_brand(shop):
    chat = Conversation(shop)
    reply = chat.say("stock", "je cherche la crème Nuxe Merveillance pour ma mère",
                     product="Nuxe Merveillance")
    assert Conversation.text(reply) == ("Nous ne vendons pas « Nuxe Merveillance », désolé. "
                                        "Ce qui s'en approche le plus chez nous :")
    titles = [b["title"] for b in reply.messages[0]["buttons"]]
    assert titles[-1] == "Parler à un conseiller"
    assert titles[:-1] and all("Nuxe" in title for title in titles[:-1])


def test_no_product_said_asks_which(shop):
    chat = Conversation(shop)
    asked = Conversation.text(chat.say("stock", ""))  # the greeting's "Vérifier un stock" button
    assert asked.startswith("Quel article cherchez-vous ?")


def test_alert_needs_a_choice_and_email_needs_verification(shop):
    chat = Conversation(shop)
    chat.say("stock", "hoka speedgoat 6 femme 38 vert à lille")
    offer = chat.say("alert", "prévenez-moi quand il revient")
    assert "En choisissant « Ici »" in Conversation.text(offer)
    assert [b["title"] for b in offer.messages[0]["buttons"]] == ["Ici", "Par e-mail", "Par SMS"]
    email = Conversation.text(chat.say("alert", "par mail", alert_channel="email"))
    assert "vérifier votre identité" in email
    here = Conversation.text(chat.say("alert", "ici", alert_channel="ici"))
    assert here.startswith("C'est noté : je vous préviens ici dès que Hoka Speedgoat 6 femme "
                           "(38, vert) est de retour à Lille Centre")


def test_parts_for_a_machine_named_in_the_message(shop):
    chat = Conversation(shop)
    text = Conversation.text(chat.say("parts", "il me faut des pieces pour ma magnifica s"))
    assert text.startswith("Pour votre De'Longhi Magnifica S ECAM22.110 :")
    assert "De'Longhi Filtre à eau DLSC002" in text and "Philips" not in text


def test_a_machine_whose_parts_are_all_withdrawn_gets_an_answer_not_silence(shop):
    from bot.core.models import Product, ProductLink

    with shop.begin() as session:
        machine = session.execute(select(Product).where(Product.name.like("%Magnifica S%"))).scalar_one()
        linked = session.execute(select(ProductLink.linked_product_id)
                                 .where(ProductLink.product_id == machine.id)).scalars().all()
        for product in session.execute(select(Product).where(Product.id.in_(linked))).scalars():
            product.active = False
    reply = Conversation(shop).say("parts", "il me faut des pieces pour ma magnifica s")
    assert Conversation.text(reply).startswith("Je n'ai pas de pièces ni de consommables en vente")
    assert reply.messages[0]["buttons"][0]["payload"] == "/request_human"


def test_a_part_named_with_the_brand_of_the_machine_is_answered_for_itself(shop):
    for text, product in [("il me faudrait le filtre Claris pour ma Krups", "filtre Claris"),
                          ("un filtre pour ma krups", "filtre")]:
        reply = Conversation(shop).say("parts", text, product=product)
        assert Conversation.text(reply) == (
            "Krups Filtre Claris F088 (14 €) : compatible avec les machines Krups Evidence "
            "EA8908 et Krups Arabica EA8110."), text
        buttons = reply.messages[0]["buttons"]
        assert buttons[0]["title"] == "Stock : Krups Filtre Claris F088"
        assert buttons[0]["payload"].startswith('/check_stock{"product":"P')
        assert [b["title"] for b in buttons[1:]] == [
            "Tout pour ma Krups Evidence EA8908", "Tout pour ma Krups Arabica EA8110"]


def test_a_part_that_does_not_fit_the_brand_named_says_so(shop):
    chat = Conversation(shop)
    reply = chat.say("parts", "le filtre AquaClean pour ma krups", product="filtre AquaClean")
    assert Conversation.text(reply).startswith(
        "Philips Filtre AquaClean CA6903 (17 €) : compatible avec les machines Philips Série "
        "2200 EP2220 et Philips Série 3300 EP3341, pas avec les machines Krups.")
    assert [b["title"] for b in reply.messages[0]["buttons"]] == [
        "Krups Evidence EA8908", "Krups Arabica EA8110"]
    assert chat.context["pending"] == "parts_product"


def test_a_brand_alone_offers_that_brands_machines(shop):
    reply = Conversation(shop).say("parts", "des pièces pour ma krups")
    assert Conversation.text(reply).startswith("Pour quelle machine Krups ?")
    assert [b["title"] for b in reply.messages[0]["buttons"]] == [
        "Krups Evidence EA8908", "Krups Arabica EA8110"]


def test_parts_from_the_purchases_of_a_verified_customer(shop):
    from bot.core.chats import identity_for
    from bot.core.models import Customer

    from bot.customers.consent import set_consent

    def personalisation(granted):
        with shop.begin() as session:  # an objection covers every channel
            for channel in ("email", "sms", "post", "telegram", "web"):
                set_consent(session, "personalisation", channel, granted, customer_id=sophie_id,
                            source_channel="web", wording_version="test")

    with shop.begin() as session:
        sophie = session.execute(select(Customer).where(
            Customer.email == "sophie.bernard@example.org")).scalar_one()
        sophie_id = sophie.id
        identity = identity_for(session, "web", "web-sophie")
        identity.customer_id, identity.verified_at = sophie.id, NOON.replace(tzinfo=None)
        identity.last_seen_at = NOON.replace(tzinfo=None)
    personalisation(True)
    text = Conversation.text(Conversation(shop, "web-sophie").say("parts", "des pièces pour ma machine"))
    assert "Pour votre De'Longhi Magnifica S ECAM22.110 :" in text
    personalisation(False)  # objection to profiling: purchases are no longer used
    text = Conversation.text(Conversation(shop, "web-sophie").say("parts", "des pièces pour ma machine"))
    assert text.startswith("Pour quelle machine ?")
    unverified = Conversation(shop, "web-other").say("parts", "des pièces pour ma machine")
    assert Conversation.text(unverified).startswith("Pour quelle machine ?")


def test_quantities_in_words_and_digits():
    assert [parse_quantity(v) for v in (None, "", "2", "deux", "une", "3 paires", "x")] == [
        1, 1, 2, 2, 1, 3, None]


def test_a_verified_customer_without_a_place_gets_their_home_store(shop):
    from bot.core.chats import identity_for
    from bot.core.models import Customer

    with shop.begin() as session:
        camille = session.get(Customer, 1)  # home store: Lyon Part-Dieu in the demo shop
        identity = identity_for(session, "web", "web-home")
        identity.customer_id = camille.id
        identity.verified_at = identity.last_seen_at = NOON.replace(tzinfo=None)
        home = session.get(Store, camille.home_store_id).name
    text = Conversation.text(Conversation(shop, "web-home").say("stock", "pegasus 41 homme 42 noir"))
    assert f"À {home} :" in text
    anonymous = Conversation.text(Conversation(shop, "web-anon").say("stock", "pegasus 41 homme 42 noir"))
    assert "À " not in anonymous.splitlines()[1]


def test_an_unverified_shopper_is_told_why_a_third_hold_is_refused(shop):
    chat = Conversation(shop, sender="web-hoarder")
    for city in ("lyon part dieu", "bordeaux"):
        chat.say("stock", f"pegasus 41 homme 42 noir {city}")
        assert Conversation.text(chat.say("hold", "gardez-le moi")).startswith("C'est fait")
    chat.say("stock", "pegasus 41 homme 43 noir lyon part dieu")
    sku = chat.context["stock_variant"]
    before = available(shop, sku, "LYS-PDI")
    refused = Conversation.text(chat.say("hold", "et celle-ci aussi"))
    assert refused.startswith("Vous avez déjà 2 réservations en cours, le maximum sans "
                              "identification.")
    assert "jusqu'à 5" in refused
    assert available(shop, sku, "LYS-PDI") == before


def test_unverified_shoppers_together_hold_at_most_half_of_a_shelf(shop):
    from bot.core.models import Variant

    with shop() as session:
        sku, code = session.execute(
            select(Variant.sku, Store.code).join(Stock, Stock.variant_id == Variant.id)
            .join(Store, Store.id == Stock.store_id)
            .where(Store.kind == "store", Stock.quantity == 2, Stock.reserved == 0)).first()
    first, second = Conversation(shop, "web-share-1"), Conversation(shop, "web-share-2")
    for chat in (first, second):
        chat.context.update(stock_variant=sku, stock_store=code)
    assert Conversation.text(first.say("hold", "gardez-le moi")).startswith("C'est fait")
    refused = Conversation.text(second.say("hold", "gardez-le moi"))
    assert refused.startswith("Sans identification, je ne peux mettre de côté qu'une partie du "
                              "stock d'un article dans un magasin")
    assert available(shop, sku, code) == 1  # one still on the shelf


def test_a_product_with_a_picture_and_a_page_is_answered_with_a_card(shop):
    chat = Conversation(shop)
    reply = chat.say("stock", "pegasus 41 homme 42 noir à lyon part dieu", product="pegasus 41 homme",
                     size="42", colour="noir", city="lyon part dieu")
    (message,) = reply.messages
    assert message["text"].startswith("Nike Pegasus 41 homme (42, noir) — 140 €\nÀ Lyon Part-Dieu :")
    (card,) = message["attachment"]["payload"]["elements"]
    assert message["attachment"]["payload"]["template_type"] == "generic"
    assert card["title"] == "Nike Pegasus 41 homme (42, noir)"
    assert card["subtitle"] == "140 €\n" + message["text"].split("\n", 1)[1]
    sku = reply.slots["stock_product"]
    assert card["image_url"] == f"/media/products/{sku}.png"  # the gateway's, relative: this desk has no public_url
    assert card["default_action"]["url"] == f"/produits/{sku}"
    postbacks = [{"title": b["title"], "payload": b["payload"]} for b in card["buttons"] if b["type"] == "postback"]
    assert postbacks == message["buttons"] and message["buttons"]

    with shop.begin() as session:
        session.execute(update(Product).where(Product.sku == sku).values(image_url=None))
        index = CatalogIndex.load(session)
    chat.index = index
    plain = chat.say("stock", "et en 42 noir ?", size="42", colour="noir")
    assert [set(m) for m in plain.messages] == [{"text", "buttons"}]  # no picture: the text as before
