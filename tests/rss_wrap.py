"""Run a command and write its own peak RSS (KiB) to a file: ``rss_wrap.py OUT CMD...``.

Measuring a child straight from pytest over-counts: Linux carries the RSS high-water mark of
the (large) test process into the child across fork/exec. This small process forks the
command, forwards SIGTERM/SIGINT to it, and reports the command's ``ru_maxrss``."""
import os
import signal
import sys

out, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
with open(out + ".pid", "w") as fh:
    fh.write(str(pid))
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, lambda n, _f: os.kill(pid, n))
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as fh:
    fh.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
