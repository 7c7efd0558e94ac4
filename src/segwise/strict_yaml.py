"""A YAML loader for files users write (segment definitions): safe, and strict.

PyYAML's ``safe_load`` builds no Python objects, but it still (a) keeps the last of two
equal keys without a word — a typo'd copy silently wins — and (b) expands aliases, so a
few hundred bytes of nested ``&a [*b, *b, …]`` grow into billions of nodes (the "billion
laughs" bomb). This loader refuses both, with the line of the offending node.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError


class StrictYAMLError(ValueError):
    pass


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise StrictYAMLError(f"line {event.start_mark.line + 1}: aliases (*{event.anchor}) "
                                  "are not allowed in segment definitions")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: PyYAML reports it itself
                    continue
                if duplicate:
                    raise StrictYAMLError(f"line {key_node.start_mark.line + 1}: duplicate "
                                          f"key {key!r}")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """Parse one YAML document; duplicate keys and aliases raise ``StrictYAMLError``,
    malformed YAML raises ``yaml.YAMLError``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except ConstructorError as exc:
        raise yaml.YAMLError(str(exc)) from None
