"""A small named registry: one per extension point (regimes, criteria, backbones, datasets, tables, figures).

The registered name is the single string used in config.yaml, in Snakemake wildcards, in result paths and in
the paper's labels; there are no aliases.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, declared: Callable[[T], Callable] | None = None,
                 providers: tuple[str, ...] = ()) -> None:
        """``declared(entry)`` is the callable whose keyword-only parameters an entry's config takes (eebench.declare):
        the entry itself unless given (a dataset's ``prepare``). ``providers`` name the modules that register
        entries beside the registry's own: they are imported at the first lookup, so no module imports another
        only to have it register (and no import cycle arises from registering)."""
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._declared = declared
        self._providers = providers

    def _load_providers(self) -> None:
        providers, self._providers = self._providers, ()
        try:
            for module in providers:
                importlib.import_module(module)
        except BaseException:
            self._providers = providers
            raise

    def register(self, name: str, entry: T | None = None) -> Callable[[T], T] | T:
        """Register ``entry`` under ``name``; used bare (``register(name, obj)``) or as a decorator."""
        if entry is not None:
            self._add(name, entry)
            return entry

        def decorator(obj: T) -> T:
            self._add(name, obj)
            return obj

        return decorator

    def _add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        self._load_providers()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s: {', '.join(self.names())}"
            ) from None

    def declared(self, name: str) -> Callable:
        """The callable that declares entry ``name``'s config parameters."""
        entry = self.get(name)
        return self._declared(entry) if self._declared is not None else entry

    def parameters_schema(self, name: str, extra: dict | None = None) -> dict:
        """The JSON schema of entry ``name``'s parameters, generated from their declaration (eebench.declare),
        described by the entry's docstring; ``extra`` adds properties (the key that selects the entry)."""
        from eebench.declare import entry_description, parameters_schema

        return parameters_schema(self.declared(name), description=entry_description(self.get(name)), extra=extra)

    def names(self) -> list[str]:
        self._load_providers()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_providers()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load_providers()
        return len(self._entries)
