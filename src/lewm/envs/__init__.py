"""Environments of the paper, as Gymnasium environments.

Importing this package registers ``lewm/TwoRoom-v0``, ``lewm/PushT-v0``,
``lewm/Reacher-v0`` and ``lewm/Cube-v0``. Entry points are strings, so the
MuJoCo environments only need the ``lewm[mujoco]`` extra when they are made.

``ENVS`` is the one table the collection tool, evaluation and the CLI read:
short name -> :class:`EnvSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium


@dataclass(frozen=True)
class EnvSpec:
    """How to build, drive and record one environment."""

    name: str  # short name used on the command line
    gym_id: str
    entry_point: str  # "module:Class"
    policies: dict[str, str] = field(default_factory=dict)  # policy name -> "module:Class"
    max_episode_steps: int = 100  # collection episode length limit (raw steps)
    extra: str | None = None  # pip extra the environment needs, if any
    collect_kwargs: dict = field(
        default_factory=dict
    )  # constructor keywords used for data collection


ENVS: dict[str, EnvSpec] = {
    "tworoom": EnvSpec(
        name="tworoom",
        gym_id="lewm/TwoRoom-v0",
        entry_point="lewm.envs.tworoom:TwoRoomEnv",
        policies={
            "expert": "lewm.envs.tworoom:TwoRoomExpert",
            "random": "lewm.envs.policies:RandomPolicy",
        },
        max_episode_steps=100,
    ),
    "pusht": EnvSpec(
        name="pusht",
        gym_id="lewm/PushT-v0",
        entry_point="lewm.envs.pusht:PushTEnv",
        policies={
            "expert": "lewm.envs.pusht:PushTExpert",
            "random": "lewm.envs.policies:RandomPolicy",
        },
        max_episode_steps=200,
    ),
    "reacher": EnvSpec(
        name="reacher",
        gym_id="lewm/Reacher-v0",
        entry_point="lewm.envs.reacher:ReacherEnv",
        policies={"random": "lewm.envs.policies:RandomPolicy"},
        max_episode_steps=200,
        extra="mujoco",
        collect_kwargs={"terminate_at_goal": False},  # the released data never terminates
    ),
    "cube": EnvSpec(
        name="cube",
        gym_id="lewm/Cube-v0",
        entry_point="lewm.envs.cube:CubeEnv",
        policies={
            "expert": "lewm.envs.cube:CubeExpert",
            "random": "lewm.envs.policies:RandomPolicy",
        },
        max_episode_steps=200,
        extra="mujoco",
    ),
}


def _register() -> None:
    for spec in ENVS.values():
        if spec.gym_id not in gymnasium.registry:
            gymnasium.register(id=spec.gym_id, entry_point=spec.entry_point)


_register()
