"""What Comptoir answers to stock questions: plain Python over the stock services.

Each `answer_*` takes a `StockAsk` (what the shopper said, the entities and the context
kept in slots) and returns a `Reply` (French messages with buttons, and slot updates).
What the shopper means is found by `bot.stock.resolve`, the words are in
`bot.stock.wording`; actions only translate trackers to `StockAsk` and replies to the
dispatcher.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.chats import identity_for
from bot.core.models import Store, Variant
from bot.core.replies import Note, Pending, Reply, button
from bot.core.text import clip, format_date, format_time, normalise
from bot.stock import alerts, availability, reservations, wording
from bot.stock.catalog import CatalogIndex, ProductInfo, VariantInfo
from bot.stock.parts import PartsDesk
from bot.stock.resolve import CONTEXT_SLOTS, Resolver, StockAsk, parse_quantity
from bot.stores import directory
from bot.stores.geo import Place, place_from_metadata


class StockDesk:
    """The stock services behind one conversation turn, with the shop's clock."""

    def __init__(self, session: Session, index: CatalogIndex, now: dt.datetime,
                 timezone: str = "Europe/Paris", hold_hours: int = 48, public_url: str = "") -> None:
        self.session = session
        self.public_url = public_url  # what product image and page paths are relative to
        self.index = index
        self.now = now
        self.local_now = now.astimezone(ZoneInfo(timezone))
        self.today = self.local_now.date()
        self.hold_hours = hold_hours
        self.resolver = Resolver(session, index, now)

    def _product_and_variant(self, ask: StockAsk, reply: Reply
                             ) -> Tuple[Optional[ProductInfo], Optional[VariantInfo]]:
        """What the shopper means; short of a variant, the question that finds it (which
        product, size or colour) or the word that we do not sell it."""
        meant = self.resolver.product(ask)
        if meant.product is None:
            if meant.choices:
                reply.say(*wording.which_product(meant.choices, ask.size, ask.colour))
            else:
                reply.say(*wording.not_carried(ask.product, meant.not_carried))
                asked = ask.product or " ".join(meant.not_carried.leftover)
                if asked:
                    reply.notes.append(Note("not_carried", asked=asked))
            reply.slots.update(stock_product=None, stock_variant=None, stock_size=None,
                               stock_colour=None, pending=None)
            return None, None
        product = meant.product
        found = self.resolver.variant(ask, product)
        if found.variant is not None:
            return product, found.variant
        reply.slots.update(stock_product=product.sku, stock_variant=None, stock_size=found.size,
                           stock_colour=found.colour)
        if found.size is None and len(product.sizes) > 1:
            reply.say(*wording.which_size(product))
            reply.asking(Pending("size"))
        else:
            reply.say(*wording.which_colour(product, found.size))
            reply.asking(Pending("colour"))
        return product, None

    def _remember_named_store(self, ask: StockAsk, reply: Reply) -> None:
        """A store named while the item is still being asked for is kept for the answer."""
        named = self.resolver.named_place(ask)
        if named is not None and named[0] is not None:
            reply.slots["stock_store"] = named[0].code

    def answer_stock(self, ask: StockAsk) -> Reply:
        reply = Reply()
        product, variant = self._product_and_variant(ask, reply)
        if variant is None:
            self._remember_named_store(ask, reply)
            return reply
        store, origin = self.resolver.place(ask)
        report = availability.stock_report(self.session, product, variant, store, origin, self.today)
        text, buttons = wording.stock_report(report, product, variant, origin, self.index,
                                             self._today_hours)
        if product.image_url and product.link:
            reply.card(text, buttons, wording.product_card(product, variant, text, buttons,
                                                           self.public_url))
        else:
            reply.say(text, buttons)
        reply.slots.update(stock_product=product.sku, stock_variant=variant.sku,
                           stock_size=variant.size, stock_colour=variant.colour,
                           stock_store=report.store.code if report.store else None, pending=None)
        unavailable = report.at_store is None or report.at_store.available <= 0
        if report.store is not None and unavailable:
            reply.notes.append(Note("not_available", product.sku, variant.sku,
                                    store_code=report.store.code))
        elif report.store is None and report.online.available <= 0:
            reply.notes.append(Note("not_available", product.sku, variant.sku, store_code="online"))
        return reply

    def _today_hours(self, store_id: int) -> str:
        store = self.session.get(Store, store_id)
        return directory.hours_view(store, self.now).today_line

    def answer_nearest(self, ask: StockAsk) -> Reply:
        reply = Reply()
        store, origin = self.resolver.place(ask)
        if origin is None or (store is not None and not (ask.city or ask.postcode)
                              and not place_from_metadata(ask.metadata)
                              and self.resolver.gazetteer.find_in_text(ask.text) is None):
            reply.say("Où êtes-vous ? Donnez-moi une ville ou un code postal "
                      "(ou partagez votre position sur Telegram).")
            reply.asking(Pending("nearest_place"))
            return reply
        known = self.resolver.context_variant(ask)
        if known:
            product, variant = known
            found = availability.stores_with_stock(self.session, variant.id, origin)
            title = wording.title(product, variant)
            if not found:
                reply.say(f"Aucun magasin n'a {title} en ce moment.",
                          [button("Me prévenir de son retour", "notify_back_in_stock")])
            else:
                lines = [f"{title}, près de {origin.label} :"]
                for near in found:
                    lines.append(f"• {near.store.name} ({near.distance_km:.0f} km) : "
                                 f"{availability.band(near.available)}, {self._today_hours(near.store.id)}")
                reply.say("\n".join(lines), [button(f"Le réserver à {n.store.name}", "hold_item",
                                                    city=n.store.name) for n in found])
            reply.slots["pending"] = None
            return reply
        lines = [f"Nos magasins les plus proches de {origin.label} :"]
        for near_store, km in availability.nearest_stores(self.session, origin):
            view = directory.hours_view(near_store, self.now)
            lines.append(f"• {near_store.name} ({km:.0f} km) — {near_store.address}, "
                         f"{near_store.postcode} {near_store.city} — {view.today_line}")
        reply.say("\n".join(lines))
        reply.slots["pending"] = None
        return reply

    def answer_hold(self, ask: StockAsk) -> Reply:
        reply = Reply()
        known = self.resolver.context_variant(ask)
        if known is None:
            if self.resolver.names_a_product(ask):
                reply = self.answer_stock(ask)
                if reply.slots.get("stock_variant") and reply.slots.get("stock_store"):
                    ask.context.update({k: v for k, v in reply.slots.items() if k in CONTEXT_SLOTS})
                    return self.answer_hold(ask)
                return reply
            return reply.say("Quel article souhaitez-vous que je mette de côté ? "
                             "Dites-moi la marque, le modèle et la taille.")
        product, variant = known
        store, _origin = self.resolver.place(ask)
        if store is None:
            reply.asking(Pending("hold_store"))
            return reply.say("Dans quel magasin voulez-vous le retirer ? Indiquez-moi la ville.")
        quantity = parse_quantity(ask.quantity)
        if quantity is None or not 1 <= quantity <= reservations.MAX_HOLD_QUANTITY:
            return reply.say(f"Je peux mettre de côté de 1 à {reservations.MAX_HOLD_QUANTITY} "
                             "articles à la fois. Combien en voulez-vous ?")
        identity = identity_for(self.session, ask.channel, ask.sender)
        title = wording.title(product, variant)
        try:
            with self.session.begin_nested():
                held = reservations.hold(self.session, variant.id, store.id, quantity,
                                         now=self.now.replace(tzinfo=None), hours=self.hold_hours,
                                         identity_id=identity.id, customer_id=identity.customer_id)
        except reservations.HoldRefused as refused:
            if refused.limits is not None:
                return reply.say(wording.hold_limit_text(refused.reason, refused.limits))
            if refused.reason == "online":
                return reply.say("La mise de côté se fait en magasin. Dans quelle ville "
                                 "voulez-vous le retirer ?")
            available = availability.availability(self.session, variant.id, store.id, self.today).available
            text = (f"Désolé, il n'y a plus assez de {title} à {store.name} pour en mettre "
                    f"{quantity} de côté." if available > 0 else
                    f"Désolé, {title} n'est plus disponible à {store.name}.")
            others = availability.stores_with_stock(self.session, variant.id,
                                             Place(store.city, store.latitude, store.longitude),
                                             exclude=store.id)
            if others:
                text += " Il reste du stock à : " + ", ".join(
                    f"{o.store.name} ({o.distance_km:.0f} km)" for o in others) + "."
            return reply.say(text, [button(f"Le réserver à {o.store.name}", "hold_item",
                                           city=o.store.name) for o in others])
        until = held.expires_at.replace(tzinfo=dt.timezone.utc).astimezone(self.local_now.tzinfo)
        reply.say(f"C'est fait : {quantity} × {title} vous attend à {store.name} jusqu'au "
                  f"{format_date(until.date())} à {format_time(until.time())}.\n"
                  f"Votre code de retrait : {held.code}. Présentez-le en caisse.\n"
                  "Pour annuler, écrivez « annuler ma réservation ».")
        reply.slots.update(stock_store=store.code, pending=None)
        return reply

    def answer_cancel(self, ask: StockAsk) -> Reply:
        reply = Reply()
        identity = identity_for(self.session, ask.channel, ask.sender)
        cancelled = reservations.cancel(self.session, identity.id, ask.code)
        if not cancelled:
            if ask.code:
                return reply.say(f"Je ne trouve pas de réservation en cours avec le code "
                                 f"{clip(ask.code, 12)} dans cette conversation.")
            return reply.say("Vous n'avez pas de réservation en cours dans cette conversation.")
        for held in cancelled:
            variant = self.session.get(Variant, held.variant_id)
            store = self.session.get(Store, held.store_id)
            product = self.index.products.get(variant.product_id)
            name = product.name if product else "l'article"
            reply.say(f"Votre réservation {held.code} ({held.quantity} × {name} à {store.name}) "
                      "est annulée.")
        return reply

    def answer_alert(self, ask: StockAsk) -> Reply:
        reply = Reply()
        known = self.resolver.context_variant(ask)
        if known is None:
            return reply.say("Pour quel article voulez-vous être prévenu ? Dites-moi la marque, "
                             "le modèle et la taille.")
        product, variant = known
        title = wording.title(product, variant)
        choice = normalise(ask.alert_channel or "")
        if not choice:
            return reply.say(f"Je peux vous prévenir dès que {title} sera de retour. "
                             f"Comment souhaitez-vous être prévenu ?\n{alerts.ALERT_WORDING}",
                             [button("Ici", "notify_back_in_stock", alert_channel="ici"),
                              button("Par e-mail", "notify_back_in_stock", alert_channel="email"),
                              button("Par SMS", "notify_back_in_stock", alert_channel="sms")])
        if choice in ("email", "sms", "e mail", "mail"):
            return reply.say(
                "Pour vous écrire par e-mail ou SMS, je dois d'abord vérifier votre identité, ce "
                "que je ne peux pas encore faire dans cette conversation. Je peux en revanche vous "
                "prévenir ici même.",
                [button("Ici", "notify_back_in_stock", alert_channel="ici")])
        store_code = ask.context.get("stock_store")
        store = (self.session.execute(select(Store).where(Store.code == store_code)).scalar_one_or_none()
                 if store_code else None)
        identity = identity_for(self.session, ask.channel, ask.sender)
        created = alerts.subscribe_here(self.session, identity, variant.id,
                                        store.id if store else None)
        where = f" à {store.name}" if store else ""
        if created:
            return reply.say(f"C'est noté : je vous préviens ici dès que {title} est de retour"
                             f"{where}, une seule fois. Écrivez STOP pour annuler.")
        return reply.say(f"Vous êtes déjà inscrit : je vous préviendrai ici dès que {title} "
                         f"est de retour{where}.")

    def answer_parts(self, ask: StockAsk) -> Reply:
        return PartsDesk(self.session, self.index).answer(ask)
