"""How the stock answers are worded: plain French text and buttons from what the
resolver and the stock services found. No database, no decisions."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from bot.core.replies import Button, button, card
from bot.core.text import clip
from bot.stock import availability, reservations
from bot.stock.catalog import CatalogIndex, ProductInfo, SearchResult, VariantInfo
from bot.stores.geo import Place

MAX_BUTTONS = 10
HUMAN = button("Parler à un conseiller", "request_human")
Said = Tuple[str, List[Button]]


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



def title(product: ProductInfo, variant: VariantInfo) -> str:
    return product.name + (f" ({variant.label})" if variant.label else "")


def which_product(choices: List[ProductInfo], size: Optional[str], colour: Optional[str]) -> Said:
    # The size and colour said so far ride on each choice, so they are not asked again.
    said = {name: value for name, value in (("size", size), ("colour", colour)) if value}
    return ("Plusieurs articles correspondent. Lequel voulez-vous ?",
            [button(p.name, "check_stock", product=p.sku, **said) for p in choices])


def not_carried(product_named: Optional[str], result: SearchResult) -> Said:
    """Say plainly that we do not sell it; offer the closest products we do have, or a
    person."""
    if not product_named and not result.leftover:
        return ("Quel article cherchez-vous ? Donnez-moi la marque et le modèle, ou la "
                "référence inscrite sur l'étiquette.", [])
    named = f"« {clip(product_named, 60)} »" if product_named else "cet article"
    close = result.matches or result.suggestions
    if close:
        return (f"Nous ne vendons pas {named}, désolé. Ce qui s'en approche le plus chez nous :",
                [button(p.name, "check_stock", product=p.sku) for p in close[:MAX_BUTTONS]]
                + [HUMAN])
    return (f"Nous ne vendons pas {named}, désolé : je ne le trouve pas dans notre "
            "catalogue. Un conseiller peut vous orienter vers un article équivalent, ou "
            "donnez-moi la marque et le modèle si je me suis trompé.", [HUMAN])


def which_size(product: ProductInfo) -> Said:
    return (f"{product.name} : quelle taille vous faut-il ?",
            [button(s, "inform", size=s) for s in product.sizes[:MAX_BUTTONS * 2]])


def which_colour(product: ProductInfo, size: Optional[str]) -> Said:
    return (f"{product.name}{f' en {size}' if size else ''} : quelle couleur préférez-vous ?",
            [button(c, "inform", colour=c) for c in product.colours[:MAX_BUTTONS]])


def stock_report(report: availability.StockReport, product: ProductInfo, variant: VariantInfo,
                 origin: Optional[Place], index: CatalogIndex,
                 today_hours: Callable[[int], str]) -> Said:
    """The stock answer: here, online, nearby, when it comes back, and what is alike."""
    lines = [f"{title(product, variant)} — {product.price}"]
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
                         f"{today_hours(near.store.id)}")
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
        buttons += [button(name, "check_stock", product=index.products[pid].sku)
                    for pid, name in report.alternatives if pid in index.products]
    return "\n".join(lines), buttons


def machines_named(products: List[ProductInfo]) -> str:
    """ "la machine Krups Evidence EA8908", "les machines Krups Evidence EA8908 et Krups …"."""
    names = [p.name for p in products[:4]]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]
    return f"les machines {listed}" if len(names) > 1 else f"la machine {listed}"


def product_card(product: ProductInfo, variant: VariantInfo, text: str, buttons: List[Button],
                 public_url: str) -> Dict[str, Any]:
    """The stock answer as a card: the picture, the name, then the answer's lines (price
    and availability) and its buttons. Paths on the gateway become full addresses."""
    def absolute(url: str) -> str:
        return url if url.startswith(("http://", "https://")) else public_url.rstrip("/") + url

    _name_and_price, _, lines = text.partition("\n")
    return card(title(product, variant), f"{product.price}\n{lines}".strip(),
                absolute(product.image_url or ""), absolute(product.link or ""), buttons)
