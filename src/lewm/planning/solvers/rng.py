"""Where solver noise comes from: one CPU generator per environment (spec §6.4).

Every environment row ``i`` draws its noise from its own CPU ``torch.Generator``
``generators[i]``, row by row, then the noise is moved to the solve device. Hence

- a row's plan does not depend on which other rows were solved with it
  (batched == one at a time, to float tolerance), and
- plans do not depend on the device the cost runs on.

The ``clean`` profile gives each (episode, solve) its own generator
(:func:`make_generator`); the ``reference`` profile solves one environment at a
time with a single generator seeded 42 whose stream continues across
environments and solves (the MPC policy arranges both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lewm.errors import ConfigError

Generators = torch.Generator | Sequence[torch.Generator] | None


def derive_seed(seed: int, episode: int, solve: int) -> int:
    """A well-mixed 63-bit seed for one (seed, episode index, solve index) triple."""
    if min(seed, episode, solve) < 0:
        raise ConfigError(
            f"seed, episode and solve indices must be >= 0, got {(seed, episode, solve)}"
        )
    words = np.random.SeedSequence([seed, episode, solve]).generate_state(2, dtype=np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def make_generator(seed: int, episode: int = 0, solve: int = 0) -> torch.Generator:
    """The CPU generator of one (episode, solve) pair (``clean`` profile)."""
    return torch.Generator().manual_seed(derive_seed(seed, episode, solve))


def as_generator_list(generators: Generators, n_envs: int) -> list[torch.Generator]:
    """One CPU generator per environment; ``None`` = a fixed default (reproducible)."""
    if generators is None:
        return [make_generator(0, i, 0) for i in range(n_envs)]
    if isinstance(generators, torch.Generator):
        if n_envs != 1:
            raise ValueError(
                "a single torch.Generator can only drive a solve of n_envs=1 (the reference "
                f"ordering solves environments one at a time); got n_envs={n_envs}: pass "
                "one generator per environment"
            )
        generators = [generators]
    gens = list(generators)
    if len(gens) != n_envs:
        raise ValueError(f"expected {n_envs} generators (one per environment), got {len(gens)}")
    for g in gens:
        if g.device.type != "cpu":
            raise ValueError(
                f"solver generators must live on the CPU so plans do not depend on the "
                f"device, got a generator on {g.device}"
            )
    return gens


def sample_normal(gens: Sequence[torch.Generator], shape: tuple[int, ...], device: Any) -> Tensor:
    """Standard normal noise (n, *shape): row i from ``gens[i]`` on the CPU, then moved."""
    rows = [torch.randn(shape, generator=g, dtype=torch.float32) for g in gens]
    return torch.stack(rows).to(device)
