"""Settings read from the environment (and an optional `.env` file), validated once.

Every problem names the variable at fault so that start-up stops with a message an
operator can act on. Nothing here opens a connection.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dotenv import load_dotenv

from bot.core.signing import signature

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OFFER_RULES = PROJECT_ROOT / "bot" / "offers" / "offer_rules.yml"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    gateway_host: str
    gateway_port: int
    gateway_rest_token: Optional[str]
    gateway_replicas: int  # `bot up` starts this many, on consecutive ports from GATEWAY_PORT
    redis_url: Optional[str]  # where gateways share web chats, the console and limits
    rasa_host: str
    rasa_port: int
    rasa_replicas: int
    rasa_token: str
    action_host: str
    action_port: int
    database_url: str
    db_busy_timeout: float
    tracker_store_url: str
    lock_store_url: Optional[str]
    log_level: str
    demo_seed: int
    timezone: str
    models_dir: Path
    hold_hours: int
    review_retention_days: int  # how long misunderstood messages are kept for review
    stock_api_token: Optional[str]
    telegram_token: Optional[str]
    telegram_api_url: str
    telegram_webhook_url: Optional[str]
    telegram_webhook_secret: Optional[str]
    webchat_origins: Tuple[str, ...]
    support_hours: str  # "lun-sam 09:00-19:00", read by bot.handover.hours
    identity_secret: str
    customer_token_secret: Optional[str]
    smtp_url: Optional[str]
    mail_from: str
    offer_rules_file: Path  # read by bot.offers.rules
    till_api_token: Optional[str]
    orders_url: str
    orders_contact: str
    public_url: str  # where shoppers and agents reach the gateway (export and voucher links)
    trusted_proxies: Tuple[str, ...]  # whose X-Forwarded-For names the client

    @property
    def behind_tls(self) -> bool:
        """Served over HTTPS (directly or by a proxy in front): cookies are Secure."""
        return self.public_url.startswith("https://")

    @property
    def outbox_dir(self) -> Path:
        return self.var_dir / "outbox"

    @property
    def rasa_url(self) -> str:
        return self.rasa_urls[0]

    @property
    def rasa_urls(self) -> Tuple[str, ...]:
        """One URL per Rasa replica, on consecutive ports from RASA_PORT."""
        return tuple(f"http://{_url_host(self.rasa_host)}:{self.rasa_port + i}"
                     for i in range(self.rasa_replicas))

    @property
    def action_server_url(self) -> str:
        return f"http://{_url_host(self.action_host)}:{self.action_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{_url_host(self.gateway_host)}:{self.gateway_port}"

    @property
    def gateway_urls(self) -> Tuple[str, ...]:
        """One URL per gateway `bot up` starts, on consecutive ports from GATEWAY_PORT."""
        return tuple(f"http://{_url_host(self.gateway_host)}:{self.gateway_port + i}"
                     for i in range(self.gateway_replicas))

    @property
    def shared_prefix(self) -> str:
        """Redis keys and channels of the gateways serving this shop (another shop, or a
        test run, on the same Redis keeps apart)."""
        return f"comptoir:{hashlib.sha256(self.database_url.encode()).hexdigest()[:12]}:"

    @property
    def gateway_is_loopback(self) -> bool:
        return is_loopback(self.gateway_host)

    @property
    def action_token(self) -> str:
        """What Rasa shows the action server (derived: one secret to keep, RASA_TOKEN)."""
        return signature(self.rasa_token, "comptoir-action-server")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return _int(env, name, default, 1, 65535)


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if value != "localhost":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise SettingsError(
                f"{name} must be an IP address (for example 127.0.0.1), got {value!r}"
            ) from None
    return value


def _sql_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    scheme = urlsplit(value).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise SettingsError(
            f"{name} must be a sqlite:/// or postgresql:// URL, got scheme {scheme or 'none'!r}"
        )
    return value


def _secret_file(path: Path) -> str:
    """Read a generated secret, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def load_dotenv_file(path: Path) -> None:
    """Load `.env` without overriding variables already set in the environment."""
    if path.exists():
        load_dotenv(path, override=False)


