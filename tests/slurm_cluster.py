"""A throw-away single-node Slurm cluster on this host, for tests/test_slurm.py and for trying the
Slurm profile by hand (needs root and Debian's `slurm-wlm` and `munge` packages):

    python tests/slurm_cluster.py up   /tmp/slurm   # prints the `export SLURM_CONF=...` to use
    python tests/slurm_cluster.py down /tmp/slurm

Everything lives in the state folder: slurm.conf, a munge key, spool and state folders, the daemons'
logs and `pids.json`; the host's /etc/slurm and /etc/munge are not touched. Commands find the
cluster through `SLURM_CONF`, except inside a job: the plugin's job step drops every SLURM_* variable
before its `srun`, so slurmd runs "configless" (it fetches slurm.conf from slurmctld) and links the
copy it caches to /run/slurm/conf, where Slurm's commands look when /etc/slurm/slurm.conf is absent
(`down` removes that link). Configless slurmd authenticates through munge's default socket,
/run/munge/munge.socket.2: a munged already serving it is used (and left running), otherwise one is
started there with the state folder's key.
There is no accounting database (`AccountingStorageType=accounting_storage/none`): job states come from
`squeue`, which keeps finished jobs for `MinJobAge` seconds, and every finished job is also written to
the job-completion file `jobcomp.txt`. `down` cancels the cluster's jobs and then stops exactly the
processes that `up` started, by the ids it recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun", "munge", "unmunge")
DEFAULT_PARTITION = "batch"
HOST_CONF = Path("/etc/slurm/slurm.conf")
RUN_CONF = Path("/run/slurm/conf")        # slurmd's link to its cached configless slurm.conf
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")   # munge's default, all that configless slurmd knows


def missing() -> str | None:
    """Why a cluster cannot be brought up here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root"
    if HOST_CONF.exists():
        return (f"{HOST_CONF} exists: this host has a Slurm of its own, which `srun` inside the "
                "test cluster's jobs would talk to")
    absent = [name for name in DAEMONS + CLIENTS if not _which(name)]
    if absent:
        return (f"{', '.join(absent)} not installed "
                "(apt-get install slurm-wlm munge; .ci/run does it)")
    return None


def _which(name: str) -> str | None:
    # The daemons live in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _real_memory_mb() -> int:
    """MemTotal from /proc/meminfo, less 5% so that slurmd never finds less than is configured."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.95)
    raise RuntimeError("no MemTotal in /proc/meminfo")


class Cluster:
    """One controller, one node (this host, all its CPUs), no accounting."""

    def __init__(self, state: Path, partitions: tuple[str, ...] = (DEFAULT_PARTITION,)):
        self.state = Path(state).resolve()
        self.partitions = partitions          # the first one is the default partition
        self.conf = self.state / "slurm.conf"
        self.ctld_log = self.state / "log" / "slurmctld.log"
        self.jobcomp = self.state / "log" / "jobcomp.txt"
        self.pids_file = self.state / "pids.json"
        self.node = socket.gethostname().split(".")[0]

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, snakemake) needs in its environment to use this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def client(self, *args: str, check: bool = True, timeout: int = 30) -> str:
        proc = subprocess.run([_which(args[0]) or args[0], *args[1:]], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **self.env})
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    # --- up -------------------------------------------------------------------------------------
    def write_config(self) -> None:
        """A fresh configuration: the job records and logs of an earlier cluster in the same state
        folder are removed."""
        for sub in ("log", "ctld", "spool"):
            shutil.rmtree(self.state / sub, ignore_errors=True)
        for sub in ("munge", "log", "ctld", "spool"):
            (self.state / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        key = self.state / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        cpus = len(os.sched_getaffinity(0))
        partitions = "\n".join(
            f"PartitionName={name} Nodes={self.node} Default={'YES' if i == 0 else 'NO'} "
            "MaxTime=INFINITE State=UP"
            for i, name in enumerate(self.partitions))
        log = self.state / "log"
        self.conf.write_text(f"""\
