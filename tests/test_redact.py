"""What an agent reads of a transcript: the request, never the personal data or codes."""
import pytest

from bot.core.redact import mask

SUMMARY = ("Voici ce que nous avons sur vous, Camille :\n"
           "• Identité : Camille Martin, anniversaire : 14/03/1990\n"
           "• Contact : camille.martin@example.org, +33639980001 ; adresse : 12 rue de la "
           "République, 69002 Lyon\n"
           "• Carte de fidélité : 800000000001 (120 points)\n"
           "• Achats : 3 ; réservations en cours : 1")


def test_the_privacy_summary_keeps_its_shape_and_loses_its_data():
    masked = mask(SUMMARY)
    for secret in ("camille.martin", "+3363", "800000000001", "14/03/1990", "République",
                   "69002"):
        assert secret not in masked, secret
    assert "• Contact : [e-mail], [téléphone] ; adresse : [adresse]" in masked
    assert "anniversaire : [date]" in masked and "Carte de fidélité : [carte] (120 points)" in masked
    assert "Achats : 3 ; réservations en cours : 1" in masked


@pytest.mark.parametrize("text, shown", [
    ("Votre lien (valable 24 h) : http://127.0.0.1:8080/exports/eyJjIjoxfQ.abc-DEF_1",
     "Votre lien (valable 24 h) : [lien d'export]"),
    ("Votre bon : ANNIV-K7PQ-3MZX", "Votre bon : [code]"),
    ("Votre code de retrait : K7PQ3M. Présentez-le en caisse.",
     "Votre code de retrait : [code]. Présentez-le en caisse."),
    ("voilà le code 483920", "voilà le code [code]"),
    ("appelez-moi au 06 39 98 00 01 svp", "appelez-moi au [téléphone] svp"),
    ("ma carte 4970 1012 3456 7890 a été débitée", "ma carte [carte] a été débitée"),
    ("livrez au 3 bis avenue Foch, Paris", "livrez au [adresse], Paris"),
])
def test_links_codes_and_contacts_in_free_text_are_masked(text, shown):
    assert mask(text) == shown


@pytest.mark.parametrize("text", [
    "Vous avez les Pegasus 41 en 42 à Lyon ?",
    "Nike Pegasus 41 homme (42, noir) : 3 en stock à Lyon Part-Dieu (69003), 139,90 €",
    "je passerai le 14 mars vers 15h, commande 2026-118 merci",
    "Le code promo annoncé sur le site ne marche pas",
])
def test_what_the_customer_asked_stays_readable(text):
    assert mask(text) == text


def test_a_replay_hides_whole_messages_with_personal_data_unless_verified():
    from bot.core.redact import HIDDEN, export_links_masked, hidden_if_personal

    assert hidden_if_personal(SUMMARY) == HIDDEN
    assert hidden_if_personal("Nos magasins les plus proches de Lyon :") == "Nos magasins les plus proches de Lyon :"
    assert export_links_masked("Voici votre export : http://h/exports/abc_DEF-1") == "Voici votre export : [lien d'export]"
    assert export_links_masked(SUMMARY) == SUMMARY  # the verified customer's own data, on a reload


def test_a_pickup_code_is_replayed_to_the_shopper_who_held_without_verifying():
    from bot.core.redact import hidden_if_personal

    held = "C'est fait : 1 × Nike Pegasus 41 homme vous attend.\nVotre code de retrait : K7PQ3M."
    assert hidden_if_personal(held) == held
    assert mask(held).endswith("Votre code de retrait : [code].")  # not for agents, though
