import pytest

import fathom
from fathom.errors import ConfigError
from fathom.registry import Registry


def test_lazy_registration_and_suggestions():
    registry = Registry("thing")
    registry.register("joiner", "os.path:join")
    assert registry.get("joiner")("a", "b") == "a/b"
    with pytest.raises(ConfigError, match="did you mean 'joiner'"):
        registry.get("joiners")


def test_decorator_registration_and_unknown_options():
    registry = Registry("thing")

    @registry.register("scale", factor=2)
    def scale(value: int, factor: int = 1) -> int:
        return value * factor

    assert registry.create("scale", value=3) == 6
    with pytest.raises(ConfigError, match="has no option 'factr' \\(did you mean 'factor'\\?\\)"):
        registry.create("scale", value=3, factr=2)


def test_public_lists():
    assert {"mlp", "cnn", "resnet8", "resnet20", "resnet56", "resnet18"} <= set(
        fathom.models.list()
    )
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "csv"} <= set(
        fathom.data.list()
    )
    with pytest.raises(ConfigError, match="did you mean 'resnet8'"):
        fathom.models.create("resnet9")
