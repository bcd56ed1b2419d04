"""Measurements that go into every result: how long the job took to reach its first batch."""

import json
import subprocess
import sys
import time

from workflow_helpers import REPO

CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
time.sleep(0.5)
from cifarbench.measure import process_age_s
print(json.dumps({"now": time.time(), "age": process_age_s()}))
"""


def test_process_age_is_the_time_since_the_process_was_started():
    """Seen from the parent, the child's age can be neither more than the time since it was
    spawned (psutil's create_time overstates it by up to a second) nor less than its sleep."""
    spawned = time.time()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO / "workflow" / "scripts")],
        capture_output=True,
        text=True,
        check=True,
    )
    reading = json.loads(child.stdout)
    since_spawn = reading["now"] - spawned
    # Start times are counted in 10 ms clock ticks, rounded down.
    assert 0.5 <= reading["age"] <= since_spawn + 0.02
