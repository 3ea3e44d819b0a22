"""Scoring final profiles against the labeled dataset (docs/evaluation.md). Pure: no I/O.

Matching: both sides are casefolded, punctuation becomes space and spaces collapse; a value
matches a label when the two are then equal. Items of the free-text list fields (expertise,
common topics, key relationships) also match when one contains the other as whole words;
timezone, formality and detail level match only exactly (case aside).

Each expected entry is matched by at most one produced value (a true positive); a produced
value that matches an entry already matched, or an ``allowed`` value, counts neither way; any
other produced value is a false positive, and an entry left unmatched a false negative. A
produced value matching a ``forbidden`` one is a trap hit. A false positive whose words do not
all occur in what the user said is *unsupported*: a heuristic sign of a value made up rather
than misread (a derived value such as a time zone the user never spelled out counts as one).

A value that a guard or merge rule dropped (``set`` and ``add`` operations) is judged by the
same matching: ``expected`` if it matches an expected spelling of its field (the rule cost a
right value, unless another operation brought it in anyway), ``forbidden`` if it matches a
trap (the rule stopped a hallucination), ``other`` otherwise. A ``duplicate`` is not judged:
the same change was applied once.
"""

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from schemas.evaluation import (
    DroppedValues,
    EvalDataset,
    EvalUser,
    FieldValue,
    JudgedDrop,
    Score,
    ScoredUser,
    Update,
)
from streams.core.merge import Dropped

__all__ = [
    "UNSCORED",
    "dataset_problems",
    "judge_drops",
    "normalize",
    "produced_values",
    "same_value",
    "score_user",
    "summarize",
    "tally_drops",
]

