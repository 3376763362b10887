"""Hyperparameter and architecture search on Optuna (``fathom tune``, ``fathom nas``).

``space`` parses the search space, ``choices`` names Optuna's samplers, pruners and storages,
``trial`` runs one trial as a Fathom run, ``worker`` runs trials against a shared study,
``study`` keeps the study folder, ``runs`` the trials' folders, ``report`` the HTML report, and
``nas`` the architecture families, budgets and the regularised-evolution strategy.
"""

from fathom.tuning.space import SearchSpace, parse_space, read_space

__all__ = ["SearchSpace", "parse_space", "read_space"]
