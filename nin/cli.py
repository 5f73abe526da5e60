"""What the command-line tools share: one-line errors and exit codes.

The entry points are train.py, eval.py and `python -m nin TOOL`
(nin/__main__.py: sweep, report, ladder, publish, summary, bench,
device_check). Each calls the library through `main(main_fn)` here, which
parses absl flags, and `run(fn)`, which turns the project's errors into one
line and an exit code. A tool's flags and `main(argv)` live beside the library
function it wraps; `define_flags()` is called only when the tool runs, so that
importing a module (from a notebook, or from another absl program with its own
--config or --workdir) defines no flag. No library module imports this one.

A bad config, dataset or workdir prints one line naming the bad value and
the valid choices (with `--verbosity=0`, or any value, the whole traceback and
the libraries' logs instead), and exits with 2; a non-finite loss, a disk that refuses
a write during the run, or another process of the run that died exits with 1; a run
stopped by a signal exits with 128+N after saving a checkpoint.
"""
import logging as std_logging
import os
import re
import signal
import sys
import threading
import time
import warnings

from absl import app, flags, logging

from nin import errors
from nin.runtime import malloc, peer_failure, xla_flags

EXIT_USAGE = 2
# Library warnings that every normal run would print and no user can act on: TFDS
# recommends OpenCV for decoding (the project decodes with Pillow), and Orbax notes
# that the checkpoint saved on SIGTERM carries no validation score (it is never "best").
# Library log lines that say nothing to a user. 'Variant folder': TFDS looking for a
# prepared copy that is not there, before the project's own one-line error says so.
_NOISE = ('OpenCV is not installed', 'Requested `tracked_metric`; did not provide metrics',
          'Variant folder ')


class _DropNoise(std_logging.Filter):
  def filter(self, record):
    if str(record.msg).startswith(_NOISE):
      return False
    # Orbax logs a refused asynchronous write from each of its threads, with a traceback;
    # the checkpointer reports it once, in one line (errors.StorageError).
    cause = record.exc_info[1] if record.exc_info else None
    return not errors.storage_problem(cause or Exception(record.getMessage()))


def _closed_loop(kind, value) -> bool:
  """TensorStore's threads report 'Event loop is closed' when an aborted Orbax write (a
  full disk) or read (a step deleted meanwhile) has closed its event loop: noise, as the
  failure itself is reported in one line."""
  return kind is RuntimeError and str(value) == 'Event loop is closed'


def _quiet_closed_loops():
  excepthook, unraisablehook = sys.excepthook, sys.unraisablehook
  sys.excepthook = lambda kind, value, tb: (
      None if _closed_loop(kind, value) else excepthook(kind, value, tb))
  sys.unraisablehook = lambda u: (
      None if _closed_loop(u.exc_type, u.exc_value) else unraisablehook(u))


_ERRORS = {errors.ConfigError: EXIT_USAGE, errors.DataError: EXIT_USAGE,
           errors.WorkdirConflict: EXIT_USAGE, FileNotFoundError: EXIT_USAGE,
           errors.NonFiniteLoss: 1, errors.StorageError: 1}


