"""Telegram channel: python-telegram-bot hosted in the gateway's event loop.

Long polling by default (no public URL needed); webhook mode when TELEGRAM_WEBHOOK_URL
is set, with Telegram's secret token checked on every call. Rasa's buttons become
inline keyboards, a tap sends the button's payload, a shared location travels as
metadata, images go out as photos, long texts are split at Telegram's limit.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional

from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (Application, CallbackQueryHandler, CommandHandler, ContextTypes,
                          MessageHandler, filters)

from bot.core.replies import card_of
from bot.core.settings import Settings
from bot.core.shared import LocalShared, Shared
from bot.core.signing import same

logger = logging.getLogger("comptoir.telegram")

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_LIMIT = 64
PAYLOAD_DAYS = 30  # a longer button payload is kept this long: a button tapped later works
# Long polling: one gateway at a time (Telegram refuses two), the one holding the lease;
# another takes over within POLL_LEASE seconds of its end.
POLL_LEASE, POLL_RENEW = 15.0, 5.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

Converse = Callable[..., Awaitable[List[Dict[str, Any]]]]
Stop = Callable[[str], Awaitable[None]]

STOP_REPLY = ("C'est noté : nous ne vous enverrons plus aucun message ici, sauf pour répondre "
              "à vos questions. Écrivez /start si vous changez d'avis.")
NOT_TEXT = ("Je ne sais lire que les messages écrits. Pouvez-vous me poser votre question par "
            "écrit ? Par exemple : « vous avez les Pegasus 41 en 42 à Lyon ? »")
PRIVATE_ONLY = ("Pour protéger vos données, je ne réponds qu'en conversation privée : "
                "écrivez-moi directement, en message privé.")


def sender_id(user_id: int) -> str:
    return f"telegram:{user_id}"


async def _no_local_image(_url: str) -> Optional[bytes]:
    return None


def split_text(text: str, limit: int = TEXT_LIMIT) -> List[str]:
    """Split at paragraph, then line, then word boundaries, never above `limit`."""
    parts: List[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = max(rest.rfind("\n\n", 0, limit), rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit))
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


class TelegramChannel:
    def __init__(self, settings: Settings, converse: Converse, stop: Stop,
                 local_image: Optional[Callable[[str], Awaitable[Optional[bytes]]]] = None,
                 shared: Optional[Shared] = None) -> None:
        self.settings = settings
        # Long button payloads and the polling lease, shared by the gateways.
        self.shared = shared or LocalShared()
        self.converse = converse
        self.stop_chat = stop
        # Images the gateway itself serves (voucher codes) are uploaded, since Telegram's
        # servers cannot fetch a URL on the shop's private network.
        self.local_image = local_image or _no_local_image
        self.webhook_mode = settings.telegram_webhook_url is not None
        api = settings.telegram_api_url
        builder = (Application.builder().token(settings.telegram_token)
                   .base_url(f"{api}/bot").base_file_url(f"{api}/file/bot")
                   .concurrent_updates(64))  # one slow chat never holds the others
        if self.webhook_mode:
            builder = builder.updater(None)
        self.application = builder.build()
        self._poller: Optional[asyncio.Task] = None
        app = self.application
        app.add_handler(CommandHandler("start", self.on_start))
        app.add_handler(CommandHandler("aide", self.on_help))
        app.add_handler(CommandHandler("stop", self.on_stop))
        app.add_handler(MessageHandler(filters.LOCATION, self.on_location))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(filters.COMMAND, self.on_help))  # unknown commands
        # Stickers, voice notes, photos, files: a polite word rather than silence.
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & ~filters.TEXT & ~filters.LOCATION
                                       & ~filters.StatusUpdate.ALL,
                                       self.on_not_text))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_error_handler(self.on_error)

    # Lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        await self.application.initialize()
        await self.application.start()
        if self.webhook_mode:
            await self.application.bot.set_webhook(
                self.settings.telegram_webhook_url, secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=["message", "callback_query"])
        else:
            await self._poll_if_leader()
            self._poller = asyncio.create_task(self._keep_polling())
        logger.info("telegram channel started (%s)", "webhook" if self.webhook_mode else
                    "polling" if self.application.updater.running else "sending; another gateway polls")

    async def _poll_if_leader(self) -> None:
        """Poll while this gateway holds the lease; stop when it is lost."""
        updater = self.application.updater
        leader = await self.shared.lease("telegram-poller", POLL_LEASE)
        if leader and not updater.running:
            await updater.start_polling(allowed_updates=["message", "callback_query"], timeout=10)
            logger.info("telegram: this gateway polls")
        elif not leader and updater.running:
            await updater.stop()
            logger.info("telegram: another gateway polls")

    async def _keep_polling(self) -> None:
        while True:
            await asyncio.sleep(POLL_RENEW)
            with contextlib.suppress(TelegramError):
                await self._poll_if_leader()

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if not self.webhook_mode and self.application.updater.running:
            await self.application.updater.stop()
            await self.shared.release("telegram-poller")
        await self.application.stop()
        await self.application.shutdown()

    async def webhook(self, request: web.Request) -> web.Response:
        """POST /webhooks/telegram: only Telegram, which knows the secret, gets in."""
        supplied = request.headers.get(SECRET_HEADER, "")
        if not same(self.settings.telegram_webhook_secret, supplied):
            return web.json_response({"error": "forbidden"}, status=403)
        try:
            update = Update.de_json(await request.json(), self.application.bot)
        except Exception:
            return web.json_response({"error": "invalid update"}, status=400)
        await self.application.update_queue.put(update)
        return web.json_response({"ok": True})

    # Incoming ----------------------------------------------------------------------
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: the greeting, which says what the bot can do."""
        await self.turn(update, "/greet")

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/aide: what the bot can do."""
        await self.turn(update, "/help")

    async def on_stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/stop: withdraw consent to any message on Telegram (works unverified)."""
        await self.stop_chat(sender_id(update.effective_user.id))
        await self.application.bot.send_message(update.effective_chat.id, STOP_REPLY)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A text message: one turn through Rasa."""
        await self.turn(update, update.effective_message.text or "")

    async def on_not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat is not None:
            await self.application.bot.send_message(update.effective_chat.id, NOT_TEXT)

    async def on_location(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A shared location: the nearest-store question, with the position as metadata."""
        location = update.effective_message.location
        await self.turn(update, "/ask_nearest_store", {"location": {
            "latitude": location.latitude, "longitude": location.longitude}})

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on an inline button: its payload goes to Rasa as the message."""
        query = update.callback_query
        await query.answer()
        data = query.data or ""
        payload = await self.shared.get(f"telegram:{data}") if data.startswith("p:") else None
        await self.turn(update, payload or data)

    async def turn(self, update: Update, message: str, metadata: Optional[dict] = None) -> None:
        chat_id = update.effective_chat.id
        user_id = update.effective_user.id
        if update.effective_chat.type != "private":
            # A conversation is one person's: in a group, a summary, a code or a voucher
            # would be posted to everyone in it.
            await self.application.bot.send_message(chat_id, PRIVATE_ONLY)
            return
        # The gateway keeps a chat's turns in order and slows a flood down; the replies
        # are sent while the chat is still held, so they come in order too.
        await self.converse(sender_id(user_id), message, metadata, "telegram",
                            answer=lambda replies: self.send_replies(chat_id, replies))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An error in one update is logged (ids only) and never stops the bot."""
        update_id = getattr(update, "update_id", None)
        logger.error("telegram update %s failed: %s", update_id, type(context.error).__name__,
                     exc_info=context.error)

    # Outgoing ----------------------------------------------------------------------
    async def _callback_data(self, payload: str) -> str:
        """A payload longer than Telegram's 64 bytes travels as a key, which any gateway
        can read back when the button is tapped."""
        if len(payload.encode()) <= CALLBACK_LIMIT:
            return payload
        key = "p:" + hashlib.sha256(payload.encode()).hexdigest()[:24]
        await self.shared.put(f"telegram:{key}", payload, PAYLOAD_DAYS * 86400)
        return key

    async def keyboard(self, buttons: List[Dict[str, str]], link: Optional[str] = None
                       ) -> Optional[InlineKeyboardMarkup]:
        items = [InlineKeyboardButton(b["title"][:64], callback_data=await self._callback_data(b["payload"]))
                 for b in buttons if b.get("title") and b.get("payload")]
        per_row = 4 if items and all(len(b.text) <= 6 for b in items) else 1  # sizes side by side
        rows = [items[i:i + per_row] for i in range(0, len(items), per_row)]
        if link and link.startswith("https://"):  # Telegram opens public https pages only
            rows.append([InlineKeyboardButton("Voir la fiche produit", url=link)])
        return InlineKeyboardMarkup(rows) if rows else None

    async def send_replies(self, chat_id: int, replies: List[Dict[str, Any]]) -> bool:
        """Send Rasa-style replies; False if Telegram refused one of them."""
        bot = self.application.bot
        delivered = True
        for reply in replies:
            text = (reply.get("text") or "").strip()
            card = card_of(reply)
            image = reply.get("image") or card.get("image_url")
            markup = await self.keyboard(reply.get("buttons") or [], card.get("default_action", {}).get("url"))
            try:
                if image:  # a picture, or a card: the photo with the text and buttons under it
                    caption = text if len(text) <= CAPTION_LIMIT else None
                    photo = await self.local_image(image) or image
                    await bot.send_photo(chat_id, photo, caption=caption,
                                         reply_markup=markup if caption is not None else None)
                    if caption is not None:
                        continue
                chunks = split_text(text) if text else []
                for index, chunk in enumerate(chunks):
                    last = index == len(chunks) - 1
                    await bot.send_message(chat_id, chunk, reply_markup=markup if last else None)
            except TelegramError as error:
                logger.warning("telegram send to chat failed: %s", type(error).__name__)
                delivered = False
        return delivered

    async def push(self, external_id: str, message: Dict[str, Any]) -> bool:
        """Deliver an outbox message (alert, birthday offer...) to a Telegram chat."""
        try:
            chat_id = int(external_id.split(":", 1)[1])
        except (IndexError, ValueError):
            return False
        return await self.send_replies(chat_id, [message])
