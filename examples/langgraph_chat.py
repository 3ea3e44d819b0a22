"""LangMem's profile guide ("How to Manage User Profiles", its LangGraph chat) on profile-stream.

The guide's chat reads the user's profile from a LangGraph store, puts it in the system prompt
as a ``<User Profile>`` block, and hands each turn to a memory manager. Here the store is
:class:`~streams.client.langgraph_store.ProfileStreamStore` (the profiles the workers serve) and
the hand-off is :func:`~streams.client.publish_turn`, one publish to Kafka: the workers buffer a
user's turns and extract them together once the conversation goes quiet (60 s by default,
``PROFILE_STREAM_FLUSH_IDLE_S``). To show the flow turn by turn, this script asks for a refresh
after each turn (``store.arefresh``: the worker extracts the buffered turn now, one model call,
and answers the profile that reflects it). A chat that does not need the next turn to see the
last one skips it: the chat model has the conversation's recent messages anyway, and the
profile carries them into the next conversation.

The chat model is scripted (:class:`ScriptedChatModel`), so it runs offline; use
``init_chat_model(...)`` as the guide does for a real one. The profile comes from the worker's
extractor: a model (``OPENAI_*``), or offline the ``rules`` one, which knows these sentences.

Needs the ``langgraph`` extra with langchain-core 1.x (``response.text``). Kafka and the input
topic are taken from the worker's variables (``PROFILE_STREAM_KAFKA_*``,
``PROFILE_STREAM_INPUT_TOPIC``), so run it in the worker's environment::

    python examples/langgraph_chat.py --url http://127.0.0.1:6066 --token demo-read
"""

import argparse
import asyncio
import os
import time
import uuid
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langgraph.config import get_config
from langgraph.func import entrypoint
from langgraph.pregel import Pregel
from pydantic import Field

from streams.client import KafkaConnection, publish_turn
from streams.client.langgraph_store import ProfileItem, ProfileStreamStore

__all__ = ["SCRIPT", "ScriptedChatModel", "build_chat", "main"]

#: The guide's conversation, and what the scripted model answers to each turn.
SCRIPT = [
    ("I'm Alice from California", "Nice to meet you, Alice! How is life in California?"),
    ("I speak Spanish too!", "¡Qué bien! We can switch to Spanish whenever you like."),
    ("I just passed the N1 exam!", "Congratulations! N1 is the top level of the JLPT."),
]


class ScriptedChatModel(FakeListChatModel):
    """A chat model that answers from a list, offline, and keeps each prompt it is given."""

    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def _call(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> str:
        self.prompts.append(list(messages))
        return super()._call(messages, stop, run_manager, **kwargs)


def build_chat(
    store: ProfileStreamStore, my_llm: BaseChatModel, *, kafka: KafkaConnection, topic: str
) -> Pregel[Any, Any, Any, Any]:
    """The guide's ``chat`` entrypoint, on profile-stream."""

    @entrypoint(store=store)
    async def chat(messages: list[dict[str, str]]) -> BaseMessage:
        # Get user's profile for personalization: the <User Profile> block the workers render
        configurable = get_config()["configurable"]
        block = await store.aget_prompt(store.namespace(configurable["user_id"]))
        profile = f"\n\n{block}" if block else ""

        # Use profile in system message
        response = await my_llm.ainvoke(
            [
                {"role": "system", "content": f"""You are a helpful assistant.{profile}"""},
                *messages,
            ]
        )

        # Hand the turn to profile-stream: the workers update the profile, in order
        await publish_turn(
            configurable["user_id"],
            messages[-1]["content"],
            response.text,
            bootstrap=kafka,
            topic=topic,
        )
        return response

    return chat


async def _refresh(store: ProfileStreamStore, user_id: str) -> None:
    """Have the worker extract the user's buffered turn now, and say what the profile became."""
    started = time.monotonic()
    item = await store.arefresh(store.namespace(user_id))
    took = time.monotonic() - started
    if not isinstance(item, ProfileItem):
        print(f"(refreshed in {took:.1f}s: no profile yet)")
        return
    buffered = item.freshness.get("buffered_messages")
    print(
        f"(refreshed in {took:.1f}s: profile version {item.version}, "
        f"{buffered} messages still buffered)"
    )


async def run(args: argparse.Namespace) -> None:
    """The guide's conversation, turn by turn, with each turn's system prompt."""
    store = ProfileStreamStore(args.url, token=args.token, timeout_s=args.timeout_s)
    my_llm = ScriptedChatModel(responses=[answer for _, answer in SCRIPT])
    chat = build_chat(store, my_llm, kafka=KafkaConnection.from_env(), topic=args.topic)
    config: Any = {"configurable": {"user_id": args.user}}
    for turn, (text, _) in enumerate(SCRIPT, 1):
        answer = await chat.ainvoke([{"role": "user", "content": text}], config=config)
        response = cast(BaseMessage, answer)
        print(f"--- turn {turn}")
        print(f"system: {my_llm.prompts[-1][0].content}")
        print(f"user: {text}")
        print(f"assistant: {response.text}")
        if turn < len(SCRIPT):
            await _refresh(store, args.user)
    print("--- the profile store")
    print(await store.asearch(store.namespace(args.user)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    port = os.environ.get("PROFILE_STREAM_WEB_PORT", "6066")  # the worker's, as for Kafka
    parser.add_argument("--url", default=f"http://127.0.0.1:{port}", help="a worker's address")
    parser.add_argument("--token", default="demo-read", help="a read token of the worker")
    parser.add_argument("--user", default=f"user-{uuid.uuid4().hex[:8]}", help="the user id")
    parser.add_argument(
        "--topic",
        default=os.environ.get("PROFILE_STREAM_INPUT_TOPIC", "chat-messages"),
        help="the workers' input topic",
    )
    parser.add_argument(
        "--timeout-s", type=float, default=30.0, help="how long a refresh may take at most"
    )
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
