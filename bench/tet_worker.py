"""Child process of bench.tet_list: the relay flow, warmed up, waiting for its cue.

Usage: python -m bench.tet_worker   (WELFARE_* and PREFECT_API_URL from the environment)
Builds the application and runs one empty relay flow and one empty `tet` policy flow (a
served flow process has done so long before a list arrives), prints "ready", waits for a
line on stdin, then runs the product's `outbox-relay` flow once until the outbox is drained
(mail off) and prints one JSON line: the wall-clock end, the relay's counts, peak RSS.
"""

import asyncio
import json
import resource
import sys
import time


def main() -> None:
    from flows.policies import policy_flow
    from flows.relay import relay_flow
    from flows.runtime import get_relay

    get_relay()
    asyncio.run(relay_flow(max_batches=100, mail=False))  # also drains set-up events
    asyncio.run(policy_flow("tet")([]))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    t0 = time.perf_counter()
    summary = asyncio.run(relay_flow(max_batches=100_000, mail=False))
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"end": time.time(), "seconds": seconds, "rss_mb": rss_mb, **summary}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
