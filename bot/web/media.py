"""Product pictures and pages served by the gateway, for products whose image or link is
one of its paths (the demo shop's; a retailer's feed usually points at its own site).

A picture is drawn here, from the product's brand, name and department (a coloured
panel, a simple shape for the kind of product, the words): nothing is downloaded, and
a product renamed by an import gets a new picture. The product page is plain HTML with
no script.
"""
from __future__ import annotations

import colorsys
import hashlib
import html
import io
import re
from functools import lru_cache
from typing import Optional, Tuple

from aiohttp import web
from sqlalchemy import select

from bot.core.db import in_session
from bot.core.models import Product
from bot.core.text import format_euros
from bot.web.keys import SESSIONS, SETTINGS

PICTURE_PATH = "/media/products/{sku}.png"
PAGE_PATH = "/produits/{sku}"
SKU_RE = re.compile(r"^[A-Za-z0-9._-]{1,50}$")
SIZE = (640, 480)
Drawn = Tuple[str, str, str, str]  # brand, name, department, category


def picture_path(sku: str) -> str:
    return PICTURE_PATH.format(sku=sku)


def page_path(sku: str) -> str:
    return PAGE_PATH.format(sku=sku)


def _colour(seed: str, lightness: float) -> Tuple[int, int, int]:
    hue = int(hashlib.sha256(seed.encode()).hexdigest()[:4], 16) / 0xFFFF
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.45)
    return int(red * 255), int(green * 255), int(blue * 255)


def _shape(draw, kind: str, ink) -> None:
    """A silhouette of the kind of product, in the middle of the panel."""
    if "chaussure" in kind:
        draw.polygon([(170, 300), (250, 205), (330, 215), (360, 260), (470, 285), (480, 330),
                      (170, 330)], fill=ink)
        draw.rectangle([(165, 330), (485, 348)], fill=(255, 255, 255))
    elif "coffee" in kind or "café" in kind:
        draw.rounded_rectangle([(220, 170), (420, 350)], radius=24, fill=ink)
        draw.ellipse([(285, 270), (355, 340)], fill=(255, 255, 255))
    elif "beauty" in kind or "beauté" in kind:
        draw.rounded_rectangle([(280, 190), (360, 360)], radius=18, fill=ink)
        draw.rectangle([(300, 150), (340, 190)], fill=ink)
    elif "book" in kind or "livre" in kind:
        draw.rectangle([(230, 150), (410, 360)], fill=ink)
        draw.rectangle([(250, 150), (262, 360)], fill=(255, 255, 255))
    elif "textile" in kind or "vêtement" in kind or "clothing" in kind:
        draw.polygon([(240, 170), (290, 150), (350, 150), (400, 170), (440, 230), (400, 245),
                      (400, 360), (240, 360), (240, 245), (200, 230)], fill=ink)
    else:
        draw.rounded_rectangle([(230, 170), (410, 350)], radius=12, fill=ink)


@lru_cache(maxsize=256)
def draw_picture(brand: str, name: str, department: str, category: str) -> bytes:
    """The product's picture as a PNG (Pillow, its own font: no system font needed)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", SIZE, _colour(f"{department}/{category}", 0.88))
    draw = ImageDraw.Draw(image)
    _shape(draw, f"{department} {category} {brand}".lower(), _colour(f"{brand}/{name}", 0.38))
    big, small = ImageFont.load_default(size=34), ImageFont.load_default(size=24)
    draw.text((32, 28), brand, font=small, fill=(40, 40, 48))
    words, line, lines = name.split(), "", []
    for word in words:
        if draw.textlength(f"{line} {word}".strip(), font=big) > SIZE[0] - 64 and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    for index, text in enumerate(lines[:2]):
        draw.text((32, 380 + index * 40), text, font=big, fill=(20, 20, 28))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


async def _product(app: web.Application, sku: str) -> Optional[Product]:
    if not SKU_RE.match(sku):
        return None

    def find(session) -> Optional[Product]:
        return session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()

    return await in_session(app[SESSIONS], find)


async def picture_bytes(app: web.Application, url: str) -> Optional[bytes]:
    """The PNG of one of our product picture URLs (Telegram uploads it), else None: a
    retailer's own picture elsewhere is sent as its address, whatever its path."""
    settings = app[SETTINGS]
    if not url.startswith(("/", settings.public_url.rstrip("/") + "/", settings.gateway_url.rstrip("/") + "/")):
        return None
    match = re.search(r"/media/products/([^/?#]+)\.png$", url)
    product = await _product(app, match.group(1)) if match else None
    if product is None:
        return None
    return draw_picture(product.brand, product.name, product.department, product.category)


async def picture(request: web.Request) -> web.Response:
    body = await picture_bytes(request.app, request.path)
    if body is None:
        raise web.HTTPNotFound()
    return web.Response(body=body, content_type="image/png",
                        headers={"Cache-Control": "public, max-age=3600"})


async def page(request: web.Request) -> web.Response:
    product = await _product(request.app, request.match_info["sku"])
    if product is None or not product.active:
        raise web.HTTPNotFound(text="Ce produit n'est pas (ou plus) dans notre catalogue.")
    text = {key: html.escape(value or "") for key, value in dict(
        name=product.name, brand=product.brand, description=product.description,
        price=format_euros(product.price_cents),
        image=picture_path(product.sku)).items()}
    body = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{text['name']} — Comptoir</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:640px;margin:24px auto;padding:0 16px;color:#1d1d1f}}
img{{max-width:100%;border-radius:12px}}.price{{font-size:22px;font-weight:600}}</style></head>
<body><p>{text['brand']}</p><h1>{text['name']}</h1><img src="{text['image']}" alt="{text['name']}">
<p class="price">{text['price']}</p><p>{text['description']}</p>
<p>Disponibilité en magasin et mise de côté : demandez à notre assistant dans le chat.</p>
</body></html>"""
    return web.Response(text=body, content_type="text/html", headers={
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/media/products/{sku}.png", picture)
    app.router.add_get("/produits/{sku}", page)
