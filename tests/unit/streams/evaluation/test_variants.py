"""``--variant NAME:KEY=VALUE,...``: what a configuration changes, and the mistakes refused."""

import pytest

from streams.errors import ConfigError
from streams.evaluation.variants import Variant, parse_variant, settings_of, worker_env


def test_a_variant_sets_its_mode_flush_and_settings() -> None:
    variant = parse_variant(
        "small:flush=per-message, MODEL=qwen-0.5b,PROFILE_STREAM_MAX_BATCH_CHARS=4000",
        mode="direct",
        flush="buffered",
    )
    assert (variant.name, variant.mode, variant.flush) == ("small", "direct", "per-message")
    assert variant.settings == {
        "flush_idle_s": "0",
        "max_batch_messages": "1",
        "model": "qwen-0.5b",
        "max_batch_chars": "4000",
    }


def test_a_bare_name_takes_the_commands_defaults() -> None:
    assert parse_variant("base", mode="pipeline", flush="buffered") == Variant("base", "pipeline")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (":model=x", "give it a name"),
        ("a:model", "'model' is not KEY=VALUE"),
        ("a:modle=x", "'modle' is not a setting of the worker"),
        ("a:flush=sometimes", "choose one of buffered, per-message"),
        ("a:guards=maybe", "choose one of on, off"),
        ("a:mode=pipeline,guards=off", "guards=off runs in direct mode only"),
    ],
)
def test_mistakes_are_refused_with_the_reason(spec: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_variant(spec, mode="direct", flush="buffered")


def test_the_worker_gets_the_settings_by_their_variables() -> None:
    variant = Variant("v", flush="per-message", overrides={"model": "m"})
    env = worker_env(variant, {"openai_base_url": "http://llm/v1", "model": "base-model"})
    assert env == {
        "OPENAI_BASE_URL": "http://llm/v1",
        "PROFILE_STREAM_MODEL": "m",
        "PROFILE_STREAM_FLUSH_IDLE_S": "0",
        "PROFILE_STREAM_MAX_BATCH_MESSAGES": "1",
    }


def test_a_direct_run_reads_the_same_settings(clean_env: pytest.MonkeyPatch) -> None:
    settings = settings_of(Variant("v", overrides={"max_batch_messages": "5"}), {"model": "m"})
    assert (settings.max_batch_messages, settings.model) == (5, "m")
    with pytest.raises(ConfigError, match="PROFILE_STREAM_MAX_BATCH_MESSAGES"):
        settings_of(Variant("v", overrides={"max_batch_messages": "0"}), {})


def test_guards_off_is_the_evaluations_own_and_never_reaches_a_worker() -> None:
    variant = parse_variant("raw:guards=off", mode="direct", flush="buffered")
    assert variant == Variant("raw", guards=False)
    assert variant.settings == {} and worker_env(variant, {}) == {}
    assert parse_variant("on:guards=on", mode="pipeline", flush="buffered").guards
