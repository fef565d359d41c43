"""The declarative base with the constraint naming convention, and the names shared by
the schema's modules.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import MetaData
from sqlalchemy.orm import declarative_base


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


Base = declarative_base(metadata=MetaData(naming_convention=NAMING))


# Purposes and channels of consent; the identity and consent flows use these names.
# Messages we may send; then "analytics": the customer's conversations may be kept
# (masked) for review and counted in demand signals. It is about the use of data, not
# a channel to reach them: STOP and "unsubscribe me from everything" leave it alone.
MESSAGE_PURPOSES = ("offers", "birthday", "back_in_stock", "personalisation")
CONSENT_PURPOSES = MESSAGE_PURPOSES + ("analytics",)
CONSENT_CHANNELS = ("email", "sms", "post", "telegram", "web")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
