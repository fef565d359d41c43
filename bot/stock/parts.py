"""Parts and consumables: for the machine named, or the one a verified customer bought
(unless they object to their purchases being used); a part named is answered for itself,
with the machines it fits."""
from __future__ import annotations

from typing import Dict, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.chats import identity_for
from bot.core.models import ProductLink, Purchase, Variant
from bot.core.replies import Pending, Reply, button
from bot.core.text import normalise
from bot.customers.consent import allows_personalisation
from bot.stock.catalog import CatalogIndex, ProductInfo
from bot.stock.resolve import StockAsk
from bot.stock.wording import machines_named


class PartsDesk:
    def __init__(self, session: Session, index: CatalogIndex) -> None:
        self.session = session
        self.index = index

    def answer(self, ask: StockAsk) -> Reply:
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
            reply.asking(Pending("parts_product"))
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
        identity = identity_for(self.session, ask.channel, ask.sender)
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
            reply.asking(Pending("parts_product"))
            return reply.say(
                f"{part.name} ({part.price}) : compatible avec {machines_named(machines)}, pas avec les "
                f"machines {brand}. Pour quelle machine {brand} cherchez-vous une pièce ?",
                [button(p.name, "ask_parts", product=p.sku) for p in brand_machines[:6]])
        if brand:
            machines = [m for m in machines if m.brand == brand]
        check = button(f"Stock : {part.name}", "check_stock", product=part.sku)
        if not machines:
            return reply.say(f"{part.name} : {part.price}.", [check])
        return reply.say(f"{part.name} ({part.price}) : compatible avec {machines_named(machines)}.",
                         [check] + [button(f"Tout pour ma {m.name}", "ask_parts", product=m.sku)
                                    for m in machines[:3]])

