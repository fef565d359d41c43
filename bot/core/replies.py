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
    custom: Dict[str, Any]  # for the gateway (an erasure to carry out), never shown


@dataclass
class Reply:
    messages: List[Message] = field(default_factory=list)
    slots: Dict[str, Optional[str]] = field(default_factory=dict)

    def say(self, text: str, buttons: Optional[List[Button]] = None) -> "Reply":
        self.messages.append({"text": text, "buttons": buttons or []})
        return self

    def show(self, image: str, text: str = "") -> "Reply":
        self.messages.append({"text": text, "buttons": [], "image": image})
        return self

    def tell_gateway(self, payload: Dict[str, Any]) -> "Reply":
        self.messages.append({"custom": payload})
        return self

    def extend(self, other: "Reply") -> "Reply":
        self.messages += other.messages
        return self


def button(title: str, intent: str, **entities: str) -> Button:
    payload = f"/{intent}"
    if entities:
        payload += json.dumps(entities, ensure_ascii=False, separators=(",", ":"))
    return {"title": title, "payload": payload}
