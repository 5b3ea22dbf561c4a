"""Named, registered rules and conditions; importing the package registers the built-ins."""

from domain.rules import builtin, conditions

__all__ = ["builtin", "conditions"]
