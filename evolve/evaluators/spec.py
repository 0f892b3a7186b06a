"""Output specs: what a problem's outputs must look like before any scoring code sees them.

A spec is declared in problem.yaml, for example::

    outputs:
      h: {dtype: float, shape: [null], max_elements: 100000}
      centers: {dtype: float, shape: [null, 2]}

`dtype` is a kind (float, int, bool); `shape` lists each dimension's fixed size or null for
"any"; `max_elements` caps the total size. Floats must be finite. Sizes are always read from
the arrays themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_MAX_ELEMENTS = 1_000_000
_KINDS = {"float": "f", "int": "iu", "bool": "b"}


class OutputError(ValueError):
    """Outputs that do not match the problem's output spec."""


@dataclass(frozen=True)
class ArraySpec:
    """One named output."""

    name: str
    dtype: str = "float"
    shape: tuple[int | None, ...] = (None,)
    max_elements: int = DEFAULT_MAX_ELEMENTS
    min_elements: int = 1
    optional: bool = False  # the program may leave this output out

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any] | None) -> ArraySpec:
        """One output's spec as problem.yaml declares it (checked by its schema)."""
        from evolve.schemas import validate
        from evolve.schemas.problem import ArraySchema

        return cls.from_schema(name, validate(ArraySchema, d, f"output {name!r}"))

    @classmethod
    def from_schema(cls, name: str, s: Any) -> ArraySpec:
        """From a checked `evolve.schemas.problem.ArraySchema`."""
        return cls(name, s.dtype.value, tuple(s.shape), s.max_elements, s.min_elements, s.optional)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "max_elements": self.max_elements,
            "min_elements": self.min_elements,
            "optional": self.optional,
        }

    def check(self, value: Any) -> np.ndarray:
        """Return `value` as a clean array of this spec, or raise OutputError saying what is wrong."""
        if isinstance(value, np.ndarray):
            arr = value
        else:
            try:
                arr = np.asarray(value)
            except Exception as exc:  # ragged lists and the like
                raise OutputError(f"output {self.name!r} is not an array: {exc}") from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise OutputError(
                f"output {self.name!r} has dtype {arr.dtype}; expected numbers ({self.dtype})"
            )
        if arr.dtype.kind not in _KINDS[self.dtype]:
            if self.dtype == "float" and arr.dtype.kind in "iu":
                arr = arr.astype(np.float64)
            else:
                raise OutputError(
                    f"output {self.name!r} has dtype {arr.dtype}; expected {self.dtype}"
                )
        if arr.ndim != len(self.shape):
            raise OutputError(
                f"output {self.name!r} has {arr.ndim} dimension(s), shape {arr.shape}; expected {len(self.shape)}"
            )
        for axis, (got, want) in enumerate(zip(arr.shape, self.shape, strict=True)):
            if want is not None and got != want:
                raise OutputError(
                    f"output {self.name!r} has size {got} on axis {axis}; expected {want}"
                )
        if arr.size > self.max_elements:
            raise OutputError(
                f"output {self.name!r} has {arr.size} elements; the limit is {self.max_elements}"
            )
        if arr.size < self.min_elements:
            raise OutputError(
                f"output {self.name!r} has {arr.size} elements; at least {self.min_elements} needed"
            )
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64, copy=False)
            if not np.all(np.isfinite(arr)):
                raise OutputError(f"output {self.name!r} contains NaN or infinite values")
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64, copy=False)
        return np.ascontiguousarray(arr)


@dataclass(frozen=True)
class OutputSpec:
    """All outputs of a problem, by name."""

    arrays: dict[str, ArraySpec] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputSpec:
        """The outputs as problem.yaml declares them (checked by its schema)."""
        from evolve.schemas import validate
        from evolve.schemas.problem import Outputs

        checked = validate(Outputs, d, "outputs")
        return cls({name: ArraySpec.from_schema(name, s) for name, s in checked.items()})

    def to_dict(self) -> dict[str, Any]:
        return {name: spec.to_dict() for name, spec in self.arrays.items()}

    def check(self, outputs: Any) -> dict[str, np.ndarray]:
        """Validate a mapping of outputs; extra names are an error (nothing is silently dropped),
        and so is a missing one unless its spec is optional."""
        if not isinstance(outputs, dict):
            raise OutputError(
                f"outputs must be a dict of name -> array, got {type(outputs).__name__}"
            )
        missing = [n for n, spec in self.arrays.items() if n not in outputs and not spec.optional]
        if missing:
            raise OutputError(f"missing output(s) {missing}; expected {sorted(self.arrays)}")
        extra = [n for n in outputs if n not in self.arrays]
        if extra:
            raise OutputError(
                f"unexpected output(s) {sorted(map(str, extra))}; expected only {sorted(self.arrays)}"
            )
        return {
            name: spec.check(outputs[name]) for name, spec in self.arrays.items() if name in outputs
        }