#: Fields never scored (free prose; no label could match it).
UNSCORED = frozenset({"last_conversation_summary"})
_EXACT = frozenset({"timezone", "formality", "detail_level"})
_CONTAINS = frozenset({"expertise", "common_topics", "key_relationships"})
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalize(text: str) -> str:
    """Casefolded, punctuation as space, spaces collapsed (``"Los-Angeles!"``: ``los angeles``)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCTUATION.sub(" ", folded).split())


def _contains(outer: str, inner: str) -> bool:
    return f" {inner} " in f" {outer} "


def same_value(field: str, produced: str, label: str) -> bool:
    """Whether ``produced`` counts as ``label`` in ``field`` (the module docstring's rules)."""
    if field in _EXACT:
        return produced.strip().casefold() == label.strip().casefold()
    a, b = normalize(produced), normalize(label)
    if a == b:
        return True
    return field in _CONTAINS and bool(a and b) and (_contains(a, b) or _contains(b, a))


def produced_values(profile: Mapping[str, Any]) -> list[FieldValue]:
    """The scored values of a profile: one per single value set, one per list item."""
    values: list[FieldValue] = []
    for field, value in profile.items():
        if field in UNSCORED or value is None:
            continue
        items = value if isinstance(value, list) else [value]
        values += [FieldValue(field=field, value=str(item)) for item in items if item != ""]
    return values


def _any(field: str, value: str, labels: Iterable[str]) -> bool:
    return any(same_value(field, value, label) for label in labels)


class _Support:
    """What the user said, to tell a misread value from one with no words behind it."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.text = normalize(" ".join(texts))
        self.words = set(self.text.split())

    def backs(self, value: str) -> bool:
        said = normalize(value)
        return _contains(self.text, said) or set(said.split()) <= self.words


def _followed(user: EvalUser, update: Update, produced: Sequence[FieldValue]) -> bool:
    """The old value gone and the new one present (in any spelling its label accepts)."""
    field = update.field
    values = [fv.value for fv in produced if fv.field == field]
    new = [e for e in user.expected.get(field, []) if _any(field, update.new, e.spellings)]
    spellings = [s for e in new for s in e.spellings] or [update.new]
    gone = not any(same_value(field, v, update.old) for v in values)
    return gone and any(_any(field, v, spellings) for v in values)


#: Operations that put a value in (their drops are judged) and drops that changed nothing.
_PUTS = frozenset({"set", "add"})
_UNJUDGED = frozenset({"duplicate"})


def _verdict(user: EvalUser, field: str, value: str) -> str:
    if any(_any(field, value, e.spellings) for e in user.expected.get(field, [])):
        return "expected"
    return "forbidden" if _any(field, value, user.forbidden.get(field, [])) else "other"


def judge_drops(user: EvalUser, dropped: Iterable[Dropped]) -> list[JudgedDrop]:
    """Each value ``dropped`` kept out of ``user``'s profile, judged (the module docstring)."""
    judged = []
    for d in dropped:
        op = d.operation
        if op.op not in _PUTS or d.code in _UNJUDGED or op.value is None:
            continue
        for item in op.value if isinstance(op.value, list) else [op.value]:
            value = str(item)
            verdict = _verdict(user, op.field, value)
            judged.append(JudgedDrop(field=op.field, value=value, reason=d.code, verdict=verdict))
    return judged


def tally_drops(scored: Iterable[ScoredUser]) -> dict[str, DroppedValues]:
    """The judged drops of every user, counted by rule and verdict."""
    counts: dict[str, dict[str, int]] = {}
    for user in scored:
        for drop in user.dropped:
            by = counts.setdefault(drop.reason, {})
            by[drop.verdict] = by.get(drop.verdict, 0) + 1
    return {reason: DroppedValues(**by) for reason, by in sorted(counts.items())}


def score_user(
    user: EvalUser, profile: Mapping[str, Any], dropped: Iterable[Dropped] = ()
) -> ScoredUser:
    """``user``'s final ``profile`` scored against the labels, with the values ``dropped``
    kept out of it judged."""
    produced = produced_values(profile)
    support = _Support(user.user_text)
    taken: set[tuple[str, int]] = set()
    found: dict[str, list[FieldValue]] = {"matched": [], "fp": [], "traps": [], "unsupported": []}
    for fv in produced:
        entries = user.expected.get(fv.field, [])
        hits = [i for i, e in enumerate(entries) if _any(fv.field, fv.value, e.spellings)]
        fresh = [i for i in hits if (fv.field, i) not in taken]
        if fresh:
            taken.add((fv.field, fresh[0]))
            found["matched"].append(FieldValue(field=fv.field, value=entries[fresh[0]].value))
        elif not hits and not _any(fv.field, fv.value, user.allowed.get(fv.field, [])):
            found["fp"].append(fv)
            if not support.backs(fv.value):
                found["unsupported"].append(fv)
        if _any(fv.field, fv.value, user.forbidden.get(fv.field, [])):
            found["traps"].append(fv)
    missed = [
        FieldValue(field=field, value=entry.value)
        for field, entries in user.expected.items()
        for i, entry in enumerate(entries)
        if (field, i) not in taken
    ]
    scored = ScoredUser(
        user_id=user.user_id,
        traits=list(user.traits),
        profile=dict(profile),
        matched=found["matched"],
        false_positives=found["fp"],
        missed=missed,
        trap_hits=found["traps"],
        unsupported=found["unsupported"],
        updates_missed=[u for u in user.updates if not _followed(user, u, produced)],
        dropped=judge_drops(user, dropped),
    )
    return scored.model_copy(update={"score": _tally([(user, scored)])})


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _tally(pairs: Iterable[tuple[EvalUser, ScoredUser]], field: str | None = None) -> Score:
    """The counts of ``pairs`` (of one ``field``, or of all) and the rates they give."""

    def count(values: Iterable[Any]) -> int:
        return sum(1 for v in values if field is None or v.field == field)

    counts = dict.fromkeys(
        ("tp", "fp", "fn", "trap_hits", "traps", "unsupported", "produced", "updates", "missed"),
        0,
    )
    for user, scored in pairs:
        counts["tp"] += count(scored.matched)
        counts["fp"] += count(scored.false_positives)
        counts["fn"] += count(scored.missed)
        counts["trap_hits"] += count(scored.trap_hits)
        counts["unsupported"] += count(scored.unsupported)
        counts["produced"] += count(produced_values(scored.profile))
        counts["traps"] += sum(len(v) for f, v in user.forbidden.items() if field in (None, f))
        counts["updates"] += count(user.updates)
        counts["missed"] += count(scored.updates_missed)
    return _rates(counts)


def _rates(counts: dict[str, int]) -> Score:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    followed = counts["updates"] - counts.pop("missed")
    return Score(
        **counts,
        precision=precision,
        recall=recall,
        f1=f1,
        updates_followed=followed,
        update_accuracy=_ratio(followed, counts["updates"]),
    )


def summarize(
    users: Sequence[EvalUser], scored: Sequence[ScoredUser]
) -> tuple[Score, dict[str, Score], dict[str, Score]]:
    """Micro totals over every user: overall, per field, per trait (users that have it)."""
    pairs = list(zip(users, scored, strict=True))
    fields = sorted(
        {f for u in users for f in (*u.expected, *u.forbidden, *(x.field for x in u.updates))}
        | {fv.field for s in scored for fv in produced_values(s.profile)}
    )
    traits = sorted({t for u in users for t in u.traits})
    return (
        _tally(pairs),
        {f: _tally(pairs, f) for f in fields},
        {t: _tally(p for p in pairs if t in p[0].traits) for t in traits},
    )


def dataset_problems(dataset: EvalDataset, fields: Mapping[str, bool]) -> list[str]:
    """What in ``dataset`` the profile schema cannot hold: labels of unknown fields, more than
    one expected value for a single-value field. ``fields`` maps each field to whether it
    holds a list."""
    problems = []
    for user in dataset.users:
        named: dict[str, Collection[Any]] = {
            **user.expected,
            **user.allowed,
            **user.forbidden,
            **{u.field: [u] for u in user.updates},
        }
        for field in sorted(set(named) - set(fields)):
            problems.append(f"{user.user_id}: {field!r} is not a field of the profile schema")
        for field, entries in user.expected.items():
            if field in fields and not fields[field] and len(entries) > 1:
                problems.append(
                    f"{user.user_id}: {field!r} holds one value; {len(entries)} are expected"
                )
    return problems
