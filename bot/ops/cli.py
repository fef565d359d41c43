"""Command line: `python -m bot <command>`.

    up        migrate, seed, train if needed, then run Rasa + actions + gateway
    migrate   bring the shop database schema up to date
    seed      fill an empty shop database with the demo shop (--scale for benchmarks)
    train     train the Rasa model if config, domain, data or review labels changed (--force)
    retrain   train with the review labels, then load the model into the running Rasa
    gateway   run the gateway alone
    check     validate settings and print them (secrets hidden)
    stock     set stock: `stock set SKU STORE QTY` or `stock import file.csv`
    import    `import stores|inventory|customers|consents FILE`: the retailer's own files (--dry-run, --skip-invalid)
    holds     `holds expire`: free the stock of holds past their time
    agents    `agents add USERNAME [--role reviewer|admin]`: a console account (password asked)
    requests  personal-data requests with status and due date (--all for closed ones)
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
import time
from pathlib import Path
from typing import List, Optional
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.assistant.client import RasaClient, RasaUnavailable
from bot.core.db import make_engine, make_session_factory, migrate
from bot.core.models import Base
from bot.core.settings import Settings, SettingsError, load_settings
from bot.handover.hours import support_hours
from bot.imports.customers import import_consents, import_customers
from bot.imports.export import export_shop
from bot.imports.feed import FeedError
from bot.imports.inventory import import_inventory
from bot.imports.products import import_products
from bot.imports.stores import import_stores
from bot.offers.rules import RulesError, load_rules
from bot.ops.demo import seed_demo_shop
from bot.ops.demo_history import forget_history, seed_history
from bot.ops.staff import STAFF_HANDLERS, add_staff_commands, iso_date, step
from bot.ops.supervisor import STOP_GRACE_SECONDS, process_specs, supervise, write_endpoints
from bot.ops.training import CURRENT, train_current
from bot.stock.importer import StockUpdateError, apply_stock_updates, read_csv
from bot.web.app import run_gateway


def _redact_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def cmd_migrate(settings: Settings, _args) -> int:
    step(f"migrating shop database {_redact_url(settings.database_url)}")
    migrate(settings.database_url)
    return 0


def cmd_seed(settings: Settings, args) -> int:
    migrate(settings.database_url)
    today = args.date or dt.datetime.now(ZoneInfo(settings.timezone)).date()
    seed = settings.demo_seed if args.seed is None else args.seed
    engine = make_engine(settings.database_url)
    try:
        if args.reset:
            _reset(engine)
        started = time.monotonic()
        step(f"seeding the demo shop (seed {seed}, date {today}{', scale' if args.scale else ''})")
        counts = seed_demo_shop(engine, seed, today, scale=args.scale,
                                progress=lambda text: print(f"    {text}", flush=True))
        if counts is None:
            step("shop database already has data; not seeding (use --reset to start over)")
        else:
            step(f"seeded in {time.monotonic() - started:.1f} s")
            if not args.scale:
                _seed_history(settings, engine, seed, today, args.reset)
        if args.export:
            written = export_shop(make_session_factory(engine), args.export)
            step(f"exported to {args.export}: " + ", ".join(f"{name} ({rows} lines)"
                                                             for name, rows in written.items()))
    finally:
        engine.dispose()
    return 0


def _seed_history(settings: Settings, engine, seed: int, today: dt.date, reset: bool) -> None:
    """A month of past conversations, for the dashboard and the review inbox."""
    trackers = make_engine(settings.tracker_store_url)
    try:
        if reset:
            forget_history(trackers)
        history = seed_history(engine, trackers, seed, today, settings.identity_secret,
                               settings.timezone)
    finally:
        trackers.dispose()
    if history.messages:
        step(f"history: {sum(history.conversations.values())} past conversations over "
             f"{len(history.conversations)} days ({history.messages} messages, "
             f"{history.handovers} handovers, {history.review} messages to review)")


def _reset(engine) -> None:
    step("emptying the shop database")
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            connection.exec_driver_sql(
                "ALTER TABLE consent_ledger DISABLE TRIGGER consent_ledger_append_only")
            connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            connection.exec_driver_sql(
                "ALTER TABLE consent_ledger ENABLE TRIGGER consent_ledger_append_only")
            return
        for table in reversed(Base.metadata.sorted_tables):
            if table.name == "consent_ledger":
                # A demo reset is the one place the ledger goes: drop and re-create it
                # with its append-only triggers rather than deleting rows.
                connection.exec_driver_sql("DROP TRIGGER IF EXISTS consent_ledger_no_delete")
                connection.execute(table.delete())
                connection.exec_driver_sql(
                    "CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledger "
                    "BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END")
            else:
                connection.execute(table.delete())


def prepare_shop(settings: Settings) -> None:
    """Migrate, then seed the demo shop if the database is empty."""
    cmd_migrate(settings, None)
    cmd_seed(settings, argparse.Namespace(scale=False, reset=False, date=None, seed=None, export=None))


def cmd_train(settings: Settings, args) -> int:
    train_current(settings, progress=step, force=args.force)
    return 0


def cmd_retrain(settings: Settings, _args) -> int:
    """Train with the review labels, then load the model into the running Rasa."""
    model = train_current(settings, progress=step)

    async def swap() -> None:
        async with aiohttp.ClientSession() as session:
            await RasaClient(session, settings.rasa_urls, settings.rasa_token,
                             settings.action_server_url).load_model(str(model.resolve()))

    try:
        asyncio.run(swap())
    except RasaUnavailable as error:
        step(f"Rasa did not load it ({error}): it will when Comptoir next starts")
        return 1
    step(f"{model.name} loaded into {len(settings.rasa_urls)} Rasa replica(s)")
    return 0


def cmd_gateway(settings: Settings, _args) -> int:
    # Turns in progress get a few seconds to finish on the way out, well within the
    # supervisor's grace period (aiohttp's default, 60 s, is past it).
    run_gateway(settings, shutdown_timeout=STOP_GRACE_SECONDS / 4)
    return 0


def cmd_check(settings: Settings, _args) -> int:
    for name, value in vars(settings).items():
        if "token" in name or "secret" in name:
            value = "(set)" if value else "(not set)"
        elif name.endswith("_url") and value:
            value = _redact_url(value) if "://" in str(value) else value
        print(f"{name} = {value}")
    return 0


def cmd_up(settings: Settings, args) -> int:
    prepare_shop(settings)
    train_current(settings, progress=step)
    # Rasa starts (and restarts) with the model the link points at: a retraining moves it.
    model = settings.models_dir / CURRENT
    endpoints = write_endpoints(settings)
    return asyncio.run(supervise(settings, process_specs(settings, model, endpoints)))


def cmd_stock(settings: Settings, args) -> int:
    if args.action == "set":
        updates = [{"sku": args.sku, "store": args.store, "quantity": args.quantity}]
    else:
        updates = read_csv(args.file)
    engine = make_engine(settings.database_url)
    try:
        result = apply_stock_updates(make_session_factory(engine), updates)
    except StockUpdateError as error:
        print(f"Stock update refused, nothing changed: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    step(f"{result['updated']} stock lines updated, {result['back_in_stock']} back in stock, "
         f"{result['alerts_queued']} alerts queued")
    return 0


IMPORTS = {"products": import_products, "stores": import_stores, "inventory": import_inventory,
           "customers": import_customers, "consents": import_consents}


def cmd_import(settings: Settings, args) -> int:
    """A retailer's own file: checked row by row, then all written, or nothing."""
    if args.delete_missing and args.kind != "products":
        print("Import refusé : --delete-missing ne vaut que pour les produits", file=sys.stderr)
        return 2
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    options = {"delete_missing": True} if args.delete_missing else {}
    try:
        report = IMPORTS[args.kind](make_session_factory(engine), args.file, dry_run=args.dry_run,
                                    skip_invalid=args.skip_invalid, **options)
    except FeedError as error:
        print(f"Import refusé : {error}", file=sys.stderr)
        return 1
    except SQLAlchemyError as error:  # the kind only: a statement's values may be personal
        print(f"Import refusé, rien n'est écrit : la base de données a refusé l'écriture "
              f"({type(error).__name__}).", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    for line in report.lines():
        print(line)
    return 0 if report.written or (args.dry_run and not report.problems) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Comptoir")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="set everything up and run the three processes")
    commands.add_parser("migrate", help="migrate the shop database")
    seed = commands.add_parser("seed", help="seed the demo shop")
    seed.add_argument("--scale", action="store_true", help="200 stores x 50,000 SKUs")
    seed.add_argument("--reset", action="store_true", help="empty the database first")
    seed.add_argument("--date", type=iso_date, help="seeding day (default: today)")
    seed.add_argument("--seed", type=int, help="random seed (default: DEMO_SEED or 42)")
    seed.add_argument("--export", type=Path, metavar="DIR", help="then write the shop as the files "
                      "`import` reads (stores, products, inventory, customers, consents)")
    train = commands.add_parser("train", help="train the model if config, domain, data or review "
                                "labels changed")
    train.add_argument("--force", action="store_true")
    commands.add_parser("retrain", help="train with the review labels, then load the model into "
                        "the running Rasa (no restart)")
    commands.add_parser("gateway", help="run the gateway alone")
    commands.add_parser("check", help="validate and print settings")
    stock = commands.add_parser("stock", help="update stock (fires back-in-stock alerts)")
    stock_actions = stock.add_subparsers(dest="action", required=True)
    one = stock_actions.add_parser("set", help="set the on-hand quantity of one SKU")
    one.add_argument("sku", help="variant SKU (P000001-05) or EAN")
    one.add_argument("store", help="store code (LYS-PDI) or WEB")
    one.add_argument("quantity", type=int)
    many = stock_actions.add_parser("import", help="CSV with columns sku (or ean), store, quantity")
    many.add_argument("file", type=Path)
    imports = commands.add_parser("import", help="a retailer's own file (checked, then all or nothing)")
    imports.add_argument("kind", choices=sorted(IMPORTS), help="products (the product feed: TSV, "
                         "CSV or XML), stores (the business-profile store sheet), inventory (the "
                         "local inventory feed), customers and consents (a CRM export)")
    imports.add_argument("file", type=Path)
    imports.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    imports.add_argument("--skip-invalid", action="store_true", help="load the valid rows, report the others")
    imports.add_argument("--delete-missing", action="store_true", help="products: withdraw those the "
                         "file does not list (nothing that holds, purchases or alerts use is deleted)")
    add_staff_commands(commands)
    return parser


HANDLERS = {"up": cmd_up, "migrate": cmd_migrate, "seed": cmd_seed, "train": cmd_train,
            "retrain": cmd_retrain, "gateway": cmd_gateway, "check": cmd_check, "stock": cmd_stock,
            "import": cmd_import, **STAFF_HANDLERS}


def check_domain_settings(settings: Settings) -> None:
    """The settings that hold domain rules, checked by their own packages at start-up."""
    try:
        load_rules(settings.offer_rules_file)
    except RulesError as error:
        raise SettingsError(f"OFFER_RULES: {error}") from error
    try:
        support_hours(settings.support_hours, settings.timezone)
    except ValueError:
        raise SettingsError("SUPPORT_HOURS must look like 'lun-sam 09:00-19:00', "
                            f"got {settings.support_hours!r}") from None


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # var/ holds the databases, secrets, the endpoints file with the action server's token
    # and the outbox with one-time codes: readable by this user only, whatever the
    # shell's umask (the supervisor's children inherit it).
    os.umask(0o077)
    try:
        settings = load_settings()
        check_domain_settings(settings)
    except SettingsError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings.var_dir.chmod(0o700)  # also for a var/ made by an earlier version
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return HANDLERS[args.command](settings, args)
