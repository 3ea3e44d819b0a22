"""Which broker leads a partition of the local stack: `deploy/stack.sh leader TOPIC [PARTITION]`.

Prints one line per partition, `PARTITION LEADER REPLICAS ISR` (node ids; the stack's
broker N is node id N), or only the leader's node id when a partition is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiokafka.admin import AIOKafkaAdminClient


async def describe(bootstrap: str, topic: str) -> list[dict[str, object]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if desc.get("error_code"):
        raise SystemExit(f"topic {topic}: error code {desc['error_code']}")
    return sorted(desc["partitions"], key=lambda p: p["partition"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("topic")
    ap.add_argument("partition", type=int, nargs="?")
    args = ap.parse_args()
    # aiokafka logs a refused connection to a killed broker at ERROR; the answer is enough.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parts = asyncio.run(describe(args.bootstrap, args.topic))
    for p in parts:
        if args.partition is None:
            ids = (",".join(map(str, p[k])) for k in ("replicas", "isr"))  # type: ignore[call-overload]
            print(p["partition"], p["leader"], *ids)
        elif p["partition"] == args.partition:
            print(p["leader"])
            return 0
    if args.partition is not None:
        print(f"{args.topic} has no partition {args.partition}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
