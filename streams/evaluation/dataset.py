"""A labeled dataset file read and checked, and its conversations as the chat messages an app
would publish (ids ``{conversation_id}-t{i:02d}``, turn ``i`` sent 30 s after turn ``i-1``)."""

from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from schemas import ChatMessage
from schemas.evaluation import EvalConversation, EvalDataset, EvalUser
from streams.core.evaluation import dataset_problems
from streams.core.profile_schema import ProfileSchema
from streams.errors import ConfigError

__all__ = ["SHORT_TRAIT", "SHORT_USERS", "TURN_GAP", "load_dataset", "messages_of", "short"]

#: The time between two turns of a conversation.
TURN_GAP = timedelta(seconds=30)
#: Users with this trait make ``--short``'s subset; without any, the first ``SHORT_USERS``.
SHORT_TRAIT = "short"
#: About 13 model calls at the default settings with three conversations each: some ten
#: minutes at 45 s a call (the 1.5B model on 2 cores).
SHORT_USERS = 4


def load_dataset(path: Path, schema: ProfileSchema) -> EvalDataset:
    """The dataset in ``path``, checked against the format and the profile schema.

    Raises:
        ConfigError: the file cannot be read, is not the format, or labels fields the schema
            does not have; the message names each problem and where it is.
    """
    try:
        dataset = EvalDataset.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the dataset ({exc.strerror})") from None
    except ValidationError as exc:
        problems = "; ".join(_where(err["loc"]) + err["msg"] for err in exc.errors()[:10])
        more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
        raise ConfigError(
            f"{path}: not a profile-stream-eval/1 dataset: {problems}{more}"
        ) from None
    fields = {name: spec.is_list for name, spec in schema.fields.items()}
    unfit = dataset_problems(dataset, fields)
    if unfit:
        raise ConfigError(f"{path}: " + "; ".join(unfit))
    return dataset


def _where(loc: tuple[int | str, ...]) -> str:
    return ("/".join(str(part) for part in loc) + ": ") if loc else ""


def messages_of(user: EvalUser, conversation: EvalConversation) -> list[ChatMessage]:
    """One conversation of ``user`` as the chat messages an app publishes, in order."""
    return [
        ChatMessage(
            message_id=f"{conversation.conversation_id}-t{i:02d}",
            user_id=user.user_id,
            conversation_id=conversation.conversation_id,
            role=turn.role,
            content=turn.content,
            sent_at=conversation.started_at + TURN_GAP * i,
        )
        for i, turn in enumerate(conversation.turns)
    ]


def short(dataset: EvalDataset, first: int = SHORT_USERS) -> list[EvalUser]:
    """``--short``'s fixed subset: the users marked with the ``short`` trait, else the first
    ``first`` users of the file."""
    marked = [u for u in dataset.users if SHORT_TRAIT in u.traits]
    return marked or dataset.users[:first]
