"""python -m nin TOOL [ARGS]: the command-line tools besides train.py and eval.py.

    python -m nin sweep configs/sweeps/compare.py --workdir runs/compare
    python -m nin report runs/compare
    python -m nin --help                   # the list of tools

Each tool is a `main(argv)` (and a `define_flags()`, if it has flags) in the
library module that does its job; this layer gives all of them the same
command line: one-line errors and exit codes, quiet logs, the CPU settings
(nin/cli.py).
"""
import importlib
import sys

from nin import cli

# name -> (module, what it does). The modules are imported only when their tool runs.
TOOLS = {
    'sweep': ('nin.launch.sweep', 'run, print or check a sweep of train.py runs'),
    'report': ('nin.experiments.report', "a sweep's report: tables, 95% intervals, plots"),
    'ladder': ('nin.experiments.ladder', 'the same questions at several budgets, side by side'),
    'publish': ('nin.experiments.publish', "a sweep's finished runs as a folder to commit"),
    'summary': ('nin.train.summary', "a config's parameters and mult-adds, block by block"),
    'bench': ('nin.checks.bench', 'training-step speed against the matmul peak'),
    'device_check': ('nin.checks.device_check', "an accelerator's speed, correctness and training"),
}


def usage() -> str:
  width = max(map(len, TOOLS))
  return '\n'.join(['Usage: python -m nin TOOL [ARGS]   (python -m nin TOOL --help)', ''] +
                   [f'  {name:<{width}}  {what}' for name, (_, what) in TOOLS.items()])


def main() -> int:
  name = sys.argv[1] if len(sys.argv) > 1 else ''
  if name in ('-h', '--help', 'help'):
    print(usage())
    return 0
  if name not in TOOLS:
    print(f"Error: unknown tool '{name}'; valid: {', '.join(TOOLS)}" if name else usage(),
          file=sys.stderr)
    return cli.EXIT_USAGE
  sys.argv = [f'python -m nin {name}', *sys.argv[2:]]
  tool = importlib.import_module(TOOLS[name][0])
  if hasattr(tool, 'define_flags'):
    tool.define_flags()
  return cli.main(lambda argv: cli.run(lambda: tool.main(argv)))


if __name__ == '__main__':
  sys.exit(main())
