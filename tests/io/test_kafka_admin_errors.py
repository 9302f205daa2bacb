"""Which failed Kafka admin requests are worth asking again (lakehouse.io.kafka._wait)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException

from lakehouse.io.kafka import KafkaTransientError, _wait


def failed(code: int) -> dict[str, Future]:
    future: Future = Future()
    future.set_exception(KafkaException(KafkaError(code)))
    return {"t-0": future}


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.UNKNOWN_LEADER_EPOCH,  # a broker just restarted, its metadata behind the client's
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    ],
)
def test_a_leader_being_elected_is_passing(code):
    with pytest.raises(KafkaTransientError, match="kafka list offsets failed for t-0"):
        _wait(failed(code), 1, "list offsets")


def test_a_refusal_is_not_passing_and_a_tolerated_error_is_skipped():
    with pytest.raises(RuntimeError, match="list offsets failed") as raised:
        _wait(failed(KafkaError.TOPIC_AUTHORIZATION_FAILED), 1, "list offsets")
    assert not isinstance(raised.value, KafkaTransientError)
    done: Future = Future()
    done.set_result("created")
    assert _wait(
        failed(KafkaError.TOPIC_ALREADY_EXISTS) | {"t-1": done}, 1, "create topic",
        tolerated=(KafkaError.TOPIC_ALREADY_EXISTS,),
    ) == {"t-1": "created"}
