"""Support console accounts: argon2 passwords, sessions with CSRF tokens, lock-out."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.core.models import AGENT_ROLES, Agent, AgentSession, LoginFailure, utcnow

MAX_FAILURES = 5  # per client address
MAX_FAILURES_ANYWHERE = 50
LOCK_MINUTES = 15
SESSION_HOURS = 12
_hasher = PasswordHasher()
# Spent on unknown usernames too, so timing does not tell which accounts exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class LoggedIn:
    agent_id: int
    display_name: str
    token: str  # goes in the HttpOnly cookie; only its hash is stored
    csrf_token: str
    role: str = "agent"


@dataclass(frozen=True)
class SessionInfo:
    agent_id: int
    username: str
    display_name: str
    csrf_token: str
    role: str = "agent"

    def may(self, role: str) -> bool:
        """This account has `role` or a wider one (admin > reviewer > agent)."""
        return AGENT_ROLES.index(self.role) >= AGENT_ROLES.index(role)


def create_agent(session: Session, username: str, display_name: str, password: str,
                 role: str = "agent") -> Agent:
    if len(password) < 10:
        raise ValueError("the password must be at least 10 characters long")
    if role not in AGENT_ROLES:
        raise ValueError(f"unknown role {role!r} ({', '.join(AGENT_ROLES)})")
    agent = Agent(username=username.strip().lower(), display_name=display_name.strip(),
                  password_hash=_hasher.hash(password), role=role, created_at=utcnow())
    session.add(agent)
    session.flush()
    return agent


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _address_ref(address: str) -> str:
    return hashlib.sha256(f"console-login:{address}".encode()).hexdigest()


def login(session: Session, username: str, password: str,
          now: Optional[dt.datetime] = None, address: str = "") -> Optional[LoggedIn]:
    """None for a wrong password, an unknown user or a locked account (same answer, same
    work). MAX_FAILURES wrong passwords from one client address lock the account for
    that address for LOCK_MINUTES; MAX_FAILURES_ANYWHERE from all addresses together
    lock it everywhere (a guessing attack spread over many machines)."""
    now = now or utcnow()
    agent = session.execute(select(Agent).where(
        Agent.username == username.strip().lower())).scalar_one_or_none()
    if agent is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    ref = _address_ref(address)
    since = now - dt.timedelta(minutes=LOCK_MINUTES)
    recent = session.execute(select(LoginFailure.address_ref).where(
        LoginFailure.agent_id == agent.id, LoginFailure.failed_at > since)).scalars().all()
    locked = recent.count(ref) >= MAX_FAILURES or len(recent) >= MAX_FAILURES_ANYWHERE
    try:
        # Checked even when locked: a locked account must not answer faster than a
        # wrong password (that would tell which accounts exist and are under attack).
        _hasher.verify(agent.password_hash, password)
    except (VerificationError, InvalidHashError):
        session.add(LoginFailure(agent_id=agent.id, address_ref=ref, failed_at=now))
        return None
    if locked:
        return None
    session.execute(delete(LoginFailure).where(LoginFailure.agent_id == agent.id,
                                               LoginFailure.address_ref == ref))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(AgentSession(token_hash=_hash_token(token), agent_id=agent.id, csrf_token=csrf,
                             created_at=now, expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
    return LoggedIn(agent.id, agent.display_name, token, csrf, agent.role)


def session_for(session: Session, token: Optional[str],
                now: Optional[dt.datetime] = None) -> Optional[SessionInfo]:
    if not token:
        return None
    now = now or utcnow()
    row = session.execute(select(AgentSession, Agent).join(Agent, Agent.id == AgentSession.agent_id)
                          .where(AgentSession.token_hash == _hash_token(token))).first()
    if row is None or row.AgentSession.expires_at <= now:
        return None
    return SessionInfo(row.Agent.id, row.Agent.username, row.Agent.display_name,
                       row.AgentSession.csrf_token, row.Agent.role)


def logout(session: Session, token: str) -> None:
    session.execute(delete(AgentSession).where(AgentSession.token_hash == _hash_token(token)))
