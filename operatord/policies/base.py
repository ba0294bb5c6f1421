"""Base model for every policy section: unknown fields are errors, values are frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        use_enum_values=False,
        validate_default=True,
    )


class CrossFieldError(ValueError):
    """A rule between fields failed; `field` names the field the user should change.

    The loader appends `field` to the error location so `policy check` points at the right line.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
