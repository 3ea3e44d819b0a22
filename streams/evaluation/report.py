"""Scoring a run into its part of the report, and the report as a table a person reads:
one row per field, one column group per variant, then traps, updates and cost."""

from collections.abc import Sequence
from datetime import UTC, datetime

from schemas.evaluation import EvalCost, EvalReport, EvalUser, Score, VariantReport
from streams.core.evaluation import score_user, summarize, tally_drops
from streams.evaluation.direct import Outcome
from streams.evaluation.variants import Variant

__all__ = ["build_report", "render_table", "score_variant"]

_COLUMN = 24


def score_variant(variant: Variant, users: Sequence[EvalUser], outcome: Outcome) -> VariantReport:
    """``outcome`` scored against ``users``' labels."""
    scored = [
        score_user(u, outcome.profiles.get(u.user_id, {}), outcome.dropped.get(u.user_id, []))
        for u in users
    ]
    overall, fields, traits = summarize(users, scored)
    return VariantReport(
        name=variant.name,
        mode=variant.mode,
        flush=variant.flush,
        settings=dict(variant.settings),
        guards=variant.guards,
        overall=overall,
        fields=fields,
        traits=traits,
        cost=outcome.cost,
        outcomes=outcome.outcomes,
        dropped_values=tally_drops(scored),
        users=scored,
    )


def build_report(
    dataset: str, description: str, users: Sequence[EvalUser], variants: list[VariantReport]
) -> EvalReport:
    """The whole report (``--report``'s JSON)."""
    return EvalReport(
        dataset=dataset,
        description=description,
        users=[u.user_id for u in users],
        created_at=datetime.now(UTC),
        variants=variants,
    )


def _rate(value: float | None) -> str:
    return "-   " if value is None else f"{value:.2f}"


def _prf(score: Score) -> str:
    return f"{_rate(score.precision)} {_rate(score.recall)} {_rate(score.f1)}"


def _of(part: int, whole: int) -> str:
    return f"{part}/{whole}"


def _by_trait(variant: VariantReport, trait: str) -> str:
    score = variant.traits.get(trait)
    if score is None:
        return "-"
    return f"{_prf(score)} {_of(score.trap_hits, score.traps)}"


def _cost_rows(costs: Sequence[EvalCost]) -> list[tuple[str, list[str]]]:
    return [
        ("model calls", [f"{c.model_calls} ({c.calls_per_message:.3f}/msg)" for c in costs]),
        ("prompt tokens/msg", [f"{c.prompt_tokens_per_message:.0f}" for c in costs]),
        ("completion tokens/msg", [f"{c.completion_tokens_per_message:.0f}" for c in costs]),
        ("failures", [str(c.failures) for c in costs]),
        ("wall time", [f"{c.wall_time_s:.0f}s" for c in costs]),
    ]


#: The table's label for each count of :class:`EvalOutcomes`.
_OUTCOME_ROWS = {
    "answers_repaired": "answer repaired",
    "retries": "call retried",
    "gave_up": "extraction gave up",
    "dead_letters": "dead-lettered",
    "operations_dropped": "op dropped",
    "operations_repaired": "op repaired",
}


def _outcome_rows(variants: Sequence[VariantReport]) -> list[tuple[str, list[str]]]:
    """A row per reason that occurred in any variant: what the extractor and guards did."""
    rows = []
    for field, label in _OUTCOME_ROWS.items():
        counts = [getattr(v.outcomes, field) for v in variants]
        for reason in sorted({r for c in counts for r in c}):
            rows.append((f"{label}: {reason}", [str(c.get(reason, 0)) for c in counts]))
    return rows


def _dropped_rows(variants: Sequence[VariantReport]) -> list[tuple[str, list[str]]]:
    """A row per rule whose dropped values were judged: expected / forbidden / other."""
    reasons = sorted({r for v in variants for r in v.dropped_values})
    rows = [("dropped values, judged", ["exp  trap other" for _ in variants])] if reasons else []
    for reason in reasons:
        cells = []
        for v in variants:
            d = v.dropped_values.get(reason)
            cells.append("-" if d is None else f"{d.expected:<4} {d.forbidden:<4} {d.other}")
        rows.append((f"  {reason}", cells))
    return rows


def render_table(report: EvalReport) -> str:
    """Fields by variants: precision, recall and F1 per field, micro over all and by trait
    (with its traps hit), then trap hits, unsupported values, updates followed, what the run
    cost, what the extractor and the guards did (a row per reason seen), and the dropped
    values judged against the labels."""
    variants = report.variants
    fields = sorted({f for v in variants for f in v.fields})
    rows: list[tuple[str, list[str]]] = [
        ("", [v.name for v in variants]),
        ("by field", ["P    R    F1" for _ in variants]),
    ]
    for field in fields:
        rows.append(
            (field, [_prf(v.fields[field]) if field in v.fields else "-" for v in variants])
        )
    rows.append(("micro", [_prf(v.overall) for v in variants]))
    traits = sorted({t for v in variants for t in v.traits})
    if traits:
        rows.append(("by trait", ["P    R    F1   traps" for _ in variants]))
    for trait in traits:
        rows.append((f"  {trait}", [_by_trait(v, trait) for v in variants]))
    rows += [
        ("trap hits", [_of(v.overall.trap_hits, v.overall.traps) for v in variants]),
        ("unsupported values", [_of(v.overall.unsupported, v.overall.produced) for v in variants]),
        (
            "updates followed",
            [_of(v.overall.updates_followed, v.overall.updates) for v in variants],
        ),
        *_cost_rows([v.cost for v in variants]),
        *_outcome_rows(variants),
        *_dropped_rows(variants),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [label.ljust(width) + "".join(c.ljust(_COLUMN) for c in cells) for label, cells in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"
