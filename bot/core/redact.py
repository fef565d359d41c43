"""Masking personal data and codes in text shown to people who need not read them.

An agent helping a customer needs to know what was asked, not the customer's email,
phone, address, birthday, card number, voucher or pickup code, one-time code or the
link to their data export. Applied to transcripts and messages on their way to the
console; the markers say what was there, in French, for the agent.
"""
from __future__ import annotations

import re
from typing import Tuple

CODE = "[code]"
HIDDEN = "[message masqué]"
_CODE_ALPHABET = "A-HJ-NP-Z2-9"  # pickup and voucher codes: no 0/O, 1/I/L

RULES: Tuple[Tuple[re.Pattern, str], ...] = (
    (re.compile(r"(?:https?://\S+?)?/exports/[A-Za-z0-9._~%-]+"), "[lien d'export]"),
    (re.compile(r"(?:https?://\S+?)?/vouchers/\S+"), CODE),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[e-mail]"),
    (re.compile(r"\bANNIV-[A-Z0-9]{4}-[A-Z0-9]{4}\b", re.IGNORECASE), CODE),
    # Loyalty cards (12 digits) and payment cards (13-19), spaced or not; before phones.
    (re.compile(r"(?<![\d+])\d(?:[ -]?\d){11,18}(?!\d)"), "[carte]"),
    (re.compile(r"(?:(?:\+|00)33[\s.-]?(?:\(0\))?|\b0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)"),
     "[téléphone]"),
    (re.compile(r"\b\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d{2}\b"), "[date]"),
    # Street addresses: a number, then a kind of street and its name up to a separator.
    (re.compile(r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|allée|"
                r"allee|chemin|impasse|quai|route|cours|square|résidence|residence|lieu-dit)"
                r"\b[^,;\n]*", re.IGNORECASE), "[adresse]"),
    (re.compile(r"(?i:\badresse\s*:\s*)(?!non renseignée)[^;\n]+"), "adresse : [adresse]"),
    (re.compile(r"(?i:\banniversaire\s*:\s*)(?!non renseigné)[^,;\n]+"), "anniversaire : [date]"),
    # One-time codes on their own (a pickup code, below, is said as such).
    (re.compile(r"(?<![\d,.])\d{6}(?![\d,.])"), CODE),
)
PICKUP_CODE = re.compile(rf"(?i:\bcode\b[^\n:]{{0,24}}:?\s*)[{_CODE_ALPHABET}]{{6}}\b")


def _mask_code(match: re.Match) -> str:
    text = match.group(0)
    return text[:-6] + CODE


def mask(text: str) -> str:
    """The text with personal data, codes and export links replaced by markers."""
    return PICKUP_CODE.sub(_mask_code, _personal_masked(text)) if text else text


def _personal_masked(text: str) -> str:
    for pattern, marker in RULES:
        text = pattern.sub(marker, text)
    return text


def export_links_masked(text: str) -> str:
    """Only export links masked: what a verified customer sees again of their chat."""
    pattern, marker = RULES[0]
    return pattern.sub(marker, text) if text else text


def hidden_if_personal(text: str) -> str:
    """The whole message hidden if it holds personal data or a code: what anyone at the
    browser sees again once the verification has lapsed or the customer logged out. A
    pickup code stays: the shopper who held an item without verifying needs it at the
    till, and it names no one."""
    return HIDDEN if text and _personal_masked(text) != text else text
