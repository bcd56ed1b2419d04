"""Measurements that go into every result: how long the job took to reach its first batch."""

import json
import subprocess
import sys
import time

from cifarbench.measure import cpu_flags
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


def test_the_record_names_the_cpu_features_that_decide_its_speed(tmp_path):
    """Same model name, different speed: AMX is what the bf16 recipe's time depends on."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
        "flags\t\t: fpu avx2 amx_tile avx512_bf16x avx512f\n\n"
        "processor\t: 1\nflags\t\t: fpu amx_bf16\n"
    )
    assert cpu_flags(cpuinfo) == ["avx2", "avx512f", "amx_tile"]
    assert cpu_flags(tmp_path / "no-cpuinfo") == []
