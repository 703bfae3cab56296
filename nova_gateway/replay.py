"""Reading a session's results back from the RESULTS stream.

The gateway receives results live through a core subscription; a message missed there (the
gateway's NATS connection dropped for a moment) is still in the stream, so a stalled session
fetches its subject's history and lets in-order delivery drop what it already has.
"""

from __future__ import annotations

import msgspec
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from nova_common.messages import ResultMessage, result_decoder


async def replay_results(
    js: JetStreamContext, stream: str, subject: str, *, batch: int = 256
) -> list[ResultMessage]:
    psub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=30.0,  # the server removes this ephemeral consumer by itself
        ),
    )
    results: list[ResultMessage] = []
    try:
        info = await psub.consumer_info()
        remaining = info.num_pending or 0
        while remaining > 0:
            msgs = await psub.fetch(min(batch, remaining), timeout=2.0)
            remaining -= len(msgs)
            for msg in msgs:
                try:
                    results.append(result_decoder.decode(msg.data))
                except msgspec.DecodeError:
                    continue
    except TimeoutError:
        pass
    finally:
        await psub.unsubscribe()
    return results
