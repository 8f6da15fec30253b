"""Base class shared by every cellsight parameter set."""

from pydantic import BaseModel, ConfigDict


class StrictConfig(BaseModel):
    """A parameter set: unknown keys are rejected and assignments are validated.

    Every field carries ``title`` and ``description``; the dock widgets use them as
    labels and tooltips and the CLI uses them as ``--help`` text.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def field_help(cls, name: str) -> tuple[str, str]:
        """Return ``(title, description)`` of field ``name`` for labels and tooltips."""
        info = cls.model_fields[name]
        title = info.title or name.replace("_", " ").capitalize()
        return title, info.description or ""
