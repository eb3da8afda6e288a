import pytest

from eebench.registry import Registry


def test_register_get_and_names():
    registry = Registry("widget")
    registry.register("b", 2)

    @registry.register("a")
    def a():
        return 1

    assert registry.get("a") is a
    assert registry.get("b") == 2
    assert registry.names() == ["a", "b"]
    assert "a" in registry and "c" not in registry


def test_duplicate_is_refused():
    registry = Registry("widget")
    registry.register("a", 1)
    with pytest.raises(KeyError, match="widget 'a' is already registered"):
        registry.register("a", 2)


def test_unknown_name_lists_valid_names():
    registry = Registry("widget")
    registry.register("alpha", 1)
    registry.register("beta", 2)
    with pytest.raises(KeyError, match=r"unknown widget 'gamma'; registered widgets: alpha, beta"):
        registry.get("gamma")
