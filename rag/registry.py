"""A tiny name → factory registry; an unknown name fails listing the allowed ones.

Components register themselves with a decorator in their own module::

    @ENGINES.register("mine", reads={"llm_model"})
    def make(settings): ...

A registry made with ``package=`` imports every module of that package the
first time it is asked for a name (:meth:`Registry.load`): that is the one way
components get registered, so a new one is one new file and nothing else is
edited. Those modules must be cheap to import (heavy imports go inside the
factory). ``reads`` declares the settings a factory reads: the settings that
change what it builds (cache keys of loaded models derive from it, and a test
checks each factory reads exactly what it declares).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Callable, Generic, Iterable, TypeVar

from rag.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps component names to factories (registered with the ``register`` decorator)."""

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._factories: dict[str, Callable[..., T]] = {}
        self._reads: dict[str, frozenset[str]] = {}
        self._loaded = package is None
        self._loading = False
        self._lock = threading.RLock()

    def register(self, name: str, reads: Iterable[str] = ()) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register a factory under ``name``; ``reads`` names the settings it reads."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            self._reads[name] = frozenset(reads)
            return factory

        return deco

    def load(self) -> None:
        """Import every module of the registry's package once, so each registers its components."""
        if self._loaded:
            return
        with self._lock:  # other threads wait; a module that asks for names while loading sees those so far
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                package = importlib.import_module(self.package)
                for info in pkgutil.iter_modules(package.__path__):
                    importlib.import_module(f"{self.package}.{info.name}")
                self._loaded = True
            finally:
                self._loading = False

    def names(self) -> tuple[str, ...]:
        self.load()
        return tuple(sorted(self._factories))

    def get(self, name: str) -> Callable[..., T]:
        self.load()
        try:
            return self._factories[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def reads(self, name: str) -> frozenset[str]:
        """The settings the factory of ``name`` reads (as it declared when it registered)."""
        self.get(name)
        return self._reads[name]

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        return self.get(name)(*args, **kwargs)
