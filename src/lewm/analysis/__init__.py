"""Analysis of a trained world model's latent space (spec §9).

- :mod:`~lewm.analysis.straightness`: temporal straightness of latent trajectories (§9.3);
- :mod:`~lewm.analysis.probe`: linear and MLP probes of physical quantities (§9.1);
- :mod:`~lewm.analysis.surprise`: violation-of-expectation surprise (§9.2);
- :mod:`~lewm.analysis.decoder`: a diagnostic pixel decoder on frozen embeddings (§9.4);
- :mod:`~lewm.analysis.sweep`: one run per value of a hyper-parameter, evaluated (§11.3).

Submodules are imported on use, so ``import lewm.analysis.straightness`` stays light.
"""
