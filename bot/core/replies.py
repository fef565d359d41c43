"""What a desk answers: messages (French text with buttons, an image, or a custom payload
for the gateway) and the slots to set. Channels turn them into their own formats."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, TypedDict


class Button(TypedDict):
    title: str
    payload: str  # "/intent" or "/intent{"entity":"value"}", as Rasa reads it


class Message(TypedDict, total=False):
    text: str
    buttons: List[Button]
    image: str  # a URL
    attachment: Dict[str, Any]  # a card, in the shape of Rasa's widgets (see `card`)
    custom: Dict[str, Any]  # for the gateway (an erasure to carry out), never shown


@dataclass(frozen=True)
class Pending:
    """The question the bot waits for an answer to, kept in the `pending` slot: what was
    asked (`asked`: "size", "contact", "code", "correct", "erase"...) and, for some, what
    it is for (`about`): Pending("code", "export") is the slot value "code export".
    Nothing pending reads as `Pending("")`, which is false."""

    asked: str
    about: Optional[str] = None

    @classmethod
    def read(cls, slot: Optional[str]) -> "Pending":
        asked, _, about = (slot or "").strip().partition(" ")
        return cls(asked, about or None)

    @property
    def slot(self) -> Optional[str]:
        if not self.asked:
            return None
        return f"{self.asked} {self.about}" if self.about else self.asked

    def __bool__(self) -> bool:
        return bool(self.asked)


@dataclass(frozen=True)
class Note:
    """What a turn tells the retailer, beside the answer: a demand signal ("not_available"
    in a store, "not_carried"), recorded with no one's identity (bot.review.capture)."""

    kind: str
    product_sku: Optional[str] = None
    variant_sku: Optional[str] = None
    asked: Optional[str] = None  # what the shopper named, for a product we do not carry
    store_code: Optional[str] = None


@dataclass
class Reply:
    messages: List[Message] = field(default_factory=list)
    slots: Dict[str, Optional[str]] = field(default_factory=dict)
    notes: List[Note] = field(default_factory=list)

    def asking(self, pending: Pending) -> "Reply":
        """The answer ends on a question: the next message may be its answer."""
        self.slots["pending"] = pending.slot
        return self

    def say(self, text: str, buttons: Optional[List[Button]] = None) -> "Reply":
        self.messages.append({"text": text, "buttons": buttons or []})
        return self

    def show(self, image: str, text: str = "") -> "Reply":
        self.messages.append({"text": text, "buttons": [], "image": image})
        return self

    def card(self, text: str, buttons: List[Button], card: Dict[str, Any]) -> "Reply":
        """The text answer shown as a card where the channel can (the text stays, for the
        channels and transcripts that show text only)."""
        self.messages.append({"text": text, "buttons": buttons, "attachment": card})
        return self

    def tell_gateway(self, payload: Dict[str, Any]) -> "Reply":
        self.messages.append({"custom": payload})
        return self

    def extend(self, other: "Reply") -> "Reply":
        self.messages += other.messages
        self.notes += other.notes
        return self


def card(title: str, subtitle: str, image_url: str, link: str, buttons: List[Button]) -> Dict[str, Any]:
    """One card, as Rasa's widgets (rasa-webchat) read a carousel of one: the "generic"
    template of Facebook's format, with a link and the usual buttons."""
    return {"type": "template", "payload": {"template_type": "generic", "elements": [{
        "title": title, "subtitle": subtitle, "image_url": image_url,
        "default_action": {"type": "web_url", "url": link},
        "buttons": [{"type": "postback", **b} for b in buttons]
        + [{"type": "web_url", "title": "Voir la fiche produit", "url": link}]}]}}


def card_of(message: Dict[str, Any]) -> Dict[str, Any]:
    """The card a message carries (the element of its generic template), or {}."""
    attachment = message.get("attachment")
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    if isinstance(payload, dict) and payload.get("template_type") == "generic":
        elements = payload.get("elements") or [{}]
        return elements[0] if isinstance(elements[0], dict) else {}
    return {}


def button(title: str, intent: str, **entities: str) -> Button:
    payload = f"/{intent}"
    if entities:
        payload += json.dumps(entities, ensure_ascii=False, separators=(",", ":"))
    return {"title": title, "payload": payload}
