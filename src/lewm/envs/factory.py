"""The one way the project builds an environment: collection, evaluation and the CLI all call here.

Environments are built from their class directly (no Gymnasium wrappers), in
``render_mode="rgb_array"`` at the requested square ``image_size``. Keyword
arguments are merged in this order, later ones winning:

1. ``recorded_kwargs``: the ``env_kwargs`` recorded in a dataset's collection
   metadata, filtered to :data:`APPEARANCE_KEYS` that the class accepts, so an
   evaluation renders frames that look like the dataset's;
2. ``profile``, when given and the class takes a ``profile`` keyword (Reacher's
   angle wrapping, spec §12 P10);
3. ``env_kwargs``: explicit keywords, passed unfiltered.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from lewm.errors import ConfigError

# Constructor keywords that change what frames look like: inherited from the
# collection metadata of an evaluation file, so renders match the dataset frames.
APPEARANCE_KEYS = (
    "fast_render",
    "shadow_size",
    "mesh_detail",
    "render_size",
    "show_target",
    "render_target",
    "agent_color",
)


def load_object(path: str) -> Any:
    """Import ``"package.module:Name"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def load_env_class(entry_point: str, extra: str | None = None, label: str | None = None) -> type:
    """The class at ``entry_point``; an ImportError becomes a ConfigError naming the pip extra."""
    try:
        return load_object(entry_point)
    except ImportError as exc:
        hint = f" (pip install 'lewm[{extra}]')" if extra else ""
        name = label or entry_point
        raise ConfigError(f"environment {name!r} cannot be imported: {exc}{hint}") from exc


def env_kwargs_for(
    cls: type,
    *,
    profile: str | None = None,
    recorded_kwargs: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The constructor keywords :func:`make_env` passes to ``cls`` (merge order in the module doc)."""
    params = inspect.signature(cls.__init__).parameters
    recorded = dict(recorded_kwargs or {})
    kwargs = {k: v for k, v in recorded.items() if k in APPEARANCE_KEYS and k in params}
    if profile is not None and "profile" in params:
        kwargs["profile"] = profile
    kwargs.update(dict(env_kwargs or {}))
    return kwargs


def build_env(
    entry_point: str,
    image_size: int,
    *,
    extra: str | None = None,
    label: str | None = None,
    profile: str | None = None,
    recorded_kwargs: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """:func:`make_env` from an import path rather than a registry name (used by worker processes).

    Returns:
        (env, the keyword arguments used besides ``render_mode`` and ``image_size``).
    """
    cls = load_env_class(entry_point, extra, label)
    kwargs = env_kwargs_for(
        cls, profile=profile, recorded_kwargs=recorded_kwargs, env_kwargs=env_kwargs
    )
    try:
        env = cls(render_mode="rgb_array", image_size=int(image_size), **kwargs)
    except TypeError as exc:
        name = label or entry_point
        raise ConfigError(f"environment {name!r} rejects keywords {kwargs}: {exc}") from exc
    return env, kwargs


def make_env(
    name: str,
    image_size: int,
    *,
    profile: str | None = None,
    recorded_kwargs: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Build ``lewm.envs.ENVS[name]``'s class at ``image_size`` (square frames).

    Args:
        name: a key of ``ENVS`` (``tworoom``, ``pusht``, ``reacher``, ``cube``).
        image_size: side of the rendered frames (pixels).
        profile: evaluation profile (``clean``/``reference``), passed only to classes
            that take a ``profile`` keyword; ``None`` passes nothing.
        recorded_kwargs: ``env_kwargs`` recorded in a dataset's metadata; only the
            :data:`APPEARANCE_KEYS` the class accepts are used.
        env_kwargs: explicit constructor keywords (win over the two above). The
            registry's ``collect_kwargs`` are not added here; collection adds them.

    Returns:
        (env, the keyword arguments used besides ``render_mode`` and ``image_size``).

    Raises:
        ConfigError: unknown name, the environment's pip extra is missing, or the
            class rejects a keyword.
    """
    from lewm.envs import ENVS

    if name not in ENVS:
        raise ConfigError(f"unknown environment {name!r}; choose one of {sorted(ENVS)}")
    spec = ENVS[name]
    return build_env(
        spec.entry_point,
        image_size,
        extra=spec.extra,
        label=name,
        profile=profile,
        recorded_kwargs=recorded_kwargs,
        env_kwargs=env_kwargs,
    )
