"""Custom contact attributes: extra CRM fields declared once, in the dbt var
``custom_attributes`` of ``dbt_project.yml``, that become segment traits.

The same declaration is read by dbt (macro ``custom_attributes``: the staging model types
each value by it, ``marts.customer_attributes`` pivots one column per attribute), by the
segment compiler (an attribute is a trait like a ``customer_profile`` column) and by
``segwise load`` (a contacts file's columns mapped to attributes are unpivoted into
``raw.crm_contact_attributes``)::

    vars:
      custom_attributes:
        age_band: {type: text, description: "Age band the customer gave."}
        loyalty_points: {type: number}
        is_wholesale: boolean            # shorthand: just the type
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from segwise.errors import ConfigurationError
from segwise.settings import project_vars

# the declared type -> the trait kind the segment parser checks values against
TYPES = {"text": "string", "number": "numeric", "boolean": "boolean"}
NAME_RE = re.compile(r"\A[a-z][a-z0-9_]{0,62}\Z")


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # text | number | boolean
    description: str = ""

    @property
    def kind(self) -> str:
        return TYPES[self.type]


class AttributeDeclarationError(ConfigurationError):
    """``custom_attributes`` in dbt_project.yml is wrong (the message names the entry)."""


def declared_attributes(project_dir: Path) -> dict[str, Attribute]:
    """The attributes declared in ``project_dir/dbt_project.yml`` (in declaration order),
    checked like the dbt macro checks them."""
    path = project_dir / "dbt_project.yml"
    declared = project_vars(project_dir).get("custom_attributes") or {}
    where = f"{path}: vars.custom_attributes"
    if not isinstance(declared, dict):
        raise AttributeDeclarationError(f"{where}: must map attribute names to types")
    out: dict[str, Attribute] = {}
    for name, spec in declared.items():
        spec = {"type": spec} if isinstance(spec, str) else spec
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise AttributeDeclarationError(f"{where}: {name!r}: a name is a lower-case "
                                            "identifier (letters, digits, _)")
        if not isinstance(spec, dict) or spec.get("type") not in TYPES:
            raise AttributeDeclarationError(f"{where}.{name}: type must be one of "
                                            f"{sorted(TYPES)}, got {spec!r}")
        unknown = sorted(set(spec) - {"type", "description"})
        if unknown:
            raise AttributeDeclarationError(f"{where}.{name}: unknown key(s) {unknown}")
        out[name] = Attribute(name, spec["type"], str(spec.get("description") or ""))
    return out


__all__ = ["TYPES", "Attribute", "AttributeDeclarationError", "declared_attributes"]
