"""Attributes that read through to another object (``call.queue`` is ``call.context.queue``):
one descriptor, declared in a line, instead of a property each."""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Generic, NoReturn, Self, TypeVar, overload

T = TypeVar("T")


class Forward(Generic[T]):
    """A read-only attribute whose value is the dotted ``path`` read from its object:
    ``queue = Forward[str]("context.queue")``. Setting it raises ``AttributeError``, as a
    property without a setter does."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._read = attrgetter(path)
        self._name = path

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(self, obj: object, owner: type[Any] | None = None) -> T: ...

    def __get__(self, obj: object, owner: type[Any] | None = None) -> T | Self:
        if obj is None:
            return self
        value: T = self._read(obj)
        return value

    def __set__(self, obj: object, value: NoReturn) -> None:
        raise AttributeError(
            f"attribute {self._name!r} of {type(obj).__name__!r} object has no setter"
        )


class WritableForward(Forward[T]):
    """A :class:`Forward` that also sets ``path``:
    ``result_ttl = WritableForward[float]("broker.retention.result_ttl")``."""

    def __set__(self, obj: object, value: T) -> None:
        holder, _, name = self.path.rpartition(".")
        setattr(attrgetter(holder)(obj) if holder else obj, name, value)
