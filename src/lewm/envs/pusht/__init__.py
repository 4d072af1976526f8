"""PushT (spec §8.2): push a T-shaped block to a goal pose with a disc agent.

The package splits one environment by concept:

- :mod:`~lewm.envs.pusht.geometry`: the arena, the T block, poses and the success test;
- :mod:`~lewm.envs.pusht.render`: the reference's frame pipeline (PIL + resize matrices);
- :mod:`~lewm.envs.pusht.env`: :class:`PushTEnv`, the pymunk physics and the evaluation hooks;
- :mod:`~lewm.envs.pusht.expert`: :class:`PushTExpert`, the scripted data-collection policy.

The registry's entry points ``lewm.envs.pusht:PushTEnv`` and
``lewm.envs.pusht:PushTExpert`` resolve through the re-exports below.
"""

from lewm.envs.pusht.env import PushTEnv
from lewm.envs.pusht.expert import PushTExpert
from lewm.envs.pusht.geometry import angle_error, pusht_success
from lewm.envs.pusht.render import LIGHT_SLATE_GRAY, ROYAL_BLUE

__all__ = [
    "LIGHT_SLATE_GRAY",
    "ROYAL_BLUE",
    "PushTEnv",
    "PushTExpert",
    "angle_error",
    "pusht_success",
]
