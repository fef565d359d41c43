"""Finding a store and reading its hours, as a shopper would ask."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.core.db import make_engine, make_session_factory
from bot.stores import directory

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def session(seeded_sqlite_url):
    engine = make_engine(seeded_sqlite_url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.mark.parametrize("query, expected", [
    ("Lille", {"Lille Centre"}),
    ("lille", {"Lille Centre"}),
    ("LILLE", {"Lille Centre"}),
    ("lile", {"Lille Centre"}),
    ("clermont ferrand", {"Clermont-Ferrand Jaude"}),
    ("Bordeaux Sainte-Catherine", {"Bordeaux Sainte-Catherine"}),
    ("bordeaux ste catherine", {"Bordeaux Sainte-Catherine"}),
    ("Paris", {"Paris Rivoli", "Paris Montparnasse"}),
    ("part dieu", {"Lyon Part-Dieu"}),
    ("aix", {"Aix-en-Provence Allées"}),
])
def test_stores_are_found_despite_accents_case_and_typos(session, query, expected):
    assert {s.name for s in directory.find_stores(session, query)} == expected


@pytest.mark.parametrize("query", ["Quimper", "", "   ", "'; DROP TABLE stores; --", "🙂"])
def test_unknown_or_junk_places_find_nothing(session, query):
    assert directory.find_stores(session, query) == []


def test_hours_say_open_now_and_until_when(session):
    lille = directory.find_stores(session, "Lille")[0]
    opening = lille.hours[0]
    noon_monday = dt.datetime(2026, 3, 9, 12, 0, tzinfo=PARIS)
    view = directory.hours_view(lille, noon_monday)
    assert view.today_line.startswith("ouvert en ce moment, jusqu'à")
    text = directory.describe_hours(view)
    assert "31 rue Neuve, 59000 Lille" in text
    assert "du lundi au samedi" in text and "dimanche : fermé" in text
    assert directory.format_time(opening.closes_at) in text


def test_hours_mention_a_bank_holiday_closure(session):
    lyon = directory.find_stores(session, "Lyon Part-Dieu")[0]
    christmas = dt.datetime(2026, 12, 25, 11, 0, tzinfo=PARIS)
    assert directory.hours_view(lyon, christmas).today_line == "fermé aujourd'hui (Noël)"
    week_before = dt.datetime(2026, 12, 18, 11, 0, tzinfo=PARIS)
    text = directory.describe_hours(directory.hours_view(lyon, week_before))
    assert "fermé le vendredi 25 décembre (Noël)" in text


def test_sunday_opening_is_reported(session):
    rivoli = directory.find_stores(session, "Paris Rivoli")[0]
    sunday = dt.datetime(2026, 3, 15, 12, 0, tzinfo=PARIS)
    assert directory.hours_view(rivoli, sunday).today_line == "ouvert en ce moment, jusqu'à 19h"
