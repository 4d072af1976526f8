"""What the demo prints and plots: the training curve, the result table, peak memory."""

from __future__ import annotations

import json
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children (collection workers), MB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def plot_training_curve(metrics: Path, png: Path, sigreg_t_max: float = 3.0) -> None:
    """Prediction loss, SIGReg and validation loss against the step (PNG).

    The dashed SIGReg line is its expectation under exact Gaussian embeddings
    (:func:`lewm.losses.sigreg_null_expectation`), the floor training approaches.
    """
    import matplotlib

    from lewm.losses import sigreg_null_expectation

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in metrics.read_text().splitlines() if line]
    rows = [r for r in records if "pred_loss" in r]  # training records (some are validation-only)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    steps = [r["step"] for r in rows]
    axes[0].plot(steps, [r["pred_loss"] for r in rows], label="train")
    val = [r for r in records if "val_pred_loss" in r]
    axes[0].plot(
        [r["step"] for r in val], [r["val_pred_loss"] for r in val], "o-", label="validation"
    )
    axes[0].set_title("prediction loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    axes[1].plot(steps, [r["sigreg_loss"] for r in rows], label="train")
    axes[1].plot(
        [r["step"] for r in val], [r["val_sigreg_loss"] for r in val], "o-", label="validation"
    )
    floor = sigreg_null_expectation(sigreg_t_max)
    axes[1].axhline(floor, color="grey", ls="--", lw=1, label=f"Gaussian floor {floor:.3f}")
    axes[1].set_title("SIGReg")
    axes[1].set_yscale("log")
    axes[1].legend()
    axes[2].plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-")
    axes[2].set_title("validation loss (held-out episodes)")
    for ax in axes:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def print_table(results: dict) -> None:
    d = results["demo"]
    rows = [
        (
            f"success rate (held-out, {d['config']['pairs']} pairs x {len(d['config']['seeds'])} seeds)",
            _mean_std(results["success_rate"], results["success_rate_std"]),
        ),
        ("  excluding starts already solved", _pct(results["success_rate_excluding_solved"])),
        ("random-policy floor", f"{results['random_success_rate']:.1f} %"),
        ("starts already solved at step 0", f"{100 * results['already_solved_fraction']:.1f} %"),
        (
            "planning time per environment-solve (batched, amortised)",
            f"{results['plan_seconds_mean']:.2f} s",
        ),
        ("training time", f"{d['train_seconds'] / 60:.1f} min ({d['train_steps']} steps)"),
        ("total demo time", f"{d['total_seconds'] / 60:.1f} min"),
        ("peak memory (largest single process)", f"{d['peak_rss_mb'] / 1024:.1f} GB"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def _mean_std(mean: float, std: float | None) -> str:
    """``mean ± std %`` with the sample std over seeds; one seed has no spread to show."""
    if std is None:
        return f"{mean:.1f} % (one seed: no spread)"
    return f"{mean:.1f} ± {std:.1f} % (± sample std over seeds)"


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1f} %"
