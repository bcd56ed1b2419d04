"""Start and stop a throwaway single-node SLURM cluster on this machine.

    python tests/slurm/cluster.py start STATE_DIR   # prints the environment to use it
    python tests/slurm/cluster.py stop STATE_DIR

Needs root and Debian's `slurm-wlm` and `munge` packages. Everything the cluster
writes (configs, munge key and socket, spool, state, logs, PID files) lives in
STATE_DIR; nothing under /etc is touched and no systemd or cgroups are involved.
Clients reach the cluster through SLURM_CONF and an srun wrapper (see Cluster.env).

The node claims at least MIN_CPUS CPUs and MIN_MEMORY_MB of memory, whatever the
machine has, so the cluster profile's requests fit on a small CI runner; and one
dummy GPU backed by /dev/null, so `--gpus=1` jobs are scheduled and see
CUDA_VISIBLE_DEVICES=0. `stop` cancels any jobs still queued or running, then ends
every daemon that `start` started, by the PID it recorded in STATE_DIR/run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
DAEMONS = ("munged", "slurmctld", "slurmd")  # start order; stopped in reverse
MIN_MEMORY_MB = 64_000  # the node claims at least this much (config_overrides)
MIN_CPUS = 8  # two of the slurm profile's 4-thread training jobs side by side


class ClusterError(RuntimeError):
    """The cluster could not be started."""


def missing_requirements() -> str | None:
    """Why no cluster can be started here, or None when it can."""
    if os.geteuid() != 0:
        return "the test SLURM cluster runs its daemons as root"
    missing = [b for b in (*DAEMONS, "sbatch", "squeue", "sinfo") if not shutil.which(b)]
    if missing:
        return f"SLURM is not installed (no {', '.join(missing)}): apt-get install slurm-wlm munge"
    return None


@dataclass(frozen=True)
class Cluster:
    state: Path

    @property
    def conf(self) -> Path:
        return self.state / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF and the srun wrapper, for SLURM clients of this cluster."""
        path = f"{self.state / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def pid_file(self, daemon: str) -> Path:
        return self.state / "run" / f"{daemon}.pid"

    def run(self, *args: str, timeout: float = 30) -> str:
        """Run a SLURM client command against this cluster and return its stdout."""
        done = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=True
        )
        return done.stdout

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for log in sorted((self.state / "log").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> tuple[int, int]:
    """CPUs and memory (MB) as `slurmd -C` reports them."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    return int(fields["CPUs"]), int(fields["RealMemory"])


def write_config(state: Path) -> Cluster:
    """Write slurm.conf, gres.conf, the task prolog and a munge key into `state`."""
    for sub in ("munge", "ctld", "spool", "run", "log", "bin"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(state / "munge", 0o755)  # the socket must be reachable; the key is 0400
    cpus, memory_mb = _node_hardware()
    values = {
        "state": str(state),
        "node": socket.gethostname().split(".")[0],
        "ctld_port": _free_port(),
        "slurmd_port": _free_port(),
        "cpus": max(cpus, MIN_CPUS),
        "memory_mb": max(memory_mb, MIN_MEMORY_MB),
        "min_job_age": 300,  # the plugin's squeue status check needs >= 3 * its poll interval
    }
    for name in ("slurm.conf", "gres.conf"):
        text = Template((HERE / f"{name}.in").read_text()).substitute(values)
        (state / name).write_text(text)
    prolog = state / "task_prolog.sh"
    shutil.copyfile(HERE / "task_prolog.sh", prolog)
    prolog.chmod(0o755)
    # Inside a job, the executor plugin's jobstep drops every SLURM_* variable, SLURM_CONF
    # included, before it calls srun; a real node finds /etc/slurm/slurm.conf instead. This
    # wrapper (first on PATH, which jobs inherit) points srun at this cluster's config.
    srun = state / "bin" / "srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF={state}/slurm.conf exec {shutil.which("srun")} "$@"\n')
    srun.chmod(0o755)
    key = state / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    return Cluster(state)


def _commands(cluster: Cluster) -> dict[str, list[str]]:
    s, conf = cluster.state, str(cluster.conf)
    node = socket.gethostname().split(".")[0]
    return {
        "munged": [
            "munged",
            "--foreground",
            "--force",
            f"--socket={s}/munge/munge.socket",
            f"--key-file={s}/munge/munge.key",
            f"--pid-file={s}/run/munged.daemon.pid",
            f"--log-file={s}/log/munged.log",
            f"--seed-file={s}/munge/munged.seed",
        ],
        "slurmctld": ["slurmctld", "-D", "-f", conf],
        "slurmd": ["slurmd", "-D", "-f", conf, "-N", node],
    }


def _alive(pid: int, name: str) -> bool:
    """True when `pid` is still the daemon `name` (guards against PID reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
        return False
    return os.path.basename(cmdline.decode(errors="replace")) == name


def _wait_for(check, timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{cluster.log_tail()}")


def _node_state(cluster: Cluster) -> str:
    try:
        return cluster.run("sinfo", "--noheader", "--Node", "--format=%t", timeout=5).strip()
    except (subprocess.SubprocessError, OSError):
        return ""


def start(state_dir: Path | str, timeout: float = 30) -> Cluster:
    """Start munged, slurmctld and slurmd with `state_dir` as their home; wait for an idle node."""
    reason = missing_requirements()
    if reason:
        raise ClusterError(reason)
    cluster = write_config(Path(state_dir).resolve())
    try:
        for name, cmd in _commands(cluster).items():
            with open(cluster.state / "log" / f"{name}.out", "ab") as out:
                proc = subprocess.Popen(
                    cmd,
                    env=cluster.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            cluster.pid_file(name).write_text(f"{proc.pid}\n")
            if name == "munged":
                sock = cluster.state / "munge" / "munge.socket"
                _wait_for(sock.exists, 10, "the munge socket", cluster)
            time.sleep(0.1)
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited with {proc.returncode}\n{cluster.log_tail()}")
        _wait_for(lambda: _node_state(cluster) == "idle", timeout, "an idle node", cluster)
    except BaseException:
        stop(cluster.state)
        raise
    return cluster


def stop(state_dir: Path | str, timeout: float = 15) -> None:
    """Cancel remaining jobs, then end each daemon this state dir started, by its PID."""
    cluster = Cluster(Path(state_dir).resolve())
    ctld_pid = _read_pid(cluster, "slurmctld")
    if ctld_pid and _alive(ctld_pid, "slurmctld"):
        try:
            cluster.run("scancel", "--full", "--user=root", timeout=10)
            deadline = time.monotonic() + 10
            while (
                time.monotonic() < deadline
                and cluster.run(
                    "squeue", "--noheader", "--states=PENDING,RUNNING,COMPLETING", timeout=5
                ).strip()
            ):
                time.sleep(0.5)
        except (subprocess.SubprocessError, OSError):
            pass
    for name in reversed(DAEMONS):
        pid = _read_pid(cluster, name)
        if not pid or not _alive(pid, name):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid, name):
            time.sleep(0.1)
        if _alive(pid, name):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # reap it if this process started it
            os.waitpid(pid, os.WNOHANG)
        cluster.pid_file(name).unlink(missing_ok=True)


def _read_pid(cluster: Cluster, name: str) -> int | None:
    try:
        return int(cluster.pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    action, state = argv
    if action == "stop":
        stop(state)
        return 0
    try:
        cluster = start(state)
    except ClusterError as e:
        print(f"cluster.py: {e}", file=sys.stderr)
        return 1
    print(f"export SLURM_CONF={cluster.conf} PATH={cluster.state / 'bin'}:$PATH")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
