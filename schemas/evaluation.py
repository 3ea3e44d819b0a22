"""The extraction-quality evaluation: the labeled dataset it reads and the report it writes.

The dataset format (``profile-stream-eval/1``, docs/evaluation.md) is strict: an unknown field,
a role other than the chat roles, an update whose new value is not expected or whose old value
is not forbidden are errors naming where they are, so a typo never scores silently.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from ._base import Produced
from .messages import Role

__all__ = [
    "DATASET_FORMAT",
    "REPORT_FORMAT",
    "DroppedValues",
    "EvalConversation",
    "EvalCost",
    "EvalDataset",
    "EvalOutcomes",
    "EvalReport",
    "EvalTurn",
    "EvalUser",
    "ExpectedValue",
    "FieldValue",
    "JudgedDrop",
    "Score",
    "ScoredUser",
    "Update",
    "VariantReport",
]

DATASET_FORMAT = "profile-stream-eval/1"
REPORT_FORMAT = "profile-stream-eval-report/1"

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
_Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,200}$")]


def _key(value: str) -> str:
    """Loose equality for the dataset's own cross-checks (the scorer normalizes further)."""
    return " ".join(value.casefold().split())


class EvalTurn(Produced):
    """One message of a conversation; its id and time are derived (docs/evaluation.md)."""

    role: Role
    content: Annotated[str, StringConstraints(min_length=1)]


class EvalConversation(Produced):
    """One session: turn ``i`` is sent at ``started_at + 30 s * i``."""

    conversation_id: _Id
    started_at: AwareDatetime
    turns: list[EvalTurn] = Field(min_length=1)


class ExpectedValue(Produced):
    """A value the final profile must hold; ``accept`` lists other spellings of it."""

    value: _Text
    accept: list[_Text] = Field(default_factory=list)

    @property
    def spellings(self) -> list[str]:
        """The value and its accepted alternatives."""
        return [self.value, *self.accept]


class Update(Produced):
    """A change the final profile must follow: ``old`` gone, ``new`` present."""

    field: _Text
    old: _Text
    new: _Text


class EvalUser(Produced):
    """One user: their conversations, in time order, and the labels of their final profile."""

    user_id: _Id
    traits: list[_Text] = Field(default_factory=list)
    conversations: list[EvalConversation] = Field(min_length=1)
    expected: dict[str, list[ExpectedValue]] = Field(default_factory=dict)
    allowed: dict[str, list[_Text]] = Field(default_factory=dict)
    forbidden: dict[str, list[_Text]] = Field(default_factory=dict)
    updates: list[Update] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "EvalUser":
        starts = [c.started_at for c in self.conversations]
        if starts != sorted(starts):
            raise ValueError("conversations are not in time order (started_at)")
        for update in self.updates:
            expected = {_key(s) for e in self.expected.get(update.field, []) for s in e.spellings}
            if _key(update.new) not in expected:
                raise ValueError(
                    f"update of {update.field!r}: new value {update.new!r} is not in "
                    f"expected[{update.field!r}]"
                )
            if _key(update.old) not in {_key(v) for v in self.forbidden.get(update.field, [])}:
                raise ValueError(
                    f"update of {update.field!r}: old value {update.old!r} is not in "
                    f"forbidden[{update.field!r}]"
                )
        for field, values in self.forbidden.items():
            expected = {_key(s) for e in self.expected.get(field, []) for s in e.spellings}
            clash = sorted(v for v in values if _key(v) in expected)
            if clash:
                raise ValueError(f"{field!r}: {clash} both expected and forbidden")
        return self

    @property
    def user_text(self) -> list[str]:
        """What the user said, every user turn of every conversation."""
        return [t.content for c in self.conversations for t in c.turns if t.role == "user"]


class EvalDataset(Produced):
    """A split of the labeled set (``bench/quality/dev.json``, ``heldout.json``)."""

    format: Literal["profile-stream-eval/1"]
    description: str = ""
    users: list[EvalUser] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "EvalDataset":
        for what, ids in (
            ("user_id", [u.user_id for u in self.users]),
            ("conversation_id", [c.conversation_id for u in self.users for c in u.conversations]),
        ):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"{what} used more than once: {twice}")
        return self


class FieldValue(Produced):
    """One value of one field (a list field's item), as produced or as labeled."""

    field: str
    value: str


