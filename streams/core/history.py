"""Each field's revisions, kept with the stored record: what a new version adds to them.

Pure: no I/O, no clock. Every change of a new version (the changes its event lists) becomes a
revision of its field: the version, the version's time (from the input), the operation
(``correct`` for an operator's correction) and the evidence, placed at the input record's
topic, partition and offset. A field keeps at most ``keep`` revisions, the oldest dropped first
(the field's history is then ``truncated``). A record stored without revisions (by an older
release, or with the bound at 0) starts its history at its current version with one
``baseline`` revision per field: the value it holds then, with its provenance as evidence.
``keep`` 0 keeps none and drops what a record holds. A forget keeps nothing
(``records.forgotten`` builds the tombstone from an empty record).

A replay of the same input gives the same revisions, byte for byte.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas import Evidence, FieldChange, FieldHistory, ProfileRecord, Revision, RevisionOp

__all__ = ["Source", "Trail", "bounded"]


@dataclass(frozen=True)
class Source:
    """Where an input record sits: the topic, partition and offset it was read at."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, source: str, offset: int) -> "Source":
        """The place of the record at ``offset`` of ``source``, ``"topic:partition"`` as a
        record names it (``records.source_key``)."""
        topic, _, partition = source.rpartition(":")
        return cls(topic, int(partition), offset)


@dataclass(frozen=True)
class Trail:
    """What the revisions of a new version need besides its changes.

    ``keep``: revisions kept per field (0: none). ``sources``: the input records of the
    version, by message (or command) id. ``operator``: the changes are an operator's correction.
    """

    keep: int
    sources: Mapping[str, Source] = field(default_factory=dict)
    operator: bool = False

    def located(self, changes: Sequence[FieldChange]) -> list[FieldChange]:
        """``changes`` with each evidence placed at its input record, when it names one."""
        return [self._located(change) for change in changes]

    def _located(self, change: FieldChange) -> FieldChange:
        source = self.sources.get(change.evidence.message_id)
        if source is None:
            return change  # a migration step: no input record is its source
        evidence = change.evidence.model_copy(
            update={"topic": source.topic, "partition": source.partition, "offset": source.offset}
        )
        return change.model_copy(update={"evidence": evidence})

    def recorded(
        self,
        record: ProfileRecord,
        changes: Sequence[FieldChange],
        *,
        version: int,
        at: datetime,
    ) -> dict[str, object]:
        """The ``history`` and ``history_from`` of ``record`` (the record before ``version``)
        once ``version``, made of ``changes`` at ``at``, is added."""
        if self.keep == 0:
            return {"history": {}, "history_from": None}
        start = record.history_from
        history = dict(record.history)
        if start is None:
            start, history = record.version, _baseline(record, at)
        added: dict[str, list[Revision]] = {}
        for change in changes:
            added.setdefault(change.field, []).append(
                Revision(
                    version=version,
                    at=at,
                    op=self._op(change),
                    value=change.new,
                    evidence=change.evidence,
                    restored_version=change.restored_version,
                )
            )
        for name, revisions in added.items():
            kept = history.get(name, FieldHistory())
            history[name] = kept.model_copy(update={"revisions": (*kept.revisions, *revisions)})
        return {"history": bounded(history, self.keep), "history_from": start}

    def _op(self, change: FieldChange) -> RevisionOp:
        if change.op in ("migrate", "revert") or not self.operator:
            return change.op
        return "correct"


def bounded(history: Mapping[str, FieldHistory], keep: int) -> dict[str, FieldHistory]:
    """``history`` with at most ``keep`` revisions per field, the newest; a field that lost
    some is marked ``truncated``."""
    out = {}
    for name, kept in history.items():
        if len(kept.revisions) > keep:
            kept = FieldHistory(
                revisions=kept.revisions[len(kept.revisions) - keep :], truncated=True
            )
        out[name] = kept
    return out


def _baseline(record: ProfileRecord, at: datetime) -> dict[str, FieldHistory]:
    """One ``baseline`` revision per field of a profile stored without revisions: its value at
    the record's version, with the field's provenance (if any) as evidence. An empty profile
    (a new subject, a forgotten one) needs none: its fields hold their defaults."""
    if not record.profile:
        return {}
    when = record.updated_at or at
    history = {}
    for name, value in record.profile.items():
        source = record.provenance.get(name)
        evidence = Evidence(message_id=source.message_id if source is not None else "")
        revision = Revision(
            version=record.version, at=when, op="baseline", value=value, evidence=evidence
        )
        history[name] = FieldHistory(revisions=(revision,))
    return history