def run(fn):
  """Calls fn(), turning the project's known errors into a line on stderr and an exit code.

  The exit code is fn()'s own if it returns an int, else 0.
  """
  try:
    code = fn()
  except tuple(_ERRORS) if _debugging() else () as e:
    raise  # --verbosity given: the whole traceback, for someone debugging.
  except errors.Interrupted as e:
    print(str(e), file=sys.stderr, flush=True)
    return 128 + e.signum
  except BrokenPipeError:  # Output piped into a reader that stopped (`| head`): not an error.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE
  except KeyboardInterrupt:  # Ctrl-C outside training (which saves and stops by itself).
    print('Interrupted', file=sys.stderr, flush=True)
    return 130
  except tuple(_ERRORS) as e:
    print(f'Error: {e}', file=sys.stderr, flush=True)
    return next(code for kind, code in _ERRORS.items() if isinstance(e, kind))
  except OSError as e:  # A metrics or summary file that the disk refused.
    why = errors.storage_problem(e)
    if why is None:
      raise
    print(f'Error: cannot write {e.filename or "a file"}: {why}; nothing already saved was '
          f'removed: {errors.storage_advice(why)} and run the same command again',
          file=sys.stderr, flush=True)
    return 1
  except Exception as e:  # A collective whose peer process died (nin/runtime/peer_failure.py).
    why = peer_failure.reason(str(e))
    if why is None or _debugging():
      raise
    import jax  # Already initialised by the run that raised.
    print(peer_failure.message(why, jax.process_index(), jax.process_count()),
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Not sys.exit: JAX's exit-time shutdown would wait at a barrier the dead process
    # never reaches, and abort this one with pages of runtime output.
    os._exit(1)
  return code if isinstance(code, int) else 0


def _debugging() -> bool:
  """Whether --verbosity was given (any value): library logs and full tracebacks then."""
  return flags.FLAGS.is_parsed() and 'verbosity' in flags.FLAGS and flags.FLAGS['verbosity'].present


def _verbosity_given(args) -> bool:
  """`_debugging()` before flags are parsed: --verbosity or absl's short -v, any spelling."""
  return any(a.startswith('-') and a.lstrip('-').split('=')[0] in ('verbosity', 'v')
             for a in args)


def _one_line(e: BaseException) -> str:
  """The informative line of a flag error (ml_collections nests whole tracebacks)."""
  lines = [l.strip() for l in str(e).replace('\\n', '\n').splitlines() if l.strip()]
  lines = [l for l in lines if not l.startswith(('Pass --help', 'Traceback', 'File ', '^'))]
  last = lines[-1] if lines else type(e).__name__
  typo = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', str(e))
  if typo:
    return f"unknown config field '{typo.group(2)}'; did you mean '{typo.group(1)}'?"
  name = last.strip('\'" \\')
  if re.fullmatch(r'[A-Za-z_][\w.]*', name) and len(lines) == 1:
    return f"unknown config field '{name}'"
  return last.split('Error: ', 1)[-1] if last.startswith(('ValueError', 'KeyError')) else last


def _parse_flags(argv):
  try:
    argv = flags.FLAGS(argv)
    if 'config' in flags.FLAGS and flags.FLAGS.config is not None:
      flags.FLAGS.config.keys()  # A config file that failed to load raises only when used.
    return argv
  except Exception as e:  # absl and ml_collections raise several types here.
    print(f'Error: {_one_line(e)}', file=sys.stderr, flush=True)
    sys.exit(EXIT_USAGE)


def main(main_fn, joins_peers=False):
  """`absl.app.run` with quiet library logs (unless --verbosity is given).

  Before anything imports JAX, it applies the project's CPU XLA flag
  (nin/runtime/xla_flags.py); on a CPU-only Linux machine the process then restarts
  itself once with faster malloc settings (nin/runtime/malloc.py), before any flag is
  parsed. Both are process-level settings, so they live here, not in a library
  import. A tool that `joins_peers` (train.py, eval.py), started as one of
  several processes, sends its stderr through nin/runtime/peer_failure.py's relay, so
  that a dead peer is reported in one line (unless --verbosity is given).
  """
  xla_flags.configure()
  malloc.reexec_with_tunables()
  # A file size limit (`ulimit -f`) then fails the write (EFBIG, one line) instead of
  # killing the process between a checkpoint's files.
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  if joins_peers and not _verbosity_given(sys.argv[1:]):
    from nin.runtime import distributed  # Imports JAX: only after the settings above.
    if distributed.launched_as_several_processes():
      peer_failure.start_relay()
  def quiet_main(argv):
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)
      # Orbax's reads run as asyncio tasks: after a failed restore, already reported in
      # one line, the sibling tasks' errors would be logged again at exit.
      std_logging.getLogger('asyncio').setLevel(std_logging.CRITICAL)
      std_logging.getLogger('absl').addFilter(_DropNoise())
      _quiet_closed_loops()
      # An Orbax write aborted by a full disk can leave its TensorStore coroutine unawaited;
      # Python reports it at exit, after the one-line error that already says what happened.
      warnings.filterwarnings('ignore', r"coroutine '.*write_fragment' was never awaited",
                              RuntimeWarning)
    try:
      return main_fn(argv)
    except app.UsageError as e:  # Stray arguments: one line, not absl's page of usage text.
      print(f'Error: {e}', file=sys.stderr, flush=True)
      return EXIT_USAGE
  try:
    app.run(quiet_main, flags_parser=_parse_flags)
  except SystemExit as e:
    _exit_if_threads_linger(e.code)
    return e.code
  return 0


def _exit_if_threads_linger(code, grace_sec: float = 10.0) -> None:
  """After a failure, a library thread that outlived its owner (a checkpoint writer
  whose save failed) would keep Python from exiting: the error is said, so exit anyway."""
  if not code:
    return
  deadline = time.monotonic() + grace_sec
  for thread in threading.enumerate():
    if thread is not threading.main_thread() and not thread.daemon:
      try:
        thread.join(max(0.0, deadline - time.monotonic()))
      except Exception:  # Orbax's threads raise TimeoutError from a join that times out.
        pass
  if any(t.is_alive() and not t.daemon for t in threading.enumerate()
         if t is not threading.main_thread()):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)
