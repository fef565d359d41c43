"""The shop schema: stores, catalog, stock, customers, consent, requests, handover.

SQLAlchemy 1.4 declarative models written in 2.0 style, one module per part of the shop,
all on one `Base` and imported here, so `from bot.core.models import Store` is the way
in. Schema changes go through Alembic migrations in `migrations/`;
`tests/test_migrations.py` checks that the migrations and these models agree.
"""
from bot.core.models.base import (NAMING, Base, CONSENT_PURPOSES, CONSENT_CHANNELS, utcnow)
from bot.core.models.shop import (Store, StoreHours, StoreClosure, Product, Variant, Stock,
                                  Restock, Purchase, Reservation, StockAlert, ProductLink)
from bot.core.models.customers import (Customer, ChatIdentity, Consent, ConsentLedgerEntry,
                                       Voucher, BirthdayPush, ExportLink, PrivacyRequestChange,
                                       PrivacyRequest, VerificationCode, UsedCustomerToken)
from bot.core.models.support import (OutboundMessage, QueuedMail, HandoverTicket, TicketMessage,
                                     TicketNote, Agent, LoginFailure, AgentSession, DataAccessLog)

__all__ = [
    "NAMING", "Base", "CONSENT_PURPOSES", "CONSENT_CHANNELS", "utcnow", "Store", "StoreHours",
    "StoreClosure", "Product", "Variant", "Stock", "Restock", "Purchase", "Reservation",
    "StockAlert", "ProductLink", "Customer", "ChatIdentity", "Consent", "ConsentLedgerEntry",
    "Voucher", "BirthdayPush", "ExportLink", "PrivacyRequestChange", "PrivacyRequest",
    "VerificationCode", "UsedCustomerToken", "OutboundMessage", "QueuedMail", "HandoverTicket",
    "TicketMessage", "TicketNote", "Agent", "LoginFailure", "AgentSession", "DataAccessLog",
]
