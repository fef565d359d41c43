"""The shop: stores with their hours and closures, products and variants with links
between them (parts, consumables), stock and restocks, holds, back-in-stock alerts,
purchases.
"""
from __future__ import annotations

from sqlalchemy import (Boolean, CheckConstraint, Column, Date, DateTime, ForeignKey, Index,
                        Integer, Float, SmallInteger, String, Text, Time, UniqueConstraint)
from sqlalchemy.orm import relationship

from bot.core.models.base import Base, utcnow


class Store(Base):
    """A physical store, or the online warehouse (kind='online')."""

    __tablename__ = "stores"
    id = Column(Integer, primary_key=True)
    code = Column(String(32), nullable=False, unique=True)
    kind = Column(String(16), nullable=False, default="store")
    name = Column(String(120), nullable=False)
    address = Column(String(200), nullable=False, default="")
    city = Column(String(80), nullable=False, default="")
    postcode = Column(String(10), nullable=False, default="")
    latitude = Column(Float)
    longitude = Column(Float)
    phone = Column(String(20))
    timezone = Column(String(40), nullable=False, default="Europe/Paris")

    hours = relationship("StoreHours", back_populates="store", cascade="all, delete-orphan")
    closures = relationship("StoreClosure", back_populates="store", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("kind in ('store', 'online')", name="kind"),
        Index("ix_stores_city", "city"),
        Index("ix_stores_postcode", "postcode"),
    )


class StoreHours(Base):
    """Regular opening hours: one row per opening span of a weekday (0 = Monday)."""

    __tablename__ = "store_hours"
    id = Column(Integer, primary_key=True)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), nullable=False)
    weekday = Column(SmallInteger, nullable=False)
    opens_at = Column(Time, nullable=False)
    closes_at = Column(Time, nullable=False)
    store = relationship("Store", back_populates="hours")

    __table_args__ = (
        CheckConstraint("weekday between 0 and 6", name="weekday"),
        Index("ix_store_hours_store_weekday", "store_id", "weekday"),
    )


class StoreClosure(Base):
    """An exceptional closure (bank holiday, inventory day) or special hours."""

    __tablename__ = "store_closures"
    id = Column(Integer, primary_key=True)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), nullable=False)
    day = Column(Date, nullable=False)
    reason = Column(String(120), nullable=False, default="")
    opens_at = Column(Time)  # both null: closed all day
    closes_at = Column(Time)
    store = relationship("Store", back_populates="closures")

    __table_args__ = (UniqueConstraint("store_id", "day"),)


class Product(Base):
    __tablename__ = "products"
    id = Column(Integer, primary_key=True)
    sku = Column(String(50), nullable=False, unique=True)  # the feed's item_group_id
    name = Column(String(160), nullable=False)
    brand = Column(String(80), nullable=False)
    department = Column(String(40), nullable=False)
    category = Column(String(80), nullable=False)
    price_cents = Column(Integer, nullable=False)
    description = Column(Text, nullable=False, default="")
    active = Column(Boolean, nullable=False, default=True)
    image_url = Column(String(500))  # shown as a card where there is one
    link = Column(String(500))  # the product's page on the retailer's site
    updated_at = Column(DateTime, default=utcnow)  # the catalog index notices changes by it

    variants = relationship("Variant", back_populates="product", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price"),
        Index("ix_products_brand", "brand"),
        Index("ix_products_department_category", "department", "category"),
    )


class Variant(Base):
    """A sellable unit of a product: one size and colour, with its own SKU and EAN."""

    __tablename__ = "variants"
    id = Column(Integer, primary_key=True)
    product_id = Column(ForeignKey("products.id", ondelete="CASCADE"), nullable=False)
    sku = Column(String(50), nullable=False, unique=True)  # the feed's id
    ean = Column(String(13), unique=True)  # the GTIN, when the product has one
    size = Column(String(16))
    colour = Column(String(40))
    product = relationship("Product", back_populates="variants")

    __table_args__ = (Index("ix_variants_product", "product_id"),)


class Stock(Base):
    """Units of a variant at a location; `reserved` units are held for pickup."""

    __tablename__ = "stock"
    variant_id = Column(ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    quantity = Column(Integer, nullable=False, default=0)
    reserved = Column(Integer, nullable=False, default=0)
    updated_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity"),
        CheckConstraint("reserved >= 0 and reserved <= quantity", name="reserved"),
        # "Which stores have this variant?" is the hot query of the stock flows.
        Index("ix_stock_store_variant", "store_id", "variant_id"),
    )


class Restock(Base):
    __tablename__ = "restocks"
    id = Column(Integer, primary_key=True)
    variant_id = Column(ForeignKey("variants.id", ondelete="CASCADE"), nullable=False)
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"), nullable=False)
    expected_on = Column(Date, nullable=False)
    quantity = Column(Integer, nullable=False)

    __table_args__ = (Index("ix_restocks_variant_store", "variant_id", "store_id", "expected_on"),)


class Purchase(Base):
    __tablename__ = "purchases"
    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    variant_id = Column(ForeignKey("variants.id"), nullable=False)
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    purchased_at = Column(DateTime, nullable=False)
    quantity = Column(Integer, nullable=False, default=1)
    amount_cents = Column(Integer, nullable=False)

    __table_args__ = (Index("ix_purchases_customer", "customer_id", "purchased_at"),)


class Reservation(Base):
    """A hold for pickup; its units are counted in `stock.reserved` while active."""

    __tablename__ = "reservations"
    id = Column(Integer, primary_key=True)
    code = Column(String(12), nullable=False, unique=True)
    variant_id = Column(ForeignKey("variants.id"), nullable=False)
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="SET NULL"))
    identity_id = Column(ForeignKey("chat_identities.id", ondelete="SET NULL"))
    quantity = Column(Integer, nullable=False)
    status = Column(String(16), nullable=False, default="active")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)

    __table_args__ = (
        CheckConstraint("status in ('active', 'cancelled', 'expired', 'collected')", name="status"),
        CheckConstraint("quantity > 0", name="quantity"),
        Index("ix_reservations_status_expires", "status", "expires_at"),
    )


class StockAlert(Base):
    """A back-in-stock alert, sent once on the chosen channel."""

    __tablename__ = "stock_alerts"
    id = Column(Integer, primary_key=True)
    variant_id = Column(ForeignKey("variants.id", ondelete="CASCADE"), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"))
    identity_id = Column(ForeignKey("chat_identities.id", ondelete="CASCADE"))
    store_id = Column(ForeignKey("stores.id", ondelete="CASCADE"))  # null: anywhere
    channel = Column(String(16), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)

    __table_args__ = (Index("ix_stock_alerts_variant_pending", "variant_id", "sent_at"),)


class ProductLink(Base):
    """A part, consumable or accessory that goes with a product (a machine's filter)."""

    __tablename__ = "product_links"
    product_id = Column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    linked_product_id = Column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    kind = Column(String(16), nullable=False)

    __table_args__ = (
        CheckConstraint("kind in ('part', 'consumable', 'accessory')", name="kind"),
    )
