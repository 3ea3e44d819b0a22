"""An app with nothing of profile-stream but ``profile-stream-client`` installed: it follows one
user's profile events, publishes that user's chat message, waits for the event it causes, and
reads the profile back from a worker. test_client_install.py runs it with a fresh virtualenv's
interpreter (``python -I``), so the repository's ``streams``/``schemas`` cannot be imported.

Usage: ``python -I client_app.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC WORKER_URL TOKEN USER TEXT
[--langgraph]``; with ``--langgraph`` (the client's ``langgraph`` extra installed) it reads the
profile through LangGraph's store interface too. Prints one JSON object: what was sent, the
event, the profile, and the top-level modules loaded.
"""

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime

from profile_stream.client import ProfileEvents, get_profile, publish
from profile_stream.schemas import ChatMessage


async def main(
    bootstrap: str, inbox: str, outbox: str, url: str, token: str, user: str, text: str, *how: str
) -> None:
    message = ChatMessage(
        message_id=uuid.uuid4().hex,
        user_id=user,
        role="user",
        content=text,
        sent_at=datetime.now(UTC),
    )
    # The topic is this run's own, so reading it from the beginning misses nothing.
    events = ProfileEvents(
        bootstrap=bootstrap, topic=outbox, user_id=user, from_beginning=True, idle_timeout_s=60
    )
    async with events:
        sent = await publish([message], bootstrap=bootstrap, topic=inbox)
        event = await anext(events)  # StopAsyncIteration after 60 s without one: the test fails
    profile = await get_profile(url, user, token=token)
    stored = None
    if "--langgraph" in how:
        from profile_stream.client.langgraph_store import ProfileStreamStore

        item = await ProfileStreamStore(url, token=token).aget(
            ("users", user, "profile"), "profile"
        )
        stored = None if item is None else {"namespace": item.namespace, "value": item.value}
    print(
        json.dumps(
            {
                "sent": sent,
                "message_id": message.message_id,
                "event": event.model_dump(mode="json", by_alias=True),
                "profile": profile,
                "store": stored,
                "modules": sorted({name.split(".")[0] for name in sys.modules}),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
