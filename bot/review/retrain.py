"""A retraining that swaps the new model into the running Rasa without stopping it.

`Retraining` runs `python -m bot train` in the background for the console (one at a
time across gateways, by a shared lease; one training at a time per machine, as
`ensure_model` holds a file lock; its progress is shared, so every gateway shows it): the review labels are exported and trained on (`bot.ops.training.train_current`),
and `models/current.tar.gz` points at the new model. Then the model is loaded into each
Rasa replica in turn (Rasa's `PUT /model`): conversations go on with the old model until
the new one is in.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

from bot.assistant.client import RasaClient, RasaUnavailable
from bot.core.settings import PROJECT_ROOT, Settings
from bot.core.shared import Shared

logger = logging.getLogger("comptoir.review")
CURRENT = "current.tar.gz"  # in the models folder: the link to the model in use
LEASE_SECONDS = 60  # renewed while training: a gateway that dies frees it within a minute
STATUS_SECONDS = 7 * 86400  # how long the last retraining's outcome is shown


@dataclass
class RetrainState:
    stage: str = "idle"  # idle, training, loading, done, failed
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    model: Optional[str] = None
    seconds: float = 0.0
    log: List[str] = field(default_factory=list)  # what the training said, in order
    error: Optional[str] = None


class Retraining:
    """One retraining at a time, in the background, with its progress for the console."""

    def __init__(self, settings: Settings, rasa: Callable[[], RasaClient], shared: Shared) -> None:
        self.settings = settings
        self.rasa = rasa  # the gateway's client, known once the app has started
        self.shared = shared
        self.state = RetrainState()
        self._task: Optional[asyncio.Task] = None
        self._started = 0.0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _local_status(self) -> dict:
        state = asdict(self.state)
        if self.running:
            state["seconds"] = round(time.monotonic() - self._started)
        return state

    async def status(self) -> dict:
        """This gateway's retraining, or the last one any gateway ran."""
        if self.running:
            return self._local_status()
        shared = await self.shared.get("retrain:status")
        return json.loads(shared) if shared else self._local_status()

    async def start(self) -> bool:
        """Start a retraining; False if one is already running here or elsewhere."""
        if self.running or not await self.shared.lease("retrain", LEASE_SECONDS):
            return False
        self._started = time.monotonic()
        self.state = RetrainState(stage="training", started_at=_now())
        await self._publish()
        self._task = asyncio.create_task(self._run())
        return True

    async def _publish(self) -> None:
        """The progress for every gateway's console; the lease kept while it moves."""
        if self.running or self.state.stage == "training":
            await self.shared.lease("retrain", LEASE_SECONDS)
        await self.shared.put("retrain:status", json.dumps(self._local_status()), STATUS_SECONDS)

    async def _keep_publishing(self) -> None:
        """A training step can be silent for minutes: the lease and the clock go on."""
        while True:
            await asyncio.sleep(LEASE_SECONDS / 4)
            await self._publish()

    def _say(self, line: str) -> None:
        self.state.log = (self.state.log + [line])[-20:]
        logger.info("retrain: %s", line)

    async def _run(self) -> None:
        # `python -m bot train` in a process of its own: the gateway's event loop and
        # memory stay free, and stopping the gateway stops the training with it.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "train", cwd=str(PROJECT_ROOT),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        keeper = asyncio.create_task(self._keep_publishing())
        try:
            async for raw in process.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("==> "):
                    self._say(line[4:])
                    await self._publish()
            if await process.wait() != 0:
                raise RuntimeError(f"training failed (exit code {process.returncode})")
            model = (self.settings.models_dir / CURRENT).resolve()
            self.state.model, self.state.stage = model.name, "loading"
            self._say(f"loading {model.name} into Rasa")
            await self._publish()
            await self.rasa().load_model(str(model))
            self.state.stage = "done"
            self._say("the new model answers now")
        except (RuntimeError, OSError, RasaUnavailable) as error:
            self.state.stage, self.state.error = "failed", f"{type(error).__name__}: {error}"[:300]
            logger.error("retrain failed: %s", self.state.error)
        finally:
            keeper.cancel()
            if process.returncode is None:
                process.terminate()
                await process.wait()
            self.state.finished_at = _now()
            self.state.seconds = round(time.monotonic() - self._started)
            await self._publish()
            await self.shared.release("retrain")

    async def stop(self) -> None:
        if self.running:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
