"""The commands the shop's staff run, as a till or a back office would: holds, console
accounts, personal-data requests, birthday pushes, vouchers and loyalty cards; and the two
small helpers every command uses (`step` to say what is done, `iso_date` to read a date)."""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from zoneinfo import ZoneInfo

from bot.core.db import make_engine, make_session_factory, migrate
from bot.core.messaging import Messenger
from bot.core.models import AGENT_ROLES, utcnow
from bot.core.settings import Settings
from bot.handover.agents import create_agent
from bot.offers.loyalty import CARD_OUTCOMES_FR, activate_card_number
from bot.offers.pushes import plan_pushes, plan_summary, run_birthday_pushes
from bot.offers.rules import load_rules
from bot.offers.vouchers import check_voucher, use_voucher
from bot.privacy.requests import list_requests
from bot.stock.reservations import COLLECT_OUTCOMES_FR, collect as collect_hold, expire_due


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-03-12, got {value!r}")


def cmd_holds(settings: Settings, args) -> int:
    engine = make_engine(settings.database_url)
    try:
        if args.action == "collect":
            if not (args.code and args.store):
                print("holds collect needs the pickup code and --store", file=sys.stderr)
                return 2
            with make_session_factory(engine).begin() as session:
                outcome = collect_hold(session, args.code, args.store)
            print(COLLECT_OUTCOMES_FR[outcome])
            return 0 if outcome == "collected" else 1
        expired = expire_due(make_session_factory(engine), utcnow())
    finally:
        engine.dispose()
    step(f"{expired} holds expired")
    return 0


def cmd_agents(settings: Settings, args) -> int:
    migrate(settings.database_url)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else \
        getpass.getpass(f"Mot de passe pour {args.username} : ")
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as session:
            create_agent(session, args.username, args.name or args.username, password,
                         role=args.role)
    except ValueError as error:
        print(f"Agent not created: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    step(f"agent {args.username} created; log in at {settings.gateway_url}/console")
    return 0


def cmd_requests(settings: Settings, args) -> int:
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        rows = list_requests(session, open_only=not args.all)
        for row in rows:
            late = " LATE" if row.status not in ("done", "refused") and row.due_at < utcnow() else ""
            print(f"#{row.id}  {row.kind:<13} {row.status:<11} received {row.created_at:%Y-%m-%d}  "
                  f"due {row.due_at:%Y-%m-%d}{late}")
        if not rows:
            print("no personal-data requests" + ("" if args.all else " open"))
    engine.dispose()
    return 0


def cmd_offers(settings: Settings, args) -> int:
    """Birthday pushes: `--dry-run` lists who would receive what on `--date` (whatever the
    hour); without it, the job runs now, as the gateway's scheduler does."""

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    try:
        if args.dry_run:
            day = args.date or dt.date.today()
            noon = dt.datetime.combine(day, dt.time(12)).replace(tzinfo=ZoneInfo(settings.timezone))
            with factory() as session:
                plans = plan_pushes(session, load_rules(settings.offer_rules_file), noon, ignore_quiet_hours=True)
            for line in plan_summary(plans):
                print(line)
            step(f"{len(plans)} birthday pushes due on {day.isoformat()} (dry run: nothing sent)")
            return 0
        if args.date:
            print("--date needs --dry-run: pushes are only ever sent on the day", file=sys.stderr)
            return 2
        queued, sent = run_birthday_pushes(
            factory, load_rules(settings.offer_rules_file), dt.datetime.now(dt.timezone.utc), settings.identity_secret,
            settings.public_url, Messenger(settings.outbox_dir, settings.smtp_url, settings.mail_from))
        step(f"{queued} birthday pushes queued, {sent} emails/SMS sent "
             "(Telegram ones leave with the gateway's outbox)")
        return 0
    finally:
        engine.dispose()


def cmd_vouchers(settings: Settings, args) -> int:
    """What a till does: check a voucher, or mark it used (refused with the reason)."""

    engine = make_engine(settings.database_url)
    now = utcnow()
    today = dt.datetime.now(dt.timezone.utc).astimezone(ZoneInfo(settings.timezone)).date()
    try:
        with make_session_factory(engine).begin() as session:
            if args.action == "check":
                result = check_voucher(session, args.code, today)
            else:
                result = use_voucher(session, args.code, args.store, now, today)
    finally:
        engine.dispose()
    print(result.reason)
    return 0 if result.status in ("valid", "used_now") else 1


def cmd_cards(settings: Settings, args) -> int:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as session:
            outcome = activate_card_number(session, args.card, args.store, utcnow())
    finally:
        engine.dispose()
    print(CARD_OUTCOMES_FR[outcome])
    return 0 if outcome in ("activated", "already") else 1


def add_staff_commands(commands) -> None:
    agents = commands.add_parser("agents", help="support console accounts")
    agents.add_argument("action", choices=["add"])
    agents.add_argument("username")
    agents.add_argument("--name", help="name shown to colleagues")
    agents.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    agents.add_argument("--role", choices=AGENT_ROLES, default="agent",
                        help="agent: tickets and requests; reviewer: also the review inbox and the "
                        "dashboard; admin: also retraining")
    requests = commands.add_parser("requests", help="personal-data requests and their due dates")
    requests.add_argument("--all", action="store_true", help="closed ones too")
    holds = commands.add_parser("holds", help="holds for pickup")
    holds.add_argument("action", choices=["expire", "collect"])
    holds.add_argument("code", nargs="?", help="collect: the pickup code the customer shows")
    holds.add_argument("--store", help="collect: the store's code (where the hold waits)")
    offers = commands.add_parser("offers", help="birthday pushes (run now, or --dry-run --date D)")
    offers.add_argument("action", choices=["push"])
    offers.add_argument("--date", type=iso_date, help="with --dry-run: the day to look at")
    offers.add_argument("--dry-run", action="store_true", help="list, send nothing")
    vouchers = commands.add_parser("vouchers", help="check or use a voucher, as a till does")
    vouchers.add_argument("action", choices=["check", "use"])
    vouchers.add_argument("code")
    vouchers.add_argument("--store", default="WEB", help="where it is used (store code or WEB)")
    cards = commands.add_parser("cards", help="activate a loyalty card, as any store's till does")
    cards.add_argument("action", choices=["activate"])
    cards.add_argument("card", help="the 12-digit card number")
    cards.add_argument("--store", required=True, help="store code (LYS-PDI) or WEB")


STAFF_HANDLERS = {"holds": cmd_holds, "agents": cmd_agents, "requests": cmd_requests,
                  "offers": cmd_offers, "vouchers": cmd_vouchers, "cards": cmd_cards}
