#!/usr/bin/env python3
"""Where the CPU goes, pass by pass: runs a ferry-bench command, samples every process's CPU time
from /proc, and prints, for each interval between two of the command's stderr lines (`e2e` prints
one line per pass), the cores used by Cassandra, PostgreSQL, the command itself (with its child
processes) and everything else on the machine.

    python3 benchmarks/cpu_by_pass.py /var/tmp/ferry-target/debug/ferry-bench e2e --rows 1000000 --reuse

Linux only. Cassandra is every `java` process whose command line mentions cassandra; PostgreSQL
is every `postgres` process, with the time of the backends it has reaped. "other" is the machine's
busy time less those three, so it absorbs processes that exited in between.
"""

import os
import subprocess
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")
PERIOD_S = 0.25


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    comm = text[text.index("(") + 1 : text.rindex(")")]
    return comm, text[text.rindex(")") + 2 :].split()


def sample(bench_pid):
    """Cumulative CPU seconds of (cassandra, postgres, bench, machine)."""
    cassandra = postgres = bench = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm, f = stat_fields(pid)
            own = (int(f[11]) + int(f[12])) / HZ
            reaped = (int(f[13]) + int(f[14])) / HZ
            ppid = int(f[1])
            if comm == "java":
                with open(f"/proc/{pid}/cmdline") as c:
                    if "cassandra" in c.read():
                        cassandra += own
            elif comm.startswith("postgres"):
                postgres += own + reaped
            elif int(pid) == bench_pid:
                bench += own + reaped
            elif ppid == bench_pid:
                bench += own
        except (OSError, ValueError, IndexError):
            continue  # the process ended while being read
    with open("/proc/stat") as f:
        ticks = list(map(int, f.readline().split()[1:]))
    machine = (sum(ticks) - ticks[3] - ticks[4]) / HZ
    return (cassandra, postgres, bench, machine)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    proc = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE, text=True)
    samples, events = [], [(time.time(), "start")]
    done = threading.Event()

    def sampler():
        while not done.is_set():
            samples.append((time.time(), sample(proc.pid)))
            time.sleep(PERIOD_S)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    for line in proc.stderr:
        events.append((time.time(), line.rstrip()))
        sys.stderr.write(line)
    code = proc.wait()
    done.set()
    thread.join()
    if not samples:
        sys.exit(code)

    def at(t):
        return min(samples, key=lambda s: abs(s[0] - t))

    print(f"\n{'interval ending with':<52} {'s':>5}  cassandra postgres ferry-bench other  (cores)")
    for (t0, _), (t1, label) in zip(events, events[1:]):
        (a_t, a), (b_t, b) = at(t0), at(t1)
        dt = b_t - a_t
        if dt < PERIOD_S:
            continue
        cores = [(y - x) / dt for x, y in zip(a, b)]
        other = cores[3] - sum(cores[:3])
        print(
            f"{label[:52]:<52} {dt:5.1f}  {cores[0]:9.2f} {cores[1]:8.2f} {cores[2]:11.2f} {other:5.2f}"
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
