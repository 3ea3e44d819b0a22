"""Which offsets a bulk restore of a changelog partition reads, and what it leaves persisted, in
the offsets Faust's recovery reads (last applied, last to restore)."""

from streams.core.changelog_restore import PartitionRestore


def test_an_empty_database_is_restored_from_the_changelogs_first_offset() -> None:
    for nothing_applied in (None, -1):
        restore = PartitionRestore.plan(nothing_applied, 99)
        assert restore == PartitionRestore(first=0, last=99, persisted=-1)


def test_a_database_resumes_after_its_persisted_offset() -> None:
    assert PartitionRestore.plan(41, 99) == PartitionRestore(first=42, last=99, persisted=41)


def test_a_restore_counts_the_offsets_it_reads_up_to_the_highwater() -> None:
    assert PartitionRestore(first=42, last=99, persisted=41).offsets == 58
    assert PartitionRestore(first=0, last=0, persisted=-1).offsets == 1


def test_nothing_is_read_when_the_database_is_at_the_highwater_or_the_changelog_empty() -> None:
    assert PartitionRestore.plan(99, 99) is None
    assert PartitionRestore.plan(None, -1) is None  # an empty changelog partition
    assert PartitionRestore.plan(5, None) is None  # no highwater known: Faust's path decides


def test_records_already_persisted_or_past_the_highwater_are_not_applied() -> None:
    restore = PartitionRestore(first=10, last=20, persisted=9)
    assert [o for o in range(5, 25) if restore.wants(o)] == list(range(10, 21))
    assert restore.to_persist(15, position=16) == 15
    assert not restore.wants(15)
    assert restore.wants(16)


def test_a_reader_past_the_highwater_is_done() -> None:
    restore = PartitionRestore(first=0, last=20, persisted=-1)
    assert not restore.done(20)
    assert restore.done(21)
    assert restore.done(30)  # fetched past it: the rest is Faust's to read, or no one's


def test_a_write_persists_its_last_record_until_the_reader_is_past_the_highwater() -> None:
    restore = PartitionRestore(first=0, last=20, persisted=-1)
    assert restore.to_persist(None, position=0) is None  # nothing read, nothing to write
    assert restore.to_persist(17, position=18) == 17
    assert restore.persisted == 17


def test_the_highwater_is_persisted_once_the_reader_is_past_it() -> None:
    # Under exactly-once the last offsets may be a commit marker or aborted records.
    restore = PartitionRestore(first=0, last=20, persisted=-1)
    assert restore.to_persist(18, position=21) == 20
    assert restore.to_persist(None, position=21) is None  # already there
    markers_only = PartitionRestore(first=19, last=20, persisted=18)
    assert markers_only.to_persist(None, position=21) == 20  # an offset-only write
