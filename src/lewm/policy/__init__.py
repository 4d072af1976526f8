"""An amortised goal-conditioned policy on a frozen world model (issue 14).

pi(z_t, z_goal) -> the next action blocks, trained on offline data with hindsight
goals (``lewm policy train``), used by ``lewm eval --policy DIR`` in place of the
planner's search (or, with ``--policy-init``, as CEM's initial mean). Layout:
``network.py`` (the MLP), ``samples.py`` (anchors and hindsight pairs), ``fit.py``
(regression), ``folder.py`` (on disk, world-model fingerprint), ``train.py`` (the
command), ``proposer.py`` (the planner hook). See ``docs/planning.md``.
"""

from lewm.policy.fit import PolicyTrainConfig, fit
from lewm.policy.folder import PolicyError, load_policy, read_meta, save_policy
from lewm.policy.network import GoalPolicy, PolicyNetConfig
from lewm.policy.proposer import PolicyProposer
from lewm.policy.train import train_policy

__all__ = [
    "GoalPolicy",
    "PolicyError",
    "PolicyNetConfig",
    "PolicyProposer",
    "PolicyTrainConfig",
    "fit",
    "load_policy",
    "read_meta",
    "save_policy",
    "train_policy",
]
