"""The model contract for transfer learning: ``features``, ``head``, ``reset_head`` and groups.

``ClassifierModel`` implements the contract once, for any model that splits into a feature
extractor and a head (timm's ``reset_classifier`` plus fastai's splitter). Models stay plain
``nn.Module``s: ``parameter_groups(model)`` also accepts a user module without the contract.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from fathom.errors import ConfigError


class ClassifierModel(nn.Module):
    """``forward(x) = head(features(x))``; ``features`` maps inputs to a pooled feature vector.

    Parameter groups, from early to late layers, are the direct children of ``features`` that
    hold parameters (stem, stages, ...), then ``head``; parameters outside both come last.
    """

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs))

    @property
    def num_classes(self) -> int:
        """Output size of the final linear layer."""
        return self._final_linear()[1].out_features

    def reset_head(self, num_classes: int) -> None:
        """Replace the final linear layer with a freshly initialised one of ``num_classes`` outputs."""
        if num_classes < 1:
            raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
        name, old = self._final_linear()
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        new = new.to(device=old.weight.device, dtype=old.weight.dtype)
        if name == "":
            self.head = new
        else:
            parent_name, _, child_name = name.rpartition(".")
            setattr(self.head.get_submodule(parent_name), child_name, new)

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """Parameters from early to late layers, each exactly once (feature stages, then head)."""
        if isinstance(self.features, nn.Sequential):
            modules = [*self.features.children(), self.head]
        else:
            modules = [self.features, self.head]
        seen: set[int] = set()
        groups = [_unseen(module.parameters(), seen) for module in modules]
        groups = [group for group in groups if group]
        leftover = _unseen(self.parameters(), seen)
        if leftover:
            groups.append(leftover)
        return groups

    def _final_linear(self) -> tuple[str, nn.Linear]:
        linears = [(n, m) for n, m in self.head.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise TypeError(f"{type(self).__name__}.head has no nn.Linear layer to reset")
        return linears[-1]


def parameter_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """``model.parameter_groups()`` if the model has the contract, else one group of everything."""
    method = getattr(model, "parameter_groups", None)
    if callable(method):
        return method()
    return [list(model.parameters())]


def _unseen(parameters: Iterable[nn.Parameter], seen: set[int]) -> list[nn.Parameter]:
    """The parameters not yet in ``seen`` (shared or tied ones count once), marking them seen."""
    group = []
    for parameter in parameters:
        if id(parameter) not in seen:
            seen.add(id(parameter))
            group.append(parameter)
    return group
