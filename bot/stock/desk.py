"""What Comptoir answers to stock questions: plain Python over the stock services.

Each `answer_*` takes a `StockAsk` (what the shopper said, the entities and the context
kept in slots) and returns a `Reply` (French messages with buttons, and slot updates).
Actions only translate trackers to `StockAsk` and replies to the dispatcher.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.chats import find_identity, identity_for
from bot.core.models import ChatIdentity, Customer, ProductLink, Purchase, Store, Variant
from bot.core.replies import Reply, button
from bot.core.text import clip, format_date, format_time, normalise
from bot.privacy.consent import allows_personalisation
from bot.privacy.verification import verified_customer
from bot.stock import alerts, availability, reservations
from bot.stock.catalog import (CatalogIndex, ProductInfo, SearchResult, VariantInfo, match_value,
                               read_variant, tokens_of)
from bot.stores import directory
from bot.stores.geo import Gazetteer, Place, place_from_metadata

CONTEXT_SLOTS = ("stock_product", "stock_variant", "stock_size", "stock_colour", "stock_store",
                 "pending")
MAX_BUTTONS = 10
# Without a product entity, a message replaces the product in context only if it names
# another one clearly (one rare word typed right, or several words).
SWITCH_SCORE = 5.0


@dataclass
class StockAsk:
    text: str
    channel: str  # "web" or "telegram"
    sender: str
    product: Optional[str] = None
    size: Optional[str] = None
    colour: Optional[str] = None
    city: Optional[str] = None
    postcode: Optional[str] = None
    quantity: Optional[str] = None
    code: Optional[str] = None
    alert_channel: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    context: Dict[str, Optional[str]] = field(default_factory=dict)  # CONTEXT_SLOTS values


def hold_limit_text(reason: str, limits: reservations.HoldLimits) -> str:
    """Why this holder cannot hold more, and what would let them."""
    verified = limits is reservations.VERIFIED
    more = "" if verified else (
        f" Une fois identifié avec l'e-mail ou le téléphone de votre carte de fidélité, vous "
        f"pourrez en réserver jusqu'à {reservations.VERIFIED.open_holds}.")
    if reason == "open_holds":
        return (f"Vous avez déjà {limits.open_holds} réservations en cours, le maximum"
                f"{'' if verified else ' sans identification'}. Annulez-en une (« annuler ma "
                "réservation ») pour en faire une autre." + more)
    if reason == "units_per_article":
        return (f"Je peux mettre de côté au plus {limits.units_per_article} exemplaires d'un "
                f"même article par client{'' if verified else ' non identifié'}." + more)
    if reason == "unverified_share":
        return ("Sans identification, je ne peux mettre de côté qu'une partie du stock d'un "
                "article dans un magasin, et cette part est déjà réservée ici. Vous pouvez "
                "passer directement en magasin, ou vous identifier pour réserver." + more)
    return ("Vous avez fait beaucoup de réservations aujourd'hui : je ne peux pas en "
            "enregistrer d'autres avant demain. Un conseiller peut vous aider si besoin "
            "(écrivez « parler à un conseiller »).")


class StockDesk:
    """The stock services behind one conversation turn, with the shop's clock."""

    def __init__(self, session: Session, index: CatalogIndex, now: dt.datetime,
                 timezone: str = "Europe/Paris", hold_hours: int = 48) -> None:
        self.session = session
        self.index = index
        self.now = now
        self.local_now = now.astimezone(ZoneInfo(timezone))
        self.today = self.local_now.date()
        self.hold_hours = hold_hours
        physical = session.execute(select(Store).where(Store.kind == "store")).scalars().all()
        self.gazetteer = Gazetteer((s.city, s.postcode, s.latitude, s.longitude) for s in physical)
        self.store_words = {w for s in physical for w in normalise(s.name).split()}

    # Resolution --------------------------------------------------------------------
    def _context_product(self, ask: StockAsk) -> Optional[ProductInfo]:
        sku = ask.context.get("stock_product")
        return self.index.by_sku.get(sku.lower()) if sku else None

    def _context_variant(self, ask: StockAsk) -> Optional[Tuple[ProductInfo, VariantInfo]]:
        sku = ask.context.get("stock_variant")
        return self.index.by_variant_sku.get(sku.lower()) if sku else None

    def _strip_known_words(self, text: str, product: Optional[ProductInfo]) -> str:
        """The message without sizes, colours and places: what may name a new product."""
        noise = {w for name in self.gazetteer.known_city_words() for w in name.split()}
        noise |= self.store_words
        if product is not None:
            noise |= {normalise(v) for v in product.sizes + product.colours}
        words = normalise(text).split()
        return " ".join(w for w in words if w not in noise)

    def resolve_place(self, ask: StockAsk) -> Tuple[Optional[Store], Optional[Place]]:
        """The store the shopper means, and the point to measure distances from."""
        named = self._named_place(ask)
        if named is not None:
            return named
        code = ask.context.get("stock_store")
        if code:
            store = self.session.execute(select(Store).where(Store.code == code)).scalar_one_or_none()
            if store:
                return store, Place(store.city, store.latitude, store.longitude)
        home = self._home_store(ask)
        if home is not None:
            return home, Place(home.city, home.latitude, home.longitude)
        return None, None

    def _named_place(self, ask: StockAsk) -> Optional[Tuple[Optional[Store], Place]]:
        """The place given in this message (shared location, city, postcode), if any."""
        located = place_from_metadata(ask.metadata)
        if located:
            return None, located
        for query in (ask.city, ask.postcode):
            if query:
                found = directory.find_stores(self.session, query)
                if found and not query.isdigit():
                    store = found[0]
                    return store, Place(store.city, store.latitude, store.longitude)
                place = (self.gazetteer.from_postcode(query) if query.isdigit()
                         else self.gazetteer.from_city(query))
                if place:
                    return None, place
        place = self.gazetteer.find_in_text(ask.text)
        if place:
            found = directory.find_stores(self.session, place.label)
            if found and normalise(found[0].city) == normalise(place.label):
                named = [s for s in found if f" {normalise(s.name)} " in f" {normalise(ask.text)} "]
                return (named or found)[0], place
            return None, place
        return None

    def _remember_named_store(self, ask: StockAsk, reply: Reply) -> None:
        """A store named while the item is still being asked for is kept for the answer."""
        named = self._named_place(ask)
        if named is not None and named[0] is not None:
            reply.slots["stock_store"] = named[0].code

    def _home_store(self, ask: StockAsk) -> Optional[Store]:
        """A verified customer's home store, when they name no place."""
        identity = find_identity(self.session, ask.channel, ask.sender)
        customer_id = verified_customer(identity, self.now.replace(tzinfo=None))
        customer = self.session.get(Customer, customer_id) if customer_id else None
        if customer is None or customer.home_store_id is None:
            return None
        return self.session.get(Store, customer.home_store_id)

    def resolve_product(self, ask: StockAsk, reply: Reply) -> Optional[ProductInfo]:
        """The product meant, or None after saying why (several, none, not said)."""
        context = self._context_product(ask)
        if ask.product:
            result = self.index.search(ask.product)
            if result.matches and not result.exact:
                # The entity may be shorter than what was said ("pegasus 41" + "homme").
                wider = self.index.search(self._strip_known_words(ask.text, None))
                if wider.exact and (wider.matches[0] in result.matches
                                    or wider.score >= result.score):
                    result = wider
            if result.variant is not None:
                ask.context["stock_variant"] = result.variant.sku
        else:
            candidate = self._strip_known_words(ask.text, context)
            result = self.index.search(candidate)
            if result.variant is not None:
                ask.context["stock_variant"] = result.variant.sku
            elif context is not None and (result.score < SWITCH_SCORE or context in result.matches):
                return context  # sizes, colours, places or small talk about the same item
        # "parfum chloé nomade" finds the only eau parfumée we sell: not the one asked for.
        not_ours = result.score < 100 and bool(self._unknown_words(ask))
        if result.matches and not not_ours and (result.exact or len(result.matches) == 1):
            return result.matches[0]
        if result.matches and not not_ours:
            # The size and colour said so far ride on each choice, so they are not asked again.
            said = {name: value for name, value in (("size", ask.size), ("colour", ask.colour)) if value}
            reply.say("Plusieurs articles correspondent. Lequel voulez-vous ?",
                      [button(p.name, "check_stock", product=p.sku, **said) for p in result.matches])
            reply.slots.update(stock_product=None, stock_variant=None, stock_size=None,
                              stock_colour=None, pending=None)
            return None
        if context is not None and not ask.product:
            return context
        self._not_carried(ask, result, reply)
        reply.slots.update(stock_product=None, stock_variant=None, stock_size=None,
                           stock_colour=None, pending=None)
        return None

    def _unknown_words(self, ask: StockAsk) -> List[str]:
        """Words of the product named that match nothing we sell: "nuxe merveillance"
        finds Nuxe products, but not that one."""
        return [w for w in tokens_of(ask.product or "") if len(w) >= 3 and not w.isdigit()
                and not self.index.knows(w)]

    def _not_carried(self, ask: StockAsk, result: SearchResult, reply: Reply) -> None:
        """Say plainly that we do not sell it; offer the closest products we do have, or a
        person."""
        if not ask.product and not result.leftover:
            reply.say("Quel article cherchez-vous ? Donnez-moi la marque et le modèle, ou la "
                      "référence inscrite sur l'étiquette.")
            return
        named = f"« {clip(ask.product, 60)} »" if ask.product else "cet article"
        close = result.matches or result.suggestions
        if close:
            reply.say(f"Nous ne vendons pas {named}, désolé. Ce qui s'en approche le plus chez nous :",
                      [button(p.name, "check_stock", product=p.sku) for p in close[:MAX_BUTTONS]]
                      + [button("Parler à un conseiller", "request_human")])
        else:
            reply.say(f"Nous ne vendons pas {named}, désolé : je ne le trouve pas dans notre "
                      "catalogue. Un conseiller peut vous orienter vers un article équivalent, ou "
                      "donnez-moi la marque et le modèle si je me suis trompé.",
                      [button("Parler à un conseiller", "request_human")])

    def resolve_variant(self, ask: StockAsk, product: ProductInfo, reply: Reply
                        ) -> Optional[VariantInfo]:
        size = colour = None
        if ask.context.get("stock_product") == product.sku:  # what was already said
            size, colour = ask.context.get("stock_size"), ask.context.get("stock_colour")
        known = self._context_variant(ask)
        if known and known[0].id == product.id:
            size, colour = known[1].size, known[1].colour
        text_size, text_colour = read_variant(product, ask.text)
        size, colour = text_size or size, text_colour or colour
        if ask.size:
            size = match_value(ask.size, product.sizes) or size
        if ask.colour:
            colour = match_value(ask.colour, product.colours) or colour
        if len(product.sizes) <= 1:
            size = product.sizes[0] if product.sizes else None
        if len(product.colours) <= 1:
            colour = product.colours[0] if product.colours else None
        variant = product.variant(size, colour)
        if variant:
            return variant
        reply.slots.update(stock_product=product.sku, stock_variant=None, stock_size=size,
                           stock_colour=colour)
        if size is None and len(product.sizes) > 1:
            reply.say(f"{product.name} : quelle taille vous faut-il ?",
                      [button(s, "inform", size=s) for s in product.sizes[:MAX_BUTTONS * 2]])
            reply.slots["pending"] = "size"
        else:
            reply.say(f"{product.name}{f' en {size}' if size else ''} : quelle couleur préférez-vous ?",
                      [button(c, "inform", colour=c) for c in product.colours[:MAX_BUTTONS]])
            reply.slots["pending"] = "colour"
        return None

    # Answers -------------------------------------------------------------------------
    def _today_hours(self, store_id: int) -> str:
        store = self.session.get(Store, store_id)
        return directory.hours_view(store, self.now).today_line

    def answer_stock(self, ask: StockAsk) -> Reply:
        reply = Reply()
        product = self.resolve_product(ask, reply)
        variant = self.resolve_variant(ask, product, reply) if product else None
        if variant is None:
            self._remember_named_store(ask, reply)
            return reply
        store, origin = self.resolve_place(ask)
        report = availability.stock_report(self.session, product, variant, store, origin, self.today)
        title = product.name + (f" ({variant.label})" if variant.label else "")
        lines = [f"{title} — {product.price}"]
        buttons = []
        if report.store is not None:
            at = report.at_store
            line = f"À {report.store.name} : {availability.band(at.available)}"
            if at.available <= 0:
                line += f" ({availability.restock_line(at)})" if at.next_restock else ""
            lines.append(line + ".")
            if at.available > 0:
                buttons.append(button("Le mettre de côté", "hold_item"))
        online = report.online
        online_line = f"En ligne : {availability.band(online.available)}"
        if online.available <= 0 and online.next_restock:
            online_line += f" ({availability.restock_line(online)})"
        lines.append(online_line + ".")
        if report.nearby:
            where = f" de {origin.label}" if origin and report.store is None else ""
            header = ("Disponible dans ces magasins" + (f" près{where}" if where else "")
                      + " :" if report.store is None else "Disponible près de là :")
            lines.append(header)
            for near in report.nearby:
                distance = f" ({near.distance_km:.0f} km)" if near.distance_km is not None else ""
                lines.append(f"• {near.store.name}{distance} : {availability.band(near.available)}, "
                             f"{self._today_hours(near.store.id)}")
        elif report.store is not None and report.at_store.available <= 0:
            lines.append("Aucun autre magasin ne l'a en ce moment.")
        if report.store is None and origin is None and report.nearby:
            lines.append("Dites-moi votre ville ou votre code postal pour voir le magasin le plus proche.")
        unavailable_here = (report.at_store.available <= 0 if report.at_store else True)
        if unavailable_here and not report.nearby and online.available <= 0:
            buttons.append(button("Me prévenir de son retour", "notify_back_in_stock"))
        elif report.at_store is not None and report.at_store.available <= 0:
            buttons.append(button("Me prévenir de son retour", "notify_back_in_stock"))
        if report.alternatives:
            lines.append("Dans le même esprit, disponibles : "
                         + ", ".join(name for _id, name in report.alternatives) + ".")
            buttons += [button(name, "check_stock", product=self.index.products[pid].sku)
                        for pid, name in report.alternatives if pid in self.index.products]
        reply.say("\n".join(lines), buttons)
        reply.slots.update(stock_product=product.sku, stock_variant=variant.sku,
                           stock_size=variant.size, stock_colour=variant.colour,
                           stock_store=report.store.code if report.store else None, pending=None)
        return reply

    def answer_nearest(self, ask: StockAsk) -> Reply:
        reply = Reply()
        store, origin = self.resolve_place(ask)
        if origin is None or (store is not None and not (ask.city or ask.postcode)
                              and not place_from_metadata(ask.metadata)
                              and self.gazetteer.find_in_text(ask.text) is None):
            reply.say("Où êtes-vous ? Donnez-moi une ville ou un code postal "
                      "(ou partagez votre position sur Telegram).")
            reply.slots["pending"] = "nearest_place"
            return reply
        known = self._context_variant(ask)
        if known:
            product, variant = known
            found = availability.stores_with_stock(self.session, variant.id, origin)
            title = product.name + (f" ({variant.label})" if variant.label else "")
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

    def _identity(self, ask: StockAsk) -> ChatIdentity:
        return identity_for(self.session, ask.channel, ask.sender)

    def answer_hold(self, ask: StockAsk) -> Reply:
        reply = Reply()
        known = self._context_variant(ask)
        if known is None:
            if ask.product or self.index.search(self._strip_known_words(ask.text, None)).matches:
                reply = self.answer_stock(ask)
                if reply.slots.get("stock_variant") and reply.slots.get("stock_store"):
                    ask.context.update({k: v for k, v in reply.slots.items() if k in CONTEXT_SLOTS})
                    return self.answer_hold(ask)
                return reply
            return reply.say("Quel article souhaitez-vous que je mette de côté ? "
                             "Dites-moi la marque, le modèle et la taille.")
        product, variant = known
        store, _origin = self.resolve_place(ask)
        if store is None:
            reply.slots["pending"] = "hold_store"
            return reply.say("Dans quel magasin voulez-vous le retirer ? Indiquez-moi la ville.")
        quantity = parse_quantity(ask.quantity)
        if quantity is None or not 1 <= quantity <= reservations.MAX_HOLD_QUANTITY:
            return reply.say(f"Je peux mettre de côté de 1 à {reservations.MAX_HOLD_QUANTITY} "
                             "articles à la fois. Combien en voulez-vous ?")
        identity = self._identity(ask)
        title = product.name + (f" ({variant.label})" if variant.label else "")
        try:
            with self.session.begin_nested():
                held = reservations.hold(self.session, variant.id, store.id, quantity,
                                         now=self.now.replace(tzinfo=None), hours=self.hold_hours,
                                         identity_id=identity.id, customer_id=identity.customer_id)
        except reservations.HoldRefused as refused:
            if refused.limits is not None:
                return reply.say(hold_limit_text(refused.reason, refused.limits))
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
        identity = self._identity(ask)
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
        known = self._context_variant(ask)
        if known is None:
            return reply.say("Pour quel article voulez-vous être prévenu ? Dites-moi la marque, "
                             "le modèle et la taille.")
        product, variant = known
        title = product.name + (f" ({variant.label})" if variant.label else "")
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
        identity = self._identity(ask)
        created = alerts.subscribe_here(self.session, identity, variant.id,
                                        store.id if store else None)
        where = f" à {store.name}" if store else ""
        if created:
            return reply.say(f"C'est noté : je vous préviens ici dès que {title} est de retour"
                             f"{where}, une seule fois. Écrivez STOP pour annuler.")
        return reply.say(f"Vous êtes déjà inscrit : je vous préviendrai ici dès que {title} "
                         f"est de retour{where}.")

    def answer_parts(self, ask: StockAsk) -> Reply:
        """Parts and consumables: for the machine named, or the one the verified customer
        bought; a part named ("le filtre Claris pour ma Krups") is answered for itself, with
        the machines it fits, of the brand named if one is."""
        reply = Reply()
        fits: Dict[int, List[int]] = {}  # part or consumable -> the machines it goes with
        links_of: Dict[int, List[ProductLink]] = {}  # machine -> its links
        for link in self.session.execute(select(ProductLink).order_by(ProductLink.product_id)).scalars():
            fits.setdefault(link.linked_product_id, []).append(link.product_id)
            links_of.setdefault(link.product_id, []).append(link)
        brand = self._brand_named(ask.text)
        brand_machines = [self.index.products[pid] for pid in links_of
                          if pid in self.index.products and self.index.products[pid].brand == brand]
        query = ask.product or ask.text
        if brand and normalise(brand) not in normalise(query):
            query = f"{query} {brand}"
        result = self.index.search(query, limit=40)
        named_parts = [p for p in result.matches if p.id in fits]
        if result.matches and result.matches[0].id in fits and (result.exact or len(named_parts) == 1):
            return self._part_fits(reply, result.matches[0], fits[result.matches[0].id], brand, brand_machines)
        candidates = [p for p in result.matches if p.id in links_of]
        if brand:
            candidates = [p for p in candidates if p.brand == brand] or brand_machines
        machines: List[int] = []
        if len(candidates) == 1 or (candidates and result.exact and candidates[0] == result.matches[0]):
            machines = [candidates[0].id]
        else:  # none or several named: the customer's own machine among them, if known
            bought = self._machines_bought(ask, links_of)
            named = {p.id for p in candidates}
            brand_ids = {p.id for p in brand_machines}
            machines = [m for m in bought if m in named] or [
                m for m in bought if not brand or m in brand_ids]
        if not machines:
            reply.slots["pending"] = "parts_product"
            buttons = [button(p.name, "ask_parts", product=p.sku) for p in candidates[:6]]
            if brand and candidates:
                return reply.say(f"Pour quelle machine {brand} ? Choisissez-la ci-dessous ou "
                                 "donnez-moi son modèle.", buttons)
            return reply.say("Pour quelle machine ? Donnez-moi sa marque et son modèle, "
                             "par exemple « De'Longhi Magnifica S ».", buttons)
        for machine_id in machines[:2]:
            machine = self.index.products.get(machine_id)
            links = links_of.get(machine_id, [])
            items = [(self.index.products[link.linked_product_id], link.kind) for link in links
                     if link.linked_product_id in self.index.products]
            if machine is None or not items:
                continue
            parts = [p for p, kind in items if kind == "part"]
            consumables = [p for p, kind in items if kind != "part"]
            lines = [f"Pour votre {machine.name} :"]
            if consumables:
                lines.append("Entretien et consommables : " + ", ".join(
                    f"{p.name} ({p.price})" for p in consumables[:6]) + ".")
            if parts:
                lines.append("Pièces : " + ", ".join(f"{p.name} ({p.price})" for p in parts) + ".")
            reply.say("\n".join(lines), [button(p.name, "check_stock", product=p.sku)
                                         for p in (consumables[:3] + parts[:2])])
        if not reply.messages:
            reply.say("Je n'ai pas de pièces ni de consommables en vente pour cette machine. "
                      "Un conseiller peut vous renseigner.",
                      [button("Parler à un conseiller", "request_human")])
        reply.slots["pending"] = None
        return reply

    def _brand_named(self, text: str) -> Optional[str]:
        """The catalog brand the message names, if exactly one ("ma krups", "delonghi")."""
        words = f" {normalise(text)} "
        named = {brand for form, brand in self.index.brand_forms.items() if f" {form} " in words}
        return named.pop() if len(named) == 1 else None

    def _machines_bought(self, ask: StockAsk, links_of: Dict[int, List[ProductLink]]) -> List[int]:
        """The machines a verified customer bought, latest first, unless they object to
        their purchases being used."""
        identity = self._identity(ask)
        if not (identity.customer_id and identity.verified_at
                and allows_personalisation(self.session, identity.customer_id)):
            return []
        bought = self.session.execute(
            select(Variant.product_id).join(Purchase, Purchase.variant_id == Variant.id)
            .where(Purchase.customer_id == identity.customer_id)
            .order_by(Purchase.purchased_at.desc())).scalars().all()
        return [pid for pid in dict.fromkeys(bought) if pid in links_of]

    def _part_fits(self, reply: Reply, part: ProductInfo, machine_ids: List[int],
                   brand: Optional[str], brand_machines: List[ProductInfo]) -> Reply:
        machines = [self.index.products[m] for m in machine_ids if m in self.index.products]
        reply.slots["pending"] = None
        if brand and machines and not any(m.brand == brand for m in machines):
            reply.slots["pending"] = "parts_product"
            return reply.say(
                f"{part.name} ({part.price}) : compatible avec {_names(machines)}, pas avec les "
                f"machines {brand}. Pour quelle machine {brand} cherchez-vous une pièce ?",
                [button(p.name, "ask_parts", product=p.sku) for p in brand_machines[:6]])
        if brand:
            machines = [m for m in machines if m.brand == brand]
        check = button(f"Stock : {part.name}", "check_stock", product=part.sku)
        if not machines:
            return reply.say(f"{part.name} : {part.price}.", [check])
        return reply.say(f"{part.name} ({part.price}) : compatible avec {_names(machines)}.",
                         [check] + [button(f"Tout pour ma {m.name}", "ask_parts", product=m.sku)
                                    for m in machines[:3]])


def _names(products: List[ProductInfo]) -> str:
    """ "la machine Krups Evidence EA8908", "les machines Krups Evidence EA8908 et Krups …"."""
    names = [p.name for p in products[:4]]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]
    return f"les machines {listed}" if len(names) > 1 else f"la machine {listed}"


def parse_quantity(value: Optional[str]) -> Optional[int]:
    if value is None or not str(value).strip():
        return 1
    words = {"un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6,
             "sept": 7, "huit": 8, "neuf": 9, "dix": 10}
    if re.search(r"-\s*\d", str(value)):
        return None  # "-3"
    key = normalise(str(value))
    if key in words:
        return words[key]
    digits = "".join(c for c in key if c.isdigit())
    if not digits or len(digits) > 6:
        return None
    return int(digits)