def load_settings(env: Optional[Mapping[str, str]] = None) -> Settings:
    if env is None:
        load_dotenv_file(PROJECT_ROOT / ".env")
        env = os.environ
    var_dir = Path(env.get("COMPTOIR_VAR_DIR", "").strip() or PROJECT_ROOT / "var").resolve()
    models_dir = Path(env.get("COMPTOIR_MODELS_DIR", "").strip() or PROJECT_ROOT / "models").resolve()

    gateway_host = _host(env, "GATEWAY_HOST", "127.0.0.1")
    gateway_port = _port(env, "GATEWAY_PORT", 8080)
    rest_token = env.get("GATEWAY_REST_TOKEN", "").strip() or None
    if not is_loopback(gateway_host) and not rest_token:
        raise SettingsError(
            "GATEWAY_REST_TOKEN is required when GATEWAY_HOST is not a loopback address "
            f"(GATEWAY_HOST={gateway_host})"
        )
    public_url = _public_url(env, gateway_host, gateway_port)
    if not is_loopback(urlsplit(public_url).hostname or "") and not rest_token:
        # Behind a reverse proxy the gateway listens on loopback, yet anyone reaches it.
        raise SettingsError(
            "GATEWAY_REST_TOKEN is required when PUBLIC_URL is not on this machine "
            f"(PUBLIC_URL={public_url}): a reverse proxy makes the REST channel public")
    if rest_token is not None and len(rest_token) < 16:
        raise SettingsError("GATEWAY_REST_TOKEN must be at least 16 characters long")

    for name, default in (("RASA_HOST", "127.0.0.1"), ("ACTION_HOST", "127.0.0.1")):
        host = _host(env, name, default)
        if not is_loopback(host) and env.get("ALLOW_REMOTE_INTERNALS", "").strip() != "1":
            raise SettingsError(
                f"{name}={host} is not a loopback address: Rasa and the action server are meant "
                "to be reached by the gateway only. Put them behind a private network and set "
                "ALLOW_REMOTE_INTERNALS=1 to confirm.")

    rasa_token = env.get("RASA_TOKEN", "").strip()
    if not rasa_token:
        rasa_token = _secret_file(var_dir / "rasa_token")
    elif len(rasa_token) < 16:
        raise SettingsError("RASA_TOKEN must be at least 16 characters long")

    stock_api_token = env.get("STOCK_API_TOKEN", "").strip() or None
    if stock_api_token is not None and len(stock_api_token) < 16:
        raise SettingsError("STOCK_API_TOKEN must be at least 16 characters long")

    telegram_token = env.get("TELEGRAM_BOT_TOKEN", "").strip() or None
    if telegram_token is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", telegram_token):
        raise SettingsError("TELEGRAM_BOT_TOKEN must look like 123456:ABC-DEF... (from @BotFather)")
    telegram_api_url = (env.get("TELEGRAM_API_URL", "").strip() or "https://api.telegram.org").rstrip("/")
    if urlsplit(telegram_api_url).scheme not in ("http", "https"):
        raise SettingsError("TELEGRAM_API_URL must be an http(s) URL")
    webhook_url = env.get("TELEGRAM_WEBHOOK_URL", "").strip() or None
    if webhook_url is not None and urlsplit(webhook_url).scheme != "https" \
            and urlsplit(webhook_url).hostname not in ("127.0.0.1", "localhost"):
        raise SettingsError("TELEGRAM_WEBHOOK_URL must be an https:// URL")
    webhook_secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip() or None
    if webhook_url and webhook_secret is None:
        webhook_secret = _secret_file(var_dir / "telegram_webhook_secret")
    if webhook_secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", webhook_secret):
        raise SettingsError("TELEGRAM_WEBHOOK_SECRET must be 16 to 256 characters of A-Z, a-z, 0-9, _ or -")

    lock_store_url = _redis_url(env, "LOCK_STORE_URL")
    redis_url = _redis_url(env, "REDIS_URL")

    log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    timezone = env.get("SHOP_TIMEZONE", "").strip() or "Europe/Paris"
    try:
        ZoneInfo(timezone)
    except Exception:
        raise SettingsError(f"SHOP_TIMEZONE must be an IANA time zone, got {timezone!r}") from None

    origins = env.get("WEBCHAT_ORIGINS", "").strip()
    if origins:
        webchat_origins = tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip())
        for origin in webchat_origins:
            if urlsplit(origin).scheme not in ("http", "https") or not urlsplit(origin).netloc:
                raise SettingsError(f"WEBCHAT_ORIGINS must list origins like https://shop.example, got {origin!r}")
    else:
        webchat_origins = (f"http://{_url_host(gateway_host)}:{gateway_port}",
                           f"http://localhost:{gateway_port}")
        public = urlsplit(public_url)
        if f"{public.scheme}://{public.netloc}" not in webchat_origins:  # a proxy in front
            webchat_origins += (f"{public.scheme}://{public.netloc}",)

    support_hours = env.get("SUPPORT_HOURS", "").strip() or "lun-sam 09:00-19:00"

    identity_secret = env.get("IDENTITY_SECRET", "").strip() or _secret_file(var_dir / "identity_secret")
    if len(identity_secret) < 32:
        raise SettingsError("IDENTITY_SECRET must be at least 32 characters long")
    customer_token_secret = env.get("CUSTOMER_TOKEN_SECRET", "").strip() or None
    if customer_token_secret is not None and len(customer_token_secret) < 32:
        raise SettingsError("CUSTOMER_TOKEN_SECRET must be at least 32 characters long")
    smtp_url = env.get("SMTP_URL", "").strip() or None
    if smtp_url is not None and urlsplit(smtp_url).scheme not in ("smtp", "smtps"):
        raise SettingsError("SMTP_URL must be an smtp:// or smtps:// URL")
    offer_rules_file = Path(env.get("OFFER_RULES", "").strip() or DEFAULT_OFFER_RULES)
    rasa_replicas = _int(env, "RASA_REPLICAS", 1, 1, 8)
    tracker_store_url = _sql_url(env, "TRACKER_STORE_URL", f"sqlite:///{var_dir / 'trackers.db'}")
    if rasa_replicas > 1 and (not lock_store_url or tracker_store_url.startswith("sqlite")):
        raise SettingsError("RASA_REPLICAS above 1 needs LOCK_STORE_URL (Redis) and a "
                            "PostgreSQL TRACKER_STORE_URL: replicas share conversations through them")
    database_url = _sql_url(env, "DATABASE_URL", f"sqlite:///{var_dir / 'shop.db'}")
    gateway_replicas = _int(env, "GATEWAY_REPLICAS", 1, 1, 8)
    if gateway_replicas > 1 and (not redis_url or database_url.startswith("sqlite")
                                 or tracker_store_url.startswith("sqlite")):
        raise SettingsError("GATEWAY_REPLICAS above 1 needs REDIS_URL and PostgreSQL DATABASE_URL "
                            "and TRACKER_STORE_URL: gateways share web chats, the console and "
                            "limits through Redis, and conversations through PostgreSQL")
    till_api_token = env.get("TILL_API_TOKEN", "").strip() or None
    if till_api_token is not None and len(till_api_token) < 16:
        raise SettingsError("TILL_API_TOKEN must be at least 16 characters long")

    orders_url = env.get("ORDERS_URL", "").strip() or "https://www.comptoir.example/aide/commandes"
    if urlsplit(orders_url).scheme not in ("http", "https") or not urlsplit(orders_url).netloc:
        raise SettingsError(f"ORDERS_URL must be an http(s) URL, got {orders_url!r}")

    return Settings(
        var_dir=var_dir,
        gateway_host=gateway_host,
        gateway_port=gateway_port,
        gateway_rest_token=rest_token,
        gateway_replicas=gateway_replicas,
        redis_url=redis_url,
        rasa_host=_host(env, "RASA_HOST", "127.0.0.1"),
        rasa_port=_port(env, "RASA_PORT", 5005),
        rasa_replicas=rasa_replicas,
        rasa_token=rasa_token,
        action_host=_host(env, "ACTION_HOST", "127.0.0.1"),
        action_port=_port(env, "ACTION_PORT", 5055),
        database_url=database_url,
        tracker_store_url=tracker_store_url,
        db_busy_timeout=float(_int(env, "DB_BUSY_TIMEOUT", 15, 1, 120)),
        lock_store_url=lock_store_url,
        log_level=log_level,
        demo_seed=_int(env, "DEMO_SEED", 42, 0, 2**31 - 1),
        timezone=timezone,
        models_dir=models_dir,
        hold_hours=_int(env, "HOLD_HOURS", 48, 1, 24 * 30),
        review_retention_days=_int(env, "REVIEW_RETENTION_DAYS", 90, 1, 3650),
        stock_api_token=stock_api_token,
        telegram_token=telegram_token,
        telegram_api_url=telegram_api_url,
        telegram_webhook_url=webhook_url,
        telegram_webhook_secret=webhook_secret,
        webchat_origins=webchat_origins,
        support_hours=support_hours,
        identity_secret=identity_secret,
        customer_token_secret=customer_token_secret,
        smtp_url=smtp_url,
        mail_from=env.get("MAIL_FROM", "").strip() or "Comptoir <ne-pas-repondre@comptoir.example>",
        offer_rules_file=offer_rules_file,
        till_api_token=till_api_token,
        orders_url=orders_url,
        orders_contact=env.get("ORDERS_CONTACT", "").strip() or "notre service client au 01 84 80 00 00",
        public_url=public_url,
        trusted_proxies=_addresses(env, "TRUSTED_PROXIES"),
    )


def _redis_url(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name, "").strip() or None
    if value and urlsplit(value).scheme not in ("redis", "rediss"):
        raise SettingsError(f"{name} must be a redis:// URL, got {value.split(':')[0]!r}")
    return value


def _addresses(env: Mapping[str, str], name: str) -> Tuple[str, ...]:
    found = []
    for item in (part.strip() for part in env.get(name, "").split(",")):
        if not item:
            continue
        try:
            found.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise SettingsError(f"{name} must list IP addresses, got {item!r}") from None
    return tuple(found)


def _public_url(env: Mapping[str, str], gateway_host: str, gateway_port: int) -> str:
    """PUBLIC_URL, or the gateway's own address when that is one a browser can open."""
    value = env.get("PUBLIC_URL", "").strip().rstrip("/")
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise SettingsError(f"PUBLIC_URL must be like https://shop.example, got {value!r}")
        return value
    if gateway_host in ("0.0.0.0", "::"):
        raise SettingsError(
            f"PUBLIC_URL is required when GATEWAY_HOST={gateway_host}: links sent to customers "
            "(data exports, vouchers) need the address they reach the shop at")
    return f"http://{_url_host(gateway_host)}:{gateway_port}"