class Score(Produced):
    """Counts and rates over a set of values (one field, one trait, or everything).

    ``precision``, ``recall`` and ``f1`` are None where they divide by zero (nothing produced,
    nothing expected); ``update_accuracy`` likewise with no update.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    trap_hits: int = 0
    traps: int = 0
    unsupported: int = 0
    produced: int = 0
    updates: int = 0
    updates_followed: int = 0
    update_accuracy: float | None = None


class JudgedDrop(Produced):
    """A value a guard or merge rule kept out of the profile, and what the labels say of it:
    ``expected`` (the rule cost a right value), ``forbidden`` (it stopped a trap) or ``other``.
    """

    field: str
    value: str
    reason: str
    verdict: Literal["expected", "forbidden", "other"]


class DroppedValues(Produced):
    """One rule's dropped values (direct runs), counted by verdict (:class:`JudgedDrop`)."""

    expected: int = 0
    forbidden: int = 0
    other: int = 0


class ScoredUser(Produced):
    """What one user's final profile got right and wrong."""

    user_id: str
    traits: list[str] = Field(default_factory=list)
    profile: dict[str, Any] = Field(default_factory=dict)
    score: Score = Field(default_factory=Score)
    matched: list[FieldValue] = Field(default_factory=list)
    false_positives: list[FieldValue] = Field(default_factory=list)
    missed: list[FieldValue] = Field(default_factory=list)
    trap_hits: list[FieldValue] = Field(default_factory=list)
    unsupported: list[FieldValue] = Field(default_factory=list)
    updates_missed: list[Update] = Field(default_factory=list)
    #: What the guards and the merge kept out, judged (direct runs; a pipeline run's drops
    #: stay in its worker).
    dropped: list[JudgedDrop] = Field(default_factory=list)


class EvalCost(Produced):
    """What a run cost: model calls and tokens (in all and per message), failures, time."""

    messages: int = 0
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls_per_message: float = 0.0
    prompt_tokens_per_message: float = 0.0
    completion_tokens_per_message: float = 0.0
    #: Extractions that gave up (direct) or messages dead-lettered (pipeline).
    failures: int = 0
    wall_time_s: float = 0.0


class EvalOutcomes(Produced):
    """What the extractor and the guards did in a run, counted where it happened (the worker's
    counters, docs/operations.md), each a count by its reason."""

    #: Answers read after a repair: ``cut_off`` (an answer cut at the output bound, its
    #: complete operations kept), ``retried_cut_off`` (cut with none: asked again),
    #: ``code_fence``, ``trailing_text``.
    answers_repaired: dict[str, int] = Field(default_factory=dict)
    #: Calls asked again: ``invalid_output`` (not JSON, no operations list), ``unavailable``.
    retries: dict[str, int] = Field(default_factory=dict)
    #: Extractions given up, by cause (``cut_off``, ``invalid_output``, ``unavailable``...).
    gave_up: dict[str, int] = Field(default_factory=dict)
    #: Messages dead-lettered, by reason (pipeline runs).
    dead_letters: dict[str, int] = Field(default_factory=dict)
    #: Operations not applied, by the guard or merge rule that dropped them (``invalid_value``:
    #: a value the field cannot hold, such as an enum value out of range; ``malformed``: an
    #: item that is not an operation).
    operations_dropped: dict[str, int] = Field(default_factory=dict)
    #: Operations applied after a guard's repair (``reattributed``, ``grounded_by_value``).
    operations_repaired: dict[str, int] = Field(default_factory=dict)


class VariantReport(Produced):
    """One configuration's run over the dataset, scored."""

    name: str
    mode: Literal["direct", "pipeline"]
    flush: Literal["buffered", "per-message"]
    settings: dict[str, str] = Field(default_factory=dict)
    #: False: the model's operations were merged without the quality guards (``guards=off``).
    guards: bool = True
    overall: Score
    fields: dict[str, Score]
    traits: dict[str, Score] = Field(default_factory=dict)
    cost: EvalCost
    outcomes: EvalOutcomes = Field(default_factory=EvalOutcomes)
    #: Each rule's dropped values by verdict, summed over the users (direct runs only).
    dropped_values: dict[str, DroppedValues] = Field(default_factory=dict)
    users: list[ScoredUser] = Field(default_factory=list)


class EvalReport(Produced):
    """``profile-stream eval``'s report: every variant over the same users."""

    format: Literal["profile-stream-eval-report/1"] = "profile-stream-eval-report/1"
    dataset: str
    description: str = ""
    users: list[str]
    created_at: datetime
    variants: list[VariantReport]
