"""What Comptoir says about identity, consent and personal data, turn by turn.

Nothing personal is shown before the chat is verified. Sensitive acts (export, erasure,
contact changes) want a proof from the last few minutes, else a new code is sent.
`pending` carries what was asked (Pending("code", "export"), Pending("correct", "email")...).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Callable, Dict, Optional

from sqlalchemy.orm import Session

from bot.core.models import CONSENT_CHANNELS, MESSAGE_PURPOSES, Customer
from bot.core.replies import Pending, Reply, button
from bot.core.text import normalise
from bot.customers import verification as ident
from bot.customers.birthday import read_birthday
from bot.customers.consent import conversation_ref
from bot.privacy import requests
from bot.privacy.proof import ASK_CONTACT, PrivacyAsk, Proof
from bot.review import capture

CODE_SENT = ("Si ces coordonnées correspondent à un compte, un code à 6 chiffres vient d'être "
             "envoyé au contact enregistré. Écrivez-le-moi ici (il est valable 10 minutes).")
FIELDS = [("email", ("email", "e mail", "mail", "courriel", "adresse electronique")),
          ("phone", ("telephone", "portable", "mobile", "numero")),
          ("address", ("adresse", "domicile")),
          ("birthday", ("anniversaire", "naissance")),
          ("first_name", ("prenom",)),
          ("last_name", ("nom",))]
FIELD_FR = {"email": "adresse e-mail", "phone": "numéro de mobile", "address": "adresse postale",
            "birthday": "date d'anniversaire", "first_name": "prénom", "last_name": "nom"}


def read_field(text: str) -> Optional[str]:
    plain = f" {normalise(text)} "
    for name, words in FIELDS:
        if any(f" {w} " in plain for w in words):
            return name
    return None


PURPOSE_WORDS = (("offers", ("offre", "promo", "pub", "newsletter", "bon plan", "soldes")),
                 ("birthday", ("anniversaire",)),
                 ("back_in_stock", ("alerte", "retour en stock", "reassort")),
                 ("personalisation", ("personnalis", "mes achats", "profil")),
                 ("analytics", ("analyse", "statisti", "ameliorer l assistant", "ameliorer le bot",
                                "ameliorer votre assistant", "ameliorer le robot")))


def consent_scope(text: str):
    """Purposes and channels named in "j'accepte les offres par SMS" (empty if none)."""
    plain = f" {normalise(text)} "
    purposes = [p for p, words in PURPOSE_WORDS if any(w in plain for w in words)]
    channels, _ = stop_scope(text, "")
    return purposes, [c for c in channels if c]


def stop_scope(text: str, own_channel: str):
    """Which channels and purposes a STOP-like message means."""
    plain = f" {normalise(text)} "
    channels = [c for c, words in (("sms", (" sms", "texto")), ("email", ("mail", "courriel", "e mail")),
                                   ("post", ("courrier", "papier")), ("telegram", ("telegram",)))
                if any(w in plain for w in words)]
    everything = any(w in plain for w in (" tout ", " toutes ", " tous ", " rien "))
    if everything:
        return list(CONSENT_CHANNELS), list(MESSAGE_PURPOSES)
    return (channels or [own_channel]), list(MESSAGE_PURPOSES)


Answer = Callable[[PrivacyAsk], Reply]


class PrivacyDesk:
    def __init__(self, session: Session, verifier: ident.Verifier, now: dt.datetime,
                 secret: str) -> None:
        self.session = session
        self.verifier = verifier
        self.now = now  # naive UTC, like the database
        self.secret = secret
        self.proof = Proof(session, verifier, now)
        # What may follow a good code, when it was asked before proof (Pending("contact",
        # "summary")); the offers desk adds its own.
        self.follow_ups: Dict[str, Answer] = {
            "summary": self.answer_summary, "export": self.answer_export,
            "erase": self.answer_erase, "correct": self.answer_correct,
            "consents": self.answer_consents, "stop": self.answer_stop}
        # Answers to another desk's question that the NLU may take for a code: "12/03/1985"
        # after "quelle est votre date d'anniversaire ?".
        self.not_codes: Dict[str, Answer] = {}

    # Verification ---------------------------------------------------------------------
    def answer_verify(self, ask: PrivacyAsk) -> Reply:
        """A contact given: send a code. What was asked before ("contact summary") follows
        a good code."""
        then = ask.pending.about if ask.pending.asked == "contact" else None
        reply = Reply()
        identity = self.proof.identity(ask)
        contact = ident.read_contact(ask.text)
        if contact is None and ask.pending.asked == "code" and ident.CODE_RE.search(ask.text):
            return self.answer_code(ask)  # the code, whatever the NLU thought it was
        if contact is None:
            return reply.asking(Pending("contact", then)).say(ASK_CONTACT)
        if not self.verifier.request_code(self.session, identity, contact, self.now):
            return reply.say("Vous avez demandé plusieurs codes en peu de temps. Par sécurité, "
                             "réessayez dans un quart d'heure.")
        return reply.asking(Pending("code", then)).say(CODE_SENT)

    def answer_code(self, ask: PrivacyAsk) -> Reply:
        if ask.pending.asked in self.not_codes:
            return self.not_codes[ask.pending.asked](ask)
        reply = Reply()
        identity = self.proof.identity(ask)
        code = ident.CODE_RE.search(ask.text)
        if code is None:
            return reply.say("Le code fait 6 chiffres. Pouvez-vous me le réécrire ?")
        outcome, pending_code = self.verifier.check_code(self.session, identity, code.group(0), self.now)
        then = ask.pending.about
        if then and then.startswith("stop-"):  # "STOP SMS" said before proving who they are
            ask.text, then = "stop " + then[5:].replace(",", " "), "stop"
        if outcome == "ok" and pending_code.purpose in ("new_email", "new_phone"):
            customer = self.session.get(Customer, pending_code.customer_id)
            if pending_code.purpose == "new_email":
                customer.email = pending_code.new_value
            else:
                customer.phone = pending_code.new_value
            requests.record_request(self.session, customer.id, "rectification", self.now, "done",
                                   details=pending_code.purpose)
            reply.slots["pending"] = None
            return reply.say(f"C'est fait : votre {FIELD_FR[pending_code.purpose[4:]]} est mise à jour.")
        if outcome == "ok":
            customer = self.session.get(Customer, identity.customer_id)
            reply.say(f"Merci {customer.first_name}, c'est bien vous. Vous pouvez maintenant "
                      "consulter, corriger ou supprimer vos données, et gérer vos abonnements.")
            reply.slots["pending"] = None
            if then in self.follow_ups:
                follow = self.follow_ups[then](ask)
                reply.extend(follow)
                reply.slots.update(follow.slots)
            return reply
        reply.slots["pending"] = None if outcome in ("expired", "exhausted", "none") else ask.pending.slot
        return reply.say({
            "wrong": "Ce code ne correspond pas. Vérifiez-le et réessayez.",
            "expired": "Ce code a expiré. Redonnez-moi votre e-mail, mobile ou numéro de carte "
                       "pour en recevoir un nouveau.",
            "exhausted": "Trop d'essais pour ce code. Redemandez-en un nouveau en me redonnant "
                         "votre e-mail, mobile ou numéro de carte.",
            "none": "Je n'ai pas de code en attente pour vous. Pour vérifier votre identité, "
                    "donnez-moi votre e-mail, mobile ou numéro de carte.",
        }[outcome])

    def answer_logout(self, ask: PrivacyAsk) -> Reply:
        identity = self.proof.identity(ask)
        if identity.customer_id is not None:  # a link sent to this chat dies with it
            requests.revoke_export_links(self.session, identity.customer_id, self.now)
        ident.unlink(identity)
        return Reply(slots={"pending": None}).say(
            "C'est fait : cette conversation n'est plus liée à votre compte.")

    # Rights ----------------------------------------------------------------------------
    def answer_summary(self, ask: PrivacyAsk) -> Reply:
        blocked = self.proof.require(ask, "summary")
        if blocked:
            return blocked
        customer = self.proof.customer(self.proof.identity(ask))
        requests.record_request(self.session, customer.id, "access", self.now, "done")
        return Reply(slots={"pending": None}).say(
            requests.summary(self.session, customer.id),
            [button("Recevoir l'export complet", "export_data"),
             button("Corriger une information", "correct_data")])

    def answer_export(self, ask: PrivacyAsk) -> Reply:
        blocked = self.proof.require(ask, "export", fresh=True)
        if blocked:
            return blocked
        customer = self.proof.customer(self.proof.identity(ask))
        token = requests.export_link_token(self.session, customer.id, self.now)
        requests.record_request(self.session, customer.id, "export", self.now, "done")
        return Reply(slots={"pending": None}).say(
            "Voici votre export complet (JSON et CSV), valable 24 heures, pour un seul "
            f"téléchargement et pour vous seul : {ask.public_url}/exports/{token}")

    def answer_correct(self, ask: PrivacyAsk) -> Reply:
        answering = ask.pending.asked == "correct" and ask.pending.about is not None
        wanted = ask.pending.about if answering else read_field(ask.text)
        fresh = wanted in ("email", "phone")
        blocked = self.proof.require(ask, "correct", fresh=fresh)
        if blocked:
            return blocked
        identity = self.proof.identity(ask)
        customer = self.proof.customer(identity)
        if wanted is None:
            return Reply(slots={"pending": None}).say(
                "Que souhaitez-vous corriger ?",
                [button("Adresse e-mail", "correct_data", field="email"),
                 button("Mobile", "correct_data", field="phone"),
                 button("Adresse postale", "correct_data", field="address"),
                 button("Date d'anniversaire", "correct_data", field="birthday")])
        value = self._value_in(ask.text, wanted)
        if not value:
            example = {"email": "prenom.nom@exemple.fr", "phone": "06 12 34 56 78",
                       "address": "12 rue de la Paix, 75002, Paris", "birthday": "12/03",
                       "first_name": "Camille", "last_name": "Martin"}[wanted]
            return Reply().asking(Pending("correct", wanted)).say(
                f"Quelle est la bonne valeur pour votre {FIELD_FR[wanted]} ? (par exemple : {example})")
        if wanted in ("email", "phone"):
            contact = ident.read_contact(value)
            if contact is None or contact.kind != wanted:
                return Reply().asking(Pending("correct", wanted)).say(
                    f"Ce {FIELD_FR[wanted]} ne semble pas valide. Pouvez-vous le réécrire ?")
            if not self.verifier.request_code(self.session, identity, contact, self.now,
                                              purpose=f"new_{wanted}", customer=customer):
                return Reply().say("Trop de codes demandés : réessayez dans un quart d'heure.")
            return Reply().asking(Pending("code")).say(
                f"Pour confirmer, j'envoie un code à ce nouveau contact ({ident.mask(contact.value)}). "
                "Écrivez-le-moi ici.")
        error = requests.correct(self.session, customer.id, wanted, value)
        if error:
            return Reply().asking(Pending("correct", wanted)).say(error)
        requests.record_request(self.session, customer.id, "rectification", self.now, "done",
                               details=wanted)
        return Reply(slots={"pending": None}).say(f"C'est corrigé : votre {FIELD_FR[wanted]} est à jour.")

    @staticmethod
    def _value_in(text: str, wanted: str) -> Optional[str]:
        if wanted in ("email", "phone"):
            contact = ident.read_contact(text)
            return contact.value if contact else None
        if wanted == "birthday":  # a date, even a wrong one ("31/02"): correct() says why
            return text if read_birthday(text) or re.search(r"\b\d{1,2}[/.-]\d{1,2}\b", text) else None
        if wanted == "address":
            return text if re.search(r"\b\d{5}\b", text) else None
        words = text.strip().split()
        return words[-1] if len(words) == 1 else None

    def answer_erase(self, ask: PrivacyAsk) -> Reply:
        step = ask.confirm
        # Each confirmation only counts right after the question before it: sending the
        # last button's payload alone starts again from the first question.
        if step not in ("1", "2") or ask.pending != Pending("erase", step):
            blocked = self.proof.require(ask, "erase")
            if blocked:
                return blocked
            return Reply().asking(Pending("erase", "1")).say(
                "Vous pouvez demander la suppression de vos données. Cela efface votre profil, "
                "votre carte de fidélité et ses points, vos bons, vos réservations et alertes, et "
                "l'historique de nos conversations. C'est définitif. Voulez-vous continuer ?",
                [button("Oui, supprimer mes données", "erase_data", confirm="1"),
                 button("Non, garder mon compte", "deny")])
        blocked = self.proof.require(ask, "erase", fresh=True)
        if blocked:
            return blocked
        if step == "1":
            return Reply().asking(Pending("erase", "2")).say(
                "Dernière confirmation : une fois supprimées, vos données ne pourront pas être "
                "récupérées et vos points seront perdus.",
                [button("Je confirme la suppression", "erase_data", confirm="2"),
                 button("Annuler", "deny")])
        customer = self.proof.customer(self.proof.identity(ask))
        request = requests.record_request(self.session, customer.id, "erasure", self.now, "in_progress")
        senders = requests.erase(self.session, customer.id, self.now)
        capture.forget(self.session, senders + [ask.sender], self.secret)
        request.status, request.closed_at = "done", self.now
        reply = Reply(slots={"pending": None})
        reply.say("C'est fait : vos données personnelles sont supprimées. Nous ne gardons que la "
                  "trace de votre demande et, sans votre nom, celle de vos choix de communication, "
                  "comme la loi le demande. Au revoir, et merci d'avoir été client.")
        reply.tell_gateway({"comptoir_erase_conversations": senders})
        return reply

    def answer_consents(self, ask: PrivacyAsk) -> Reply:
        blocked = self.proof.require(ask, "consents")
        if blocked:
            return blocked
        customer = self.proof.customer(self.proof.identity(ask))
        return Reply(slots={"pending": None}).say(requests.consents_text(self.session, customer.id))

    def answer_stop(self, ask: PrivacyAsk) -> Reply:
        """STOP works anywhere; this chat's own channel even unverified."""
        identity = self.proof.identity(ask)
        customer = self.proof.customer(identity)
        channels, purposes = stop_scope(ask.text, identity.channel)
        others = [c for c in channels if c != identity.channel]
        if others and customer is None:
            if identity.channel in channels:
                requests.change_consents(self.session, None, identity, purposes, [identity.channel],
                                        False, conversation_ref(identity.id))
            names = ", ".join(requests.CHANNEL_FR[c] for c in others)
            reply = Reply().asking(Pending("contact", f"stop-{','.join(others)}"))
            return reply.say(f"Pour arrêter les messages par {names}, je dois savoir qui vous êtes. "
                             + ASK_CONTACT.split(". ", 1)[1])
        requests.change_consents(self.session, customer.id if customer else None, identity, purposes,
                                channels, False, conversation_ref(identity.id))
        names = ", ".join(requests.CHANNEL_FR[c] for c in channels)
        return Reply(slots={"pending": None}).say(
            f"C'est noté : vous ne recevrez plus aucun message de notre part par {names}. "
            "Vous pourrez changer d'avis à tout moment.")

    def answer_change_consent(self, ask: PrivacyAsk) -> Reply:
        """Grant or withdraw a purpose on some channels ("j'accepte les offres par SMS",
        "n'utilisez plus mes achats" = objection to profiling)."""
        blocked = self.proof.require(ask, "consents")
        if blocked:
            return blocked
        identity = self.proof.identity(ask)
        customer = self.proof.customer(identity)
        purposes, channels = consent_scope(ask.text)
        plain = f" {normalise(ask.text)} "
        granted = not any(w in plain for w in (" plus ", " pas ", " non ", " arret", " retir",
                                                " desactiv", " refuse", " stop"))
        if not purposes:
            return Reply().say("Pour quel usage ? Les offres, l'anniversaire, les alertes de stock "
                               "ou la personnalisation ?\n" + requests.consents_text(self.session, customer.id))
        about_data = [p for p in purposes if p in ("personalisation", "analytics")]
        if not channels:
            channels = list(CONSENT_CHANNELS) if purposes == about_data or not granted \
                else [identity.channel]
        requests.change_consents(self.session, customer.id, identity, purposes, channels, granted,
                                conversation_ref(identity.id))
        if about_data and not granted:
            requests.record_request(self.session, customer.id, "objection", self.now, "done")
        what = ", ".join(requests.PURPOSE_FR[p] for p in purposes)
        where = ", ".join(requests.CHANNEL_FR[c] for c in channels)
        verb = "acceptez désormais" if granted else "ne recevez plus"
        text = f"C'est noté : vous {verb} : {what} ({where})."
        if "personalisation" in purposes and not granted:
            text = ("C'est noté : nous n'utiliserons plus vos achats pour vous faire des "
                    "suggestions ou des offres.")
        elif purposes == ["analytics"] and not granted:
            text = ("C'est noté : nous ne garderons plus vos messages, même masqués, pour "
                    "améliorer notre assistant.")
        return Reply(slots={"pending": None}).say(text)

    def answer_why(self, ask: PrivacyAsk) -> Reply:
        return Reply().say(requests.WHY_TEXT)
