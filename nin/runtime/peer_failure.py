"""What a process of a several-process run says when another process of the run dies.

When one process dies (killed, out of memory, a lost node), the others learn it
in one of two ways, and both used to end in pages of runtime output:
- a collective fails in Python (Gloo: 'Connection reset by peer'): `nin.cli.run`
  prints `message(...)` and exits with 1, skipping JAX's exit-time shutdown,
  whose barrier would fail and abort the process;
- JAX's runtime notices it on its own thread (the coordinator is gone, or a
  process missed its heartbeats) and aborts the process from C++, which no
  Python code can catch. For that case every process of such a run sends its
  stderr through a relay (`start_relay`, `python -m nin.runtime.peer_failure`) that
  passes each line on, and replaces the runtime's fatal report and the stack
  dumps after it with the same one line.
Either way nothing saved is lost: every process reruns the same command and the
run resumes from its last checkpoint. Standard library only: the relay starts
in a fresh interpreter before the process imports JAX's runtime.
"""
import os
import re
import signal
import subprocess
import sys

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The first line of the runtime's report when it ends a process because a peer failed.
_FATAL = 'Terminating process because the JAX distributed service detected fatal errors'
# What a collective raises in Python when its peer's connection drops.
_COLLECTIVE = re.compile(r'Gloo [\w-]+ failed.*?(Connection reset by peer|Connection closed by '
                         r'peer|Broken pipe|Timed out)', re.S)


def reason(text: str):
  """Which peer failed and how, read from a runtime error's text; None if no peer failed."""
  task = re.search(r'Task (\d+) heartbeat timeout', text)
  if task:
    return f'process {task.group(1)} stopped answering'
  if 'Failed to send RPC to coordination service' in text or 'leader task' in text:
    return 'process 0, which coordinates the run, is gone'
  lost = _COLLECTIVE.search(text)
  if lost:
    return f'another process of the run is gone ({lost.group(1).lower()})'
  return 'another process of the run failed' if _FATAL in text else None


def message(why: str, process, count) -> str:
  """The one line; `process` and `count` as ints or text ('' when the launcher did not say)."""
  who = f'process {process} of {count}' if f'{process}' and f'{count}' else 'this process'
  return (f'Error: {who} stopped: {why}. Nothing saved is lost: run the same command '
          f'on every process to resume from the last checkpoint')


def _this_process():
  """This process's index and the process count, as the launcher set them ('' if unknown)."""
  env = os.environ
  return (env.get('NIN_PROCESS_ID', env.get('SLURM_PROCID', '')),
          env.get('NIN_NUM_PROCESSES', env.get('SLURM_NTASKS', '')))


def start_relay() -> None:
  """Sends this process's stderr (Python's and the runtime's) through the relay."""
  relay = subprocess.Popen([sys.executable, '-m', 'nin.runtime.peer_failure', *_this_process()],
                           stdin=subprocess.PIPE, stdout=sys.stderr.fileno(),
                           cwd=_REPO_ROOT)
  sys.stderr.flush()
  os.dup2(relay.stdin.fileno(), sys.stderr.fileno())
  relay.stdin.close()  # fd 2 is now the only writer: the relay ends when this process does.


def _relay(process: str, count: str) -> None:
  # The relay outlives its process's Ctrl-C or SIGTERM (sent to the whole group or job),
  # so that the process's own last line ('Interrupted ...') still gets through.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  out, report = sys.stdout.buffer, None
  for line in sys.stdin.buffer:
    text = line.decode(errors='replace')
    if report is None and _FATAL in text:
      report = []
    if report is not None:
      report.append(text)
    else:
      out.write(line)
      out.flush()
  if report is not None:
    out.write((message(reason(''.join(report)), process, count) + '\n').encode())
    out.flush()


if __name__ == '__main__':
  _relay(*(sys.argv[1:3] + ['', ''])[:2])
