"""One lazy registry for models, datasets, tasks and recipes.

Entries are registered as ``"module.path:attribute"`` strings, so a model's module is imported only
when that model is asked for (timm's ``create_model`` without the import cost).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fathom.errors import ConfigError, closest


class Registry:
    """A name → factory mapping whose factories are imported on first use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
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

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def names(self, kind: str | None = None) -> list[str]:
        """Registered names, sorted; only those of ``kind`` when it is given."""
        return sorted(name for name in self._targets if kind is None or self._kinds[name] == kind)

    def describe(self, name: str) -> str:
        return self._descriptions.get(name, "")

    def kind_of(self, name: str) -> str:
        self.check(name)
        return self._kinds[name]

    def defaults(self, name: str) -> dict[str, Any]:
        self.check(name)
        return dict(self._defaults[name])

    def check(self, name: str) -> None:
        """Raise a one-line ConfigError naming the closest valid name if ``name`` is unknown."""
        if name not in self._targets:
            raise ConfigError(
                f"unknown {self.kind} '{name}'{closest(name, self._targets)}; "
                f"run 'fathom list {self.kind}s' to see all"
            )

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


MODELS = Registry("model")
DATASETS = Registry("dataset")
TASKS = Registry("task")
RECIPES = Registry("recipe")
