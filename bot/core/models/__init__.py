"""The shop schema: stores, catalog, stock, customers, consent, requests, handover.

SQLAlchemy 1.4 declarative models written in 2.0 style, one module per part of the shop,
all on one `Base` and imported here, so `from bot.core.models import Store` is the way
in. Schema changes go through Alembic migrations in `migrations/`;
`tests/test_migrations.py` checks that the migrations and these models agree.
"""
from bot.core.models.base import (Base, CONSENT_CHANNELS, CONSENT_PURPOSES, MESSAGE_PURPOSES, NAMING,
                                  utcnow)
from bot.core.models.customers import (BIRTHDAY_NO_YEAR, BirthdayPush, ChatIdentity, Consent,
                                       ConsentLedgerEntry, Customer, ExportLink, PrivacyRequest,
                                       PrivacyRequestChange, UsedCustomerToken, VerificationCode,
                                       Voucher)
from bot.core.models.shop import (Product, ProductLink, Purchase, Reservation, Restock, Stock,
                                  StockAlert, Store, StoreClosure, StoreHours, Variant)
from bot.core.models.review import (DEMAND_KINDS, DemandSignal, REVIEW_REASONS, ReviewMessage,
                                    SatisfactionAnswer)
from bot.core.models.support import (AGENT_ROLES, Agent, AgentSession, DataAccessLog, HandoverTicket,
                                     LoginFailure, OutboundMessage, QueuedMail, TicketMessage,
                                     TicketNote)

__all__ = [
    "BIRTHDAY_NO_YEAR",
    "NAMING", "Base", "CONSENT_PURPOSES", "MESSAGE_PURPOSES", "CONSENT_CHANNELS", "utcnow", "Store", "StoreHours",
    "StoreClosure", "Product", "Variant", "Stock", "Restock", "Purchase", "Reservation",
    "StockAlert", "ProductLink", "Customer", "ChatIdentity", "Consent", "ConsentLedgerEntry",
    "Voucher", "BirthdayPush", "ExportLink", "PrivacyRequestChange", "PrivacyRequest",
    "VerificationCode", "UsedCustomerToken", "OutboundMessage", "QueuedMail", "HandoverTicket",
    "TicketMessage", "TicketNote", "Agent", "LoginFailure", "AgentSession", "DataAccessLog",
    "ReviewMessage", "DemandSignal", "REVIEW_REASONS", "DEMAND_KINDS", "AGENT_ROLES",
    "SatisfactionAnswer",
]
