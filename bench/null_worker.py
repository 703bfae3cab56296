"""The real STT worker (``SttWorker``, built as `nova stt` builds it) around a model stand-in
that answers at once: with it, bench/overhead.py measures the message path alone.

    .venv/bin/python -m bench.null_worker   (settings from NOVA_* like any service)
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

from prometheus_client import CollectorRegistry

from nova_cli.runtime import connect_and_provision, stop_on_signals
from nova_common.pull_worker import work_until
from nova_common.settings import load_settings
from nova_stt.service import make_worker
from nova_stt.transcriber import SpeechResult, SpeechToText

TEXT = "yes"


class NullSpeechToText:
    """What ``SttWorker`` uses of ``SpeechToText``, with no model behind it."""

    reference = "null"
    device = "cpu"
    beam_size = 0
    multilingual = True

    def transcribe(self, pcm: bytes, *, language: str | None, **_: object) -> SpeechResult:
        return SpeechResult(
            text=TEXT, language=language or "en", language_probability=1.0, compute_s=0.0
        )

    def partial(self, pcm: bytes, *, language: str | None, **_: object) -> SpeechResult:
        return self.transcribe(pcm, language=language)


async def serve() -> int:
    settings = load_settings()
    stop = asyncio.Event()
    stop_on_signals(stop)
    nc = await connect_and_provision(settings, name="nova-stt-null")
    worker = make_worker(nc, settings, cast(SpeechToText, NullSpeechToText()), CollectorRegistry())
    print(f"null stt worker {worker.worker_id} ready", flush=True)
    await work_until(worker, stop)
    await nc.drain()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(serve()))
