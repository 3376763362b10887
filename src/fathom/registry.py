"""One lazy registry mechanism for every name a user can type.

Models, datasets, tasks, recipes, optimizers, schedules, augmentations, initialisations, model
transforms and commands are each a ``Registry``. Entries are registered as ``"module:attribute"``
strings, so a model's module is imported only when that model is asked for (timm's
``create_model`` without the import cost). Each registry names the module whose import registers
its entries (``source``): asking a registry for its names imports that module first, so lookups
work from anywhere without import-order tricks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fathom.errors import ConfigError, closest


class Registry:
    """A name → factory mapping whose factories are imported on first use."""

    def __init__(self, kind: str, plural: str = "", source: str = "") -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.source = source
        self._targets: dict[str, str | Callable[..., Any]] = {}
        self._defaults: dict[str, dict[str, Any]] = {}
        self._descriptions: dict[str, str] = {}
        self._kinds: dict[str, str] = {}

    def register(
        self,
        name: str,
        target: str | Callable[..., Any] | None = None,
        *,
        description: str = "",
        kind: str = "",
        **defaults: Any,
    ) -> Any:
        """Register ``target`` (a callable or ``"module:attr"``) under ``name``.

        Without a target, returns a decorator, so user code can write ``@registry.register("mine")``.
        ``kind`` groups entries (models: vision, generative, sequence, language, ...).
        ``defaults`` are keyword arguments passed to the factory unless the caller overrides them.
        """
        if target is None:

            def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
                self.register(name, function, description=description, kind=kind, **defaults)
                return function

            return decorator
        self._targets[name] = target
        self._defaults[name] = defaults
        self._descriptions[name] = description
        self._kinds[name] = kind
        return target

    def _load(self) -> None:
        """Import the module that registers this registry's entries (once; Python caches it)."""
        if self.source:
            importlib.import_module(self.source)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._targets

    def names(self, kind: str | None = None, *, sort: bool = True) -> list[str]:
        """Registered names, sorted (else in registration order); only ``kind``'s if given."""
        self._load()
        chosen = [name for name in self._targets if kind is None or self._kinds[name] == kind]
        return sorted(chosen) if sort else chosen

    def describe(self, name: str) -> str:
        self._load()
        return self._descriptions.get(name, "")

    def kind_of(self, name: str) -> str:
        self.check(name)
        return self._kinds[name]

    def defaults(self, name: str) -> dict[str, Any]:
        self.check(name)
        return dict(self._defaults[name])

    def check(self, name: str) -> None:
        """Raise a one-line ConfigError naming the closest valid name if ``name`` is unknown."""
        self._load()
        if name not in self._targets:
            raise ConfigError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        hint = closest(name, self._targets)
        if not hint and len(self._targets) <= 12:
            hint = f" (choose from {', '.join(sorted(self._targets))})"
        return f"unknown {self.kind} '{name}'{hint}; run 'fathom list {self.plural}' to see all"

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered under ``name``, importing its module if needed."""
        self.check(name)
        target = self._targets[name]
        if isinstance(target, str):
            module_name, _, attribute = target.partition(":")
            target = getattr(importlib.import_module(module_name), attribute)
            self._targets[name] = target
        return target

    def create(self, name: str, **kwargs: Any) -> Any:
        """Call the factory for ``name`` with its defaults updated by ``kwargs``."""
        factory = self.get(name)
        from fathom.config import call_with_checked_kwargs

        return call_with_checked_kwargs(factory, {**self.defaults(name), **kwargs}, where=name)


MODELS = Registry("model", source="fathom.models")
DATASETS = Registry("dataset", source="fathom.data")
TASKS = Registry("task", source="fathom.tasks")
RECIPES = Registry("recipe", source="fathom.recipes")
OPTIMIZERS = Registry("optimizer", source="fathom.engine.optim")
SCHEDULES = Registry("schedule", source="fathom.engine.optim")
AUGMENTATIONS = Registry("augmentation", source="fathom.data.augment")
INITIALIZATIONS = Registry("initialization", source="fathom.models.init")
TRANSFORMS = Registry("transform", source="fathom.runs.lineage")
COMMANDS = Registry("command", source="fathom.cli.commands")

REGISTRIES = {
    registry.plural: registry
    for registry in (
        MODELS, DATASETS, TASKS, RECIPES, OPTIMIZERS, SCHEDULES, AUGMENTATIONS,
        INITIALIZATIONS, TRANSFORMS, COMMANDS,
    )
}  # fmt: skip
"""Every registry by the plural name ``fathom list`` takes."""
