"""Handover tickets: queue, support hours, a claim that only one agent wins."""
import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from bot.core.models import HandoverTicket
from bot.handover import tickets as handover
from bot.handover.agents import create_agent
from bot.handover.hours import SupportHours

PARIS = ZoneInfo("Europe/Paris")
HOURS = SupportHours.parse("lun-sam 09:00-19:00")


@pytest.mark.parametrize("when, is_open, next_text", [
    (dt.datetime(2026, 3, 12, 10, 0, tzinfo=PARIS), True, None),               # Thursday morning
    (dt.datetime(2026, 3, 12, 19, 30, tzinfo=PARIS), False, "demain à partir de 9h"),
    (dt.datetime(2026, 3, 13, 7, 0, tzinfo=PARIS), False, "aujourd'hui à partir de 9h"),
    (dt.datetime(2026, 3, 14, 20, 0, tzinfo=PARIS), False, "lundi à partir de 9h"),  # Saturday night
    (dt.datetime(2026, 3, 15, 12, 0, tzinfo=PARIS), False, "demain à partir de 9h"),  # Sunday
])
def test_support_hours_and_when_someone_answers(when, is_open, next_text):
    assert HOURS.is_open(when) is is_open
    if next_text:
        assert HOURS.describe_next(when) == next_text


def test_around_the_clock_support():
    always = SupportHours.parse("lun-dim 00:00-00:00")
    assert always.is_open(dt.datetime(2026, 3, 15, 23, 59, 30, tzinfo=PARIS))


@pytest.mark.parametrize("bad", ["9-19", "lundi-samedi 9h-19h", "lun-sam 9:00", ""])
def test_support_hours_setting_is_validated(bad):
    with pytest.raises(ValueError):
        SupportHours.parse(bad)


def test_tickets_queue_in_order_and_a_second_request_reuses_the_ticket(shop):
    with shop.begin() as session:
        first = handover.open_ticket(session, "web", "s1", "demande du client")
        second = handover.open_ticket(session, "telegram", "telegram:5", "client mécontent", priority=1)
        again = handover.open_ticket(session, "web", "s1", "demande du client")
    assert (first.position, second.position) == (1, 2)
    assert again.ticket_id == first.ticket_id and again.already_open
    with shop() as session:
        assert [t.sender_id for t in handover.queue(session)] == ["telegram:5", "s1"]  # urgent first


def test_off_hours_tickets_do_not_take_the_conversation(shop):
    with shop.begin() as session:
        handover.open_ticket(session, "web", "night", "demande du client", off_hours=True)
        assert handover.active_ticket(session, "web", "night") is None
        assert handover.set_contact_preference(session, "web", "night", "rappel")
    with shop() as session:
        (ticket,) = handover.queue(session)
        assert (ticket.off_hours, ticket.contact_preference) == (True, "rappel")


def test_two_agents_claiming_at_once_exactly_one_gets_it(shop):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", "s2", "demande du client").ticket_id
        agent_ids = [create_agent(session, f"agent{i}", "Camille", "a long password").id
                     for i in range(8)]  # one display name for all: claims go by id
    barrier, wins = threading.Barrier(8), []

    def agent(agent_id):
        barrier.wait()
        with shop.begin() as session:
            if handover.claim(session, ticket_id, agent_id, "Camille"):
                wins.append(agent_id)

    threads = [threading.Thread(target=agent, args=(agent_id,)) for agent_id in agent_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(wins) == 1
    with shop() as session:
        ticket = session.get(HandoverTicket, ticket_id)
        assert [handover.handled_by(ticket, agent_id) for agent_id in agent_ids].count(True) == 1
        assert handover.handled_by(ticket, wins[0])


def test_messages_and_notes_stay_with_the_ticket_and_hand_back_ends_it(shop):
    with shop.begin() as session:
        ticket_id = handover.open_ticket(session, "web", "s3", "demande du client").ticket_id
        handover.add_message(session, ticket_id, "customer", "bonjour ?")
        handover.add_note(session, ticket_id, None, "client fidèle, geste commercial possible")
    with shop.begin() as session:
        assert handover.finish(session, ticket_id, "handed_back") is not None
        assert handover.finish(session, ticket_id, "closed") is None  # already over
        assert handover.active_ticket(session, "web", "s3") is None
        messages, notes = handover.conversation(session, ticket_id)
    assert [m.text for m in messages] == ["bonjour ?"]
    assert [n.text for n in notes] == ["client fidèle, geste commercial possible"]
