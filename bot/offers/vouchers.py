"""Vouchers: their codes, their wording, the signed image of a code, and what a till does
with one (check it, use it once).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import secrets
from dataclasses import dataclass
from typing import Dict, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Voucher
from bot.core.signing import same, signature
from bot.core.text import format_date, format_euros


CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud at a till
VOUCHER_RE = re.compile(r"\bANNIV-[A-Z0-9]{4}-[A-Z0-9]{4}\b", re.IGNORECASE)


def new_voucher_code() -> str:
    pick = lambda: "".join(secrets.choice(CODE_ALPHABET) for _ in range(4))  # noqa: E731
    return f"ANNIV-{pick()}-{pick()}"


def voucher_value(voucher: Voucher) -> str:
    if voucher.percent_off:
        value = f"{voucher.percent_off} % de remise sur {voucher.applies_to}"
    else:
        value = f"{format_euros(voucher.amount_cents or 0)} de remise sur {voucher.applies_to}"
    if voucher.minimum_cents:
        value += f", dès {format_euros(voucher.minimum_cents)} d'achat"
    return value


def voucher_text(voucher: Voucher) -> str:
    return (f"Votre bon : {voucher.code}\n{voucher_value(voucher)[0].upper()}{voucher_value(voucher)[1:]}."
            f"\nValable jusqu'au {format_date(voucher.expires_on)} inclus, en magasin (montrez "
            "le code en caisse) et en ligne (saisissez-le au paiement). Une seule utilisation.")


def _signature(secret: str, code: str) -> str:
    return signature(secret, f"voucher-image:{code}")[:20]


def image_path(secret: str, code: str) -> str:
    """Where the gateway serves this voucher's scannable code; signed, so the route is
    not an open code generator."""
    return f"/vouchers/{code}/{_signature(secret, code)}.png"


IMAGE_PATH_RE = re.compile(r"/vouchers/(ANNIV-[A-Z0-9]{4}-[A-Z0-9]{4})/([0-9a-f]{20})\.png$")


def code_from_image_path(secret: str, path: str) -> Optional[str]:
    match = IMAGE_PATH_RE.search(path)
    if match and same(_signature(secret, match.group(1)), match.group(2)):
        return match.group(1)
    return None


def qr_png(code: str) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


@dataclass
class VoucherCheck:
    status: str  # valid, used, expired, unknown
    reason: str  # French, for the till or the customer
    voucher: Optional[Voucher] = None

    def as_json(self) -> Dict[str, object]:
        data: Dict[str, object] = {"status": self.status, "reason": self.reason}
        v = self.voucher
        if v is not None:
            data.update(code=v.code, value=voucher_value(v), percent_off=v.percent_off,
                        amount_cents=v.amount_cents, minimum_cents=v.minimum_cents,
                        categories=json.loads(v.categories) if v.categories else None,
                        expires_on=v.expires_on.isoformat(),
                        used_at=v.used_at.isoformat(timespec="seconds") if v.used_at else None,
                        used_where=v.used_where)
        return data


def _find_voucher(session: Session, code: str) -> Optional[Voucher]:
    return session.execute(select(Voucher).where(
        Voucher.code == code.strip().upper())).scalar_one_or_none()


def check_voucher(session: Session, code: str, today: dt.date) -> VoucherCheck:
    voucher = _find_voucher(session, code)
    if voucher is None:
        return VoucherCheck("unknown", "Ce bon n'existe pas. Vérifiez le code saisi.")
    if voucher.used_at is not None:
        where = f" ({voucher.used_where})" if voucher.used_where else ""
        return VoucherCheck("used", f"Ce bon a déjà été utilisé le "
                            f"{voucher.used_at:%d/%m/%Y}{where}.", voucher)
    if voucher.expires_on < today:
        return VoucherCheck("expired", f"Ce bon a expiré le {voucher.expires_on:%d/%m/%Y}.", voucher)
    return VoucherCheck("valid", f"Bon valable : {voucher_value(voucher)}, jusqu'au "
                        f"{voucher.expires_on:%d/%m/%Y}.", voucher)


def use_voucher(session: Session, code: str, where: str, now: dt.datetime,
                today: dt.date) -> VoucherCheck:
    """Mark a voucher used, once: of two tills scanning it at the same time, one wins and
    the other is told it is already used."""
    checked = check_voucher(session, code, today)
    if checked.status != "valid":
        return checked
    won = session.execute(
        update(Voucher).where(Voucher.id == checked.voucher.id, Voucher.used_at.is_(None),
                              Voucher.expires_on >= today)
        .values(used_at=now, used_where=where[:40])
        .execution_options(synchronize_session=False)).rowcount
    session.expire(checked.voucher)
    if won != 1:
        return check_voucher(session, code, today)
    return VoucherCheck("used_now", f"Bon accepté : {voucher_value(checked.voucher)}.",
                        checked.voucher)
