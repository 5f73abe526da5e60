r"""NiN's training step in PyTorch, timed beside `nin.checks.bench` on the same device.

  python benchmarks/torch_nin.py --device cuda --batch_size 1024 --dtype bfloat16
  python benchmarks/torch_nin.py --device cpu --batch_size 128 --variant paper

The network is the one `configs/nin.py` trains: NiN's three mlpconv blocks
(5x5 192, 1x1 160, 1x1 96; 5x5 192, 1x1 192, 1x1 192; 3x3 192, 1x1 192,
1x1 10), max and average pooling between them, dropout 0.5 and global
average pooling; `bn` (the default protocol) has BatchNorm after every conv,
`paper` has none. channels_last, SGD with momentum, cross-entropy; bfloat16
through autocast (parameters stay float32). Prints one JSON line: images/s is
the batch over the median step time after the warm-up. PyTorch is not a
dependency of the project: this runs where it is installed.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def nin(variant: str) -> nn.Sequential:
  def unit(c_in, c_out, k):
    if variant == 'bn':
      return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
              nn.ReLU(inplace=True)]
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.ReLU(inplace=True)]
  return nn.Sequential(
      *unit(3, 192, 5), *unit(192, 160, 1), *unit(160, 96, 1),
      nn.MaxPool2d(3, 2, padding=1), nn.Dropout(0.5),
      *unit(96, 192, 5), *unit(192, 192, 1), *unit(192, 192, 1),
      nn.AvgPool2d(3, 2, padding=1), nn.Dropout(0.5),
      *unit(192, 192, 3), *unit(192, 192, 1), *unit(192, 10, 1),
      nn.AdaptiveAvgPool2d(1), nn.Flatten())


def training_step(model, device: str, batch_size: int, dtype: str, lr: float = 0.01,
                  nesterov: bool = False):
  """A function running one SGD step of `model` on a fixed random batch (channels_last)."""
  model = model.to(device, memory_format=torch.channels_last).train()
  x = torch.randn(batch_size, 3, 32, 32, device=device).contiguous(
      memory_format=torch.channels_last)
  y = torch.randint(0, 10, (batch_size,), device=device)
  opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=nesterov)
  autocast = dtype == 'bfloat16'
  device_type = torch.device(device).type

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
      loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
  return step


def time_model(model, device: str, batch_size: int, dtype: str, steps: int, warmup: int,
               lr: float = 0.01, nesterov: bool = False) -> dict:
  """Times `model`'s training step (`training_step`): the median after `warmup` steps."""
  step = training_step(model, device, batch_size, dtype, lr, nesterov)
  device_type = torch.device(device).type
  times = []
  for i in range(warmup + steps):
    if device_type == 'cuda':
      torch.cuda.synchronize()
    t = time.perf_counter()
    step()
    if device_type == 'cuda':
      torch.cuda.synchronize()
    if i >= warmup:
      times.append(time.perf_counter() - t)
  median = statistics.median(times)
  return {'framework': 'pytorch', 'torch': torch.__version__, 'device': device,
          'device_name': (torch.cuda.get_device_name() if device_type == 'cuda' else 'cpu'),
          'dtype': dtype, 'batch_size': batch_size, 'steps': steps,
          'step_sec_median': median, 'images_per_sec': batch_size / median}


def time_step(device: str, batch_size: int, dtype: str, variant: str, steps: int,
              warmup: int) -> dict:
  torch.manual_seed(0)
  r = time_model(nin(variant), device, batch_size, dtype, steps, warmup)
  return {**r, 'model': 'nin', 'variant': 'default' if variant == 'bn' else 'paper'}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
  p.add_argument('--batch_size', type=int, default=128)
  p.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32')
  p.add_argument('--variant', choices=('bn', 'paper'), default='bn')
  p.add_argument('--steps', type=int, default=10)
  p.add_argument('--warmup', type=int, default=3)
  a = p.parse_args()
  print(json.dumps(time_step(a.device, a.batch_size, a.dtype, a.variant, a.steps, a.warmup)),
        flush=True)


if __name__ == '__main__':
  main()
