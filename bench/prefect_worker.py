"""Child process of bench.prefect_native: Prefect-native approvals against a real server.

One flow run per case pauses at each human step (`pause_flow_run(wait_for_input=...)`, polling
every second) and this process's driver resumes it with the decision (`resume_flow_run`), as
Prefect documents human-in-the-loop. Prints one JSON line with the timings and its peak RSS.

Usage: python -m bench.prefect_worker N   (PREFECT_API_URL must point at the server)
"""

import asyncio
import json
import sys
import time
from uuid import UUID

from prefect import flow, get_client
from prefect.flow_runs import apause_flow_run, aresume_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from bench.core import own_peak_rss_mb
from bench.workload import HOUSING_STEPS, ILLNESS_STEPS

RUN_IDS: dict[int, UUID] = {}


class Decision(RunInput):
    approved: bool
    approver: str


@flow(name="welfare-case", log_prints=False)
async def case_flow(case_no: int, policy: str) -> str:
    RUN_IDS[case_no] = UUID(str(flow_run.get_id()))
    steps = HOUSING_STEPS if policy == "housing" else ILLNESS_STEPS
    for i in range(len(steps)):
        decision = await apause_flow_run(
            wait_for_input=Decision, timeout=900, poll_interval=1, key=f"step-{i}"
        )
        if not decision.approved:
            return "rejected"
    return "paid"


async def drive(n: int) -> dict[str, float]:
    policies = ["housing" if i % 4 == 0 else "illness" for i in range(n)]
    started: dict[int, float] = {}
    finished: dict[int, float] = {}
    resumes = 0

    async def one(i: int) -> None:
        started[i] = time.perf_counter()
        result = await case_flow(i, policies[i])
        if result != "paid":
            raise RuntimeError(f"case {i} ended {result}")
        finished[i] = time.perf_counter()

    t0 = time.perf_counter()
    runs = [asyncio.create_task(one(i)) for i in range(n)]
    async with get_client() as client:
        while len(finished) < n:
            for task in runs:
                if task.done() and task.exception():
                    raise task.exception()  # type: ignore[misc]
            for i, run_id in list(RUN_IDS.items()):
                if i in finished:
                    continue
                fr = await client.read_flow_run(run_id)
                if fr.state is not None and fr.state.is_paused():
                    await aresume_flow_run(
                        run_id, run_input={"approved": True, "approver": "bench"}
                    )
                    resumes += 1
            await asyncio.sleep(0.2)
    await asyncio.gather(*runs)
    wall = time.perf_counter() - t0
    per_case = sorted(finished[i] - started[i] for i in range(n))
    return {
        "lifecycles": n,
        "seconds": wall,
        "resumes": resumes,
        "case_p50_s": per_case[len(per_case) // 2],
        "case_max_s": per_case[-1],
        "rss_mb": own_peak_rss_mb(),  # not ru_maxrss: it counts the spawning driver's peak
    }


if __name__ == "__main__":
    out = asyncio.run(drive(int(sys.argv[1])))
    sys.stdout.write(json.dumps(out) + "\n")