# Written by tests/slurm_cluster.py: a single-node cluster without accounting.
ClusterName=implicitrepro
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={MUNGE_SOCKET}
StateSaveLocation={self.state / 'ctld'}
SlurmdSpoolDir={self.state / 'spool'}
SlurmctldPidFile={self.state / 'slurmctld.pid'}
SlurmdPidFile={self.state / 'slurmd.pid'}
SlurmctldLogFile={self.ctld_log}
SlurmdLogFile={log / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
MpiDefault=none
ReturnToService=2
SlurmctldParameters=enable_configless
# squeue (the status check without accounting) sees a finished job for MinJobAge seconds.
MinJobAge=3600
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={_real_memory_mb()} State=UNKNOWN
{partitions}
""")

    def _start(self, name: str, args: list[str], pids: dict) -> None:
        log = open(self.state / "log" / f"{name}.out", "ab")
        proc = subprocess.Popen([_which(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, **self.env})
        log.close()
        pids[name] = proc.pid
        self.pids_file.write_text(json.dumps(pids))   # recorded at once: `down` works after a failed `up`

    def up(self, timeout: float = 60) -> "Cluster":
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        if self.pids_file.exists() and any(_alive(p, n) for n, p in json.loads(self.pids_file.read_text()).items()):
            raise RuntimeError(f"a cluster from {self.state} is still running: `down` it first")
        if RUN_CONF.is_symlink() or RUN_CONF.exists():
            raise RuntimeError(f"{RUN_CONF} exists: another slurmd (another test cluster?) runs here")
        self.write_config()
        munge = self.state / "munge"
        pids: dict[str, int] = {}
        if not _munge_works():
            MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)   # PID 1 may not be systemd
            MUNGE_SOCKET.parent.chmod(0o755)
            self._start("munged", ["--foreground", "--force", f"--key-file={munge / 'munge.key'}",
                                   f"--socket={MUNGE_SOCKET}", f"--pid-file={munge / 'munged.pid'}",
                                   f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"],
                        pids)
            self._wait(_munge_works, timeout, "munged to answer")
        self._start("slurmctld", ["-D", "-c", "-f", str(self.conf)], pids)
        self._wait(lambda: self.client("scontrol", "ping", check=False).count("UP") > 0, timeout,
                   "slurmctld to answer")
        port = next(l.split("=", 1)[1] for l in self.conf.read_text().splitlines()
                    if l.startswith("SlurmctldPort="))
        self._start("slurmd", ["-D", "--conf-server", f"127.0.0.1:{port}", "-N", self.node], pids)
        self._wait(self._node_idle, timeout, f"node {self.node} to be idle")
        return self

    def _node_idle(self) -> bool:
        out = self.client("sinfo", "--noheader", "--Node", "--format=%T", check=False)
        return out.split() != [] and all(state.rstrip("*") == "idle" for state in out.split())

    def _wait(self, ready, timeout: float, what: str) -> None:
        pids = json.loads(self.pids_file.read_text()) if self.pids_file.exists() else {}
        deadline, dead = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [name for name, pid in pids.items() if not _alive(pid, name)]
            if dead:
                break
            time.sleep(0.5)
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                         for p in sorted((self.state / "log").glob("*")) if p.is_file())
        raise RuntimeError(f"timed out waiting for {what} (dead: {dead or 'none'})\n{logs}")

    # --- down -----------------------------------------------------------------------------------
    def down(self, timeout: float = 20) -> None:
        """Cancel the cluster's jobs, then stop the daemons `up` started (by their recorded ids)."""
        if not self.pids_file.exists():
            return
        pids = json.loads(self.pids_file.read_text())
        if _alive(pids.get("slurmctld"), "slurmctld"):
            try:
                self.client("scancel", "--user", str(os.getuid()), check=False, timeout=10)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and self.client(
                        "squeue", "--noheader", "--states=RUNNING,PENDING,COMPLETING,CONFIGURING",
                        check=False, timeout=10).strip():
                    time.sleep(0.5)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):      # reverse order of `up`
            pid = pids.get(name)
            if not _alive(pid, name):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid, name):
                time.sleep(0.2)
            if _alive(pid, name):
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
        if RUN_CONF.is_symlink() and Path(os.readlink(RUN_CONF)).is_relative_to(self.state):
            RUN_CONF.unlink()
        self.pids_file.unlink()

    # --- Slurm's own records ------------------------------------------------------------------------
    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still knows (MinJobAge keeps finished ones for an hour): id, name,
        comment (the executor plugin writes `rule_<rule>_wildcards_<...>` there), state, partition,
        working directory."""
        fields = {"id": "%i", "name": "%j", "comment": "%k", "state": "%T", "partition": "%P", "workdir": "%Z"}
        out = self.client("squeue", "--noheader", "--states=all",
                          "--format=" + "\x1f".join(fields.values()))
        return [dict(zip(fields, line.split("\x1f"))) for line in out.splitlines() if line.strip()]

    def submitted_job_ids(self) -> list[str]:
        """The JobIds that slurmctld's log records as accepted by `sbatch`."""
        if not self.ctld_log.exists():
            return []
        return [line.split("JobId=", 1)[1].split()[0] for line in self.ctld_log.read_text().splitlines()
                if "_slurm_rpc_submit_batch_job: JobId=" in line]


def _munge_works() -> bool:
    """Whether a munged answers on the default socket (credentials it encodes, it decodes)."""
    if not MUNGE_SOCKET.exists():
        return False
    munge, unmunge = _which("munge"), _which("unmunge")
    cred = subprocess.run([munge, "--no-input", f"--socket={MUNGE_SOCKET}"], capture_output=True)
    return cred.returncode == 0 and subprocess.run(
        [unmunge, f"--socket={MUNGE_SOCKET}"], input=cred.stdout, capture_output=True).returncode == 0


def _alive(pid: int | None, name: str | None = None) -> bool:
    """True while the process exists, is not a zombie (a daemon we started and that died is a zombie
    child of ours until reaped) and, given a name, still runs that program (a recorded id may have
    been reused since)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)       # reap it if it is our child
        except ChildProcessError:
            pass
        return False
    if not name:
        return True
    # The kernel's name of the process as well as argv[0]: a daemon may rewrite its argv (Slurm's
    # setproctitle), and a live slurmctld then looked dead, was not stopped and outlived the test.
    comm = Path(f"/proc/{pid}/comm").read_text().strip() if Path(f"/proc/{pid}/comm").exists() else ""
    return name in (Path(argv0).name, comm)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = Cluster(Path(argv[1]))
    if argv[0] == "up":
        try:
            cluster.up()
        except Exception:
            cluster.down()
            raise
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
