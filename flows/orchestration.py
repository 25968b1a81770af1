"""What the flows share: running a command (bounded in time, its messages redacted), deploying a flow onto a
process work pool, reading runs' states and heartbeats.

Imported by the flow scripts as a sibling module (Prefect puts a flow's folder on sys.path when it loads it, and
`python flows/NAME.py` does too).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ecg_crnn.grid.shell import QUICK_S, run, stop_group  # noqa: F401 - the flows' one way to run a command

REPO = Path(__file__).resolve().parents[1]


def deploy_to_pool(flow, entrypoint: str, name: str, pool: str, source: str, job_variables=None) -> None:
    """Create the process work pool (or keep it) and register `flow` on it, from `source` (a path or git URL)."""
    run(["prefect", "work-pool", "create", pool, "--type", "process", "--overwrite"], REPO)
    flow.from_source(source=source, entrypoint=entrypoint).deploy(
        name=name, work_pool_name=pool, job_variables=job_variables or {}, print_next_steps=False
    )
    print(
        f"deployed {flow.name}/{name} on work pool {pool!r}; start workers with "
        f"`prefect worker start --pool {pool} --limit 1` (one per GPU)"
    )


def state_of(run) -> str:
    """A flow run's state type ("SCHEDULED", "RUNNING", "COMPLETED", ...), PENDING before it has one."""
    return run.state.type.value if run.state else "PENDING"


def no_worker_message(what: str, pool: str, seconds: int, key: str) -> str:
    return (
        f"no worker of work pool {pool!r} picked up {what} within {seconds} s ({key}); start one with "
        f"`prefect worker start --pool {pool} --limit 1`"
    )


def last_heartbeat(client, flow_run) -> datetime | None:
    """When `flow_run` last sent a heartbeat (Prefect's `prefect.flow-run.heartbeat` event), or None."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    since = flow_run.start_time or (datetime.now(UTC) - timedelta(days=1))
    page = client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=since),
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run.id}"]),
        ),
        limit=1,
    )
    return page.events[0].occurred if page.events else None


def silent_for(client, flow_run) -> float:
    """Seconds since a running flow run's last heartbeat (since its start, before the first)."""
    beat = last_heartbeat(client, flow_run) or flow_run.start_time
    return (datetime.now(UTC) - beat).total_seconds() if beat else 0.0


def crash_if_silent(client, flow_run, stale_after_s: float) -> bool:
    """Force a RUNNING flow run whose heartbeats stopped for `stale_after_s` into Crashed (its worker is gone: it
    would stay Running for ever). True if it was crashed."""
    from prefect.states import Crashed

    silent = silent_for(client, flow_run)
    if silent <= stale_after_s:
        return False
    client.set_flow_run_state(
        flow_run.id, Crashed(message=f"no heartbeat for {silent:.0f} s: its worker is gone"), force=True
    )
    return True
