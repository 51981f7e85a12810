"""What sacct's job and step lines say about a job, on output captured from the test cluster."""

from __future__ import annotations

from orchestrator.core.slurm import parse_sacct
from orchestrator.core.state import JobState
from orchestrator.scheduler.observe import sacct_observations
from tests.helpers import REPO

CAPTURED = REPO / "tests" / "unit" / "captured"


def test_step_lines_decide_out_of_memory_and_maxrss() -> None:
    observed = sacct_observations(parse_sacct((CAPTURED / "sacct_terminal.txt").read_text()))
    assert observed["26"].state is JobState.OUT_OF_MEMORY and observed["26"].reason == "step 0 ran out of memory"
    assert observed["26"].max_rss_bytes == 1160 * 1024  # the largest step
    assert observed["23"].state is JobState.TIMEOUT and observed["25"].state is JobState.FAILED
    assert observed["21"].state is JobState.CANCELLED and observed["21"].reason == "JobHeldUser"
