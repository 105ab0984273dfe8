"""Training speed of each backbone: images per second through forward, backward and an Adam step.

Also prints the parameter count, the forward GFLOP per image (counted by
``torch.utils.flop_counter.FlopCounterMode``: 2 per multiply-add of convolutions and
matrix products) and the share of those FLOPs in the deterministic prefix, which
MC-dropout prediction computes once per galaxy instead of once per pass.

    python benchmarks/bench_train_step.py                      # compact and vgg16, 96x96, CPU
    python benchmarks/bench_train_step.py --backbones compact --batch 64 --steps 10

Figures depend on the machine and on whatever else runs on it; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from gampen.model.config import BACKBONES, NetworkConfig
from gampen.model.loss import gaussian_nll
from gampen.model.network import GampenNet, count_parameters


def parse_args() -> argparse.Namespace:
    """Command-line settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=96, help="input side in pixels")
    parser.add_argument("--bands", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def forward_flops(net: GampenNet, x: torch.Tensor) -> tuple[int, int]:
    """FLOPs of one forward pass of ``x`` in total and in the prefix (``net.features``)."""
    with torch.no_grad(), FlopCounterMode(display=False) as total:
        net(x)
    with torch.no_grad(), FlopCounterMode(display=False) as prefix:
        net.features(x)
    return total.get_total_flops(), prefix.get_total_flops()


def images_per_second(net: GampenNet, args: argparse.Namespace) -> float:
    """Training throughput over ``args.steps`` timed steps after ``args.warmup`` ones."""
    device = torch.device(args.device)
    net.to(device).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.bands, args.size, args.size, device=device)
    y = torch.randn(args.batch, net.config.n_params, device=device)

    def step() -> None:
        out = net(x)
        loss = gaussian_nll(out.mean, out.scale_tril, y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(args.warmup):
        step()
    _synchronise(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _synchronise(device)
    return args.steps * args.batch / (time.perf_counter() - start)


def _synchronise(device: torch.device) -> None:
    """Wait for queued GPU work so the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    """Print one line per backbone."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"batch {args.batch}, {args.bands} band(s) of {args.size}x{args.size}, "
        f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{'backbone':<9} {'params':>11} {'GFLOP/img':>10} {'prefix':>7} {'train img/s':>12}")
    for backbone in args.backbones:
        config = NetworkConfig(backbone=backbone, n_bands=args.bands, input_size=args.size)
        net = GampenNet(config).eval()
        total, prefix = forward_flops(net, torch.randn(1, args.bands, args.size, args.size))
        rate = images_per_second(net, args)
        print(
            f"{backbone:<9} {count_parameters(net):>11,} {total / 1e9:>10.3f} "
            f"{prefix / total:>7.1%} {rate:>12.1f}"
        )


if __name__ == "__main__":
    main()
