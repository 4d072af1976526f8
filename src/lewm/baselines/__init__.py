"""The paper's baselines, behind the same planning interface as LeWM (spec §10).

- :mod:`~lewm.baselines.pldm`: PLDM's inverse-dynamics head (its model is LeWM's; its loss is
  :mod:`lewm.losses_pldm`);
- :mod:`~lewm.baselines.dinowm`: DINO-WM, a frozen DINOv2 encoder whose patch tokens are the
  latent and a causal predictor over them (needs ``pip install 'lewm[dinowm]'``).

Both train through ``lewm train --objective pldm|dinowm`` (docs/baselines.md).
"""
