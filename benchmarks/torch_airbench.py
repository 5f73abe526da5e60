r"""airbench94's network and step in PyTorch, timed beside `nin.checks.bench` on the same device.

  python benchmarks/torch_airbench.py --device cpu --batch_size 128
  python benchmarks/torch_airbench.py --device cpu --batch_size 128 --profile 3

The network is the one `models/plain.py:Airbench` writes (from airbench94's
description): a 2x2 whitening conv to 24 channels, GELU, three groups of
[3x3 conv, 2x2 max pool, BatchNorm, GELU, 3x3 conv, BatchNorm, GELU] at widths
64/256/256, a 3x3 max pool, a linear head without bias scaled by 1/9. Convs
have no bias, BatchNorm no scale. Nesterov SGD; no lookahead (the project's
airbench step includes it: a few elementwise passes over the weights every
step). `--profile N` prints PyTorch's profiler table over N steps after the
timing, by operator: where the step's time goes. Prints one JSON line first.
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_nin import time_model, training_step  # noqa: E402


def airbench(widths=(64, 256, 256)) -> nn.Sequential:
  def bn(c):
    b = nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)  # PyTorch's momentum = 1 - flax's 0.6.
    b.weight.requires_grad_(False)                    # No scale: a bias only.
    return b
  layers, c_in = [nn.Conv2d(3, 24, 2, bias=True), nn.GELU()], 24
  for w in widths:
    layers += [nn.Conv2d(c_in, w, 3, padding=1, bias=False), nn.MaxPool2d(2), bn(w), nn.GELU(),
               nn.Conv2d(w, w, 3, padding=1, bias=False), bn(w), nn.GELU()]
    c_in = w
  return nn.Sequential(*layers, nn.MaxPool2d(3), nn.Flatten(),
                       nn.Linear(c_in, 10, bias=False), _Scale(1 / 9))


class _Scale(nn.Module):
  def __init__(self, s):
    super().__init__()
    self.s = s

  def forward(self, x):
    return x * self.s


def profile(model, device, batch_size, steps) -> str:
  step = training_step(model, device, batch_size, 'float32', nesterov=True)
  step()
  with torch.profiler.profile() as prof:
    for _ in range(steps):
      step()
  return prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25)


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
  p.add_argument('--batch_size', type=int, default=128)
  p.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  p.add_argument('--steps', type=int, default=10)
  p.add_argument('--warmup', type=int, default=3)
  p.add_argument('--profile', type=int, default=0, help='Steps to profile after timing (0: none).')
  a = p.parse_args()
  torch.manual_seed(0)
  r = time_model(airbench(), a.device, a.batch_size, a.dtype, a.steps, a.warmup, nesterov=True)
  print(json.dumps({**r, 'model': 'airbench', 'variant': 'airbench'}), flush=True)
  if a.profile:
    print(profile(airbench(), a.device, a.batch_size, a.profile), flush=True)


if __name__ == '__main__':
  main()
