"""A test fixture: the real PyTCP agent (agent.py, started as a child) behind a proxy that misbehaves the way
a buggy stack does when it is asked to receive: MISBEHAVE=crash exits at once (status 3), MISBEHAVE=hang stops
answering. Everything else is passed through unchanged, so the stack on the wire is the real PyTCP."""
import ctypes
import os
import signal
import subprocess
import sys
import time

mode = os.environ.get("MISBEHAVE", "crash")


def die_with_parent():  # the agent goes when this proxy goes, however it ends
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


agent = subprocess.Popen([sys.executable, "-u", "agent.py"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         preexec_fn=die_with_parent, text=True, bufsize=1)
sys.stdout.write(agent.stdout.readline())  # the hello
sys.stdout.flush()
for line in sys.stdin:
    if '"op":"recv"' in line:
        print(f"misbehave: {mode} on {line.strip()}", file=sys.stderr, flush=True)
        if mode == "crash":
            agent.kill()
            os._exit(3)
        while True:
            time.sleep(3600)
    agent.stdin.write(line)
    agent.stdin.flush()
    sys.stdout.write(agent.stdout.readline())
    sys.stdout.flush()
