"""Segment definitions: YAML → validated condition trees.

Everything a definition can name is checked here, before any SQL exists: trait names and
value types against the ``customer_profile`` contract, event types and properties
against the event vocabulary, windows, message and sequence parameters, segment
references (cycles included). Every error names the file, the segment and the path
inside the definition, e.g.::

    segments/engagement.yml: segment 'hot_buyers' at rule.all[1].trait: unknown trait
    'orderz' (known: country, email_clicks_30d, …)
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from segwise import strict_yaml
from segwise.settings import project_root

# \A…\Z, not ^…$: "$" also matches before a trailing newline ("tnl\n")
NAME_RE = re.compile(r"\A[a-z][a-z0-9_]{0,62}\Z")
TAG_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
SALT_RE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
VARIANT_RE = re.compile(r"\A[a-z][a-z0-9_]{0,29}\Z")
MAX_VARIANTS = 10
# the variant the others are compared against, when a segment declares it (else the first)
CONTROL_VARIANT = "control"
FILE_LABEL_RE = re.compile(r"\A[\w./ :\\-]+\Z")
JINJA_DELIMITERS = ("{{", "}}", "{%", "%}", "{#", "#}")
INT64 = (-(2**63), 2**63 - 1)
# dates a rule may name: real calendar dates (strptime checks the day of the month)
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
DATE_RANGE = (datetime(1900, 1, 1), datetime(2999, 12, 31, 23, 59, 59))
TOP_LEVEL_KEYS = {"segments"}

WEB_EVENTS = ("page_view", "product_view", "add_to_cart", "remove_from_cart",
              "checkout_started", "purchase")
EMAIL_EVENTS = tuple(f"email_{e}" for e in ("sent", "delivered", "open", "click", "bounce",
                                             "unsubscribe", "complaint"))
EVENT_TYPES = (*WEB_EVENTS, "order", *EMAIL_EVENTS)
EVENT_PROPERTIES = ("category", "product_id", "device", "campaign_id")
UNITS = {"minutes": "minute", "minute": "minute", "hours": "hour", "hour": "hour",
         "days": "day", "day": "day"}
UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
MAX_WINDOW_DAYS = 3650

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
TRAIT_OPS = (*COMPARISONS, "in", "not in", "between", "is null", "is not null", "contains")
NUMERIC_TYPES = ("bigint", "integer", "numeric", "double", "float", "decimal")
TEMPORAL_TYPES = ("timestamp", "date")

SEGMENT_KEYS = {"name", "description", "owner", "tags", "priority", "min_size", "holdout_pct",
                "holdout_salt", "variants", "destinations", "fields", "rule"}
MAX_FIELDS = 20  # personal fields a segment sends (each is a merge field / property)
DESTINATION_NAMES = ("file", "mailchimp", "klaviyo", "hubspot", "sendgrid", "webhook")
DESTINATION_KEYS = {"name", "mode", "max_removal_pct", "max_size_change_pct", "min_size",
                    "fields"}
SYNC_MODES = ("upsert", "mirror", "add_only")


class SegmentDefinitionError(ValueError):
    def __init__(self, file: str, segment: str | None, path: str, message: str) -> None:
        where = f"{file}: segment '{segment}'" if segment else file
        if path:
            where += f" at {path}"
        super().__init__(f"{where}: {message}")
        self.file, self.segment, self.path, self.detail = file, segment, path, message


# ---------------------------------------------------------------- condition tree
@dataclass(frozen=True)
class Window:
    kind: str  # "last" | "between"
    amount: int = 0
    unit: str = "day"
    from_days: int = 0
    to_days: int = 0

    def label(self) -> str:
        if self.kind == "last":
            short = {"minute": "m", "hour": "h", "day": "d"}[self.unit]
            return f"{self.amount}{short}"
        return f"{self.from_days}_{self.to_days}d_ago"


@dataclass(frozen=True, order=True)
class Ago:
    """A point relative to the as-of time: {days_ago: N} / {hours_ago: N}."""

    amount: int
    unit: str  # day | hour

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}s ago"


@dataclass(frozen=True)
class Trait:
    column: str
    op: str
    value: Any
    kind: str  # numeric | string | boolean | temporal
    relation: str = "profile"  # or "attributes": a custom contact attribute


@dataclass(frozen=True)
class PropertyFilter:
    prop: str
    op: str  # "=", "!=", "in", "not in"
    value: Any


@dataclass(frozen=True)
class Event:
    event_type: str
    did: bool
    op: str
    value: int
    window: Window | None
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class Message:
    action: str  # open | click
    op: str
    value: int
    of_last: int


@dataclass(frozen=True)
class Sequence:
    first: str
    then_not: tuple[str, ...]
    within: Window
    lookback: Window


@dataclass(frozen=True)
class InSegment:
    segment: str
    holdout: bool | None  # None: any member; False: only members outside the holdout


@dataclass(frozen=True)
class All:
    children: tuple


@dataclass(frozen=True)
class Any_:
    children: tuple


@dataclass(frozen=True)
class Not:
    child: object


Condition = Trait | Event | Message | Sequence | InSegment | All | Any_ | Not


@dataclass(frozen=True)
class DestinationSettings:
    """How one segment syncs to one destination: ``- {name: mailchimp, mode: mirror,
    max_removal_pct: 10}`` in the segment's ``destinations`` (a bare name takes defaults)."""

    name: str
    mode: str = "upsert"
    max_removal_pct: float | None = None  # None: the engine's default guard
    max_size_change_pct: float | None = None
    min_size: int | None = None  # a floor for this destination (e.g. an ad platform's
    # audience minimum, or k-anonymity); the larger of it and the segment's min_size holds
    fields: tuple[str, ...] | None = None  # None: the segment's own ``fields``


@dataclass
class Segment:
    name: str
    description: str
    owner: str
    tags: list[str]
    priority: int
    min_size: int
    holdout_pct: float
    holdout_salt: str
    destinations: list[str]
    rule: Condition
    file: str
    raw: dict = field(repr=False, default_factory=dict)
    destination_settings: dict[str, DestinationSettings] = field(default_factory=dict)
    # the traits sent with each member as merge fields / properties (personal fields)
    fields: tuple[str, ...] = ()
    # A/B/n: (variant, weight in percent), weights summing to 100; assigned by the
    # holdouts' hash of '<holdout_salt>:variant:<customer_id>' (macros/is_holdout.sql)
    variants: tuple[tuple[str, int], ...] = ()

    @property
    def control_variant(self) -> str | None:
        """The variant the others are measured against: 'control' if declared, else the
        first; None without variants."""
        names = [name for name, _ in self.variants]
        if not names:
            return None
        return CONTROL_VARIANT if CONTROL_VARIANT in names else names[0]

    def sync_settings(self, destination: str) -> DestinationSettings:
        return self.destination_settings.get(destination, DestinationSettings(destination))

    def fields_for(self, destination: str) -> tuple[str, ...]:
        """The personal fields sent to ``destination``: its own list, else the segment's."""
        if destination == "file":  # the export writes its own member columns
            return ()
        own = self.sync_settings(destination).fields
        return self.fields if own is None else own

    @property
    def rule_version(self) -> str:
        """Hash of the definition's meaning (rule, holdout), not of its YAML formatting."""
        payload = {k: self.raw.get(k) for k in ("rule", "holdout_pct", "holdout_salt")}
        payload["name"] = self.name
        if self.variants:  # absent: the same hash as before variants existed
            payload["variants"] = [list(v) for v in self.variants]
        blob = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def referenced_segments(self) -> set[str]:
        return set(_walk_refs(self.rule))


def _walk_refs(node: Condition):
    if isinstance(node, InSegment):
        yield node.segment
    elif isinstance(node, (All, Any_)):
        for c in node.children:
            yield from _walk_refs(c)
    elif isinstance(node, Not):
        yield from _walk_refs(node.child)


# ---------------------------------------------------------------- trait catalogue
# a name that reads like a model score gets told which scores exist
SCORE_WORDS = ("probab", "propens", "score", "clv", "cluster", "predict", "alive", "risk",
               "churn", "persona", "upsell", "ltv")


def score_traits() -> list[str]:
    """The traits the scoring step provides (the predictions contract's score columns)."""
    from segwise.predict.tables import score_columns

    return score_columns(project_root())


def _score_hint(name: str) -> str:
    """For a name that reads like a model score: which scores exist (a rule can only use a
    score a model writes; a new model's score becomes a trait when it lands in
    customer_profile)."""
    if not any(w in name.lower() for w in SCORE_WORDS):
        return ""
    return ": no model produces it — the scoring step provides " + ", ".join(score_traits())


def trait_kind(data_type: str) -> str:
    t = data_type.lower()
    if t.startswith(NUMERIC_TYPES):
        return "numeric"
    if t.startswith(TEMPORAL_TYPES):
        return "temporal"
    if t.startswith("bool"):
        return "boolean"
    return "string"


class Traits(dict):
    """Trait name → kind; ``attributes`` names the custom contact attributes among them
    (read from ``marts.customer_attributes``, not ``customer_profile``)."""

    attributes: frozenset[str] = frozenset()


def load_traits(project_dir: Path) -> Traits:
    """Trait name → kind: the customer_profile columns in the marts YAML, then the custom
    contact attributes declared in dbt_project.yml (a name may not be taken twice)."""
    from segwise.attributes import AttributeDeclarationError, declared_attributes

    doc = yaml.safe_load((project_dir / "models" / "marts" / "_marts__models.yml").read_text())
    for model in doc.get("models", []):
        if model["name"] == "customer_profile":
            traits = Traits({c["name"]: trait_kind(c["data_type"]) for c in model["columns"]
                             if c["name"] != "customer_id"})
            break
    else:
        raise RuntimeError("customer_profile is not declared in models/marts/_marts__models.yml")
    try:
        attributes = declared_attributes(project_dir)
    except AttributeDeclarationError as exc:
        raise SegmentDefinitionError("dbt_project.yml", None, "", str(exc)) from None
    taken = sorted(set(attributes) & (set(traits) | {"customer_id", "attributes_count"}))
    if taken:
        raise SegmentDefinitionError("dbt_project.yml", None, "vars.custom_attributes",
                                     f"custom attribute name(s) {taken} are already "
                                     "customer_profile traits: choose other names")
    traits.update({a.name: a.kind for a in attributes.values()})
    traits.attributes = frozenset(attributes)
    return traits


# ---------------------------------------------------------------- parsing
class _Parser:
    def __init__(self, file: str, segment: str, traits: dict[str, str]) -> None:
        self.file, self.segment, self.traits = file, segment, traits

    def fail(self, path: str, message: str) -> SegmentDefinitionError:
        return SegmentDefinitionError(self.file, self.segment, path, message)

    def keys(self, node: dict, path: str, allowed: set[str], required: set[str]) -> None:
        unknown = set(node) - allowed
        if unknown:
            raise self.fail(path, f"unknown key(s) {sorted(unknown)} (allowed: {sorted(allowed)})")
        missing = required - set(node)
        if missing:
            raise self.fail(path, f"missing key(s) {sorted(missing)}")

    def literal(self, value: Any, path: str) -> Any:
        """A value that becomes a SQL literal: text without control or invisible
        characters or template delimiters (the compiler escapes every other character
        that SQL or Jinja could read), 64-bit integers, finite numbers, booleans."""
        if isinstance(value, str):
            if any(d in value for d in JINJA_DELIMITERS):
                raise self.fail(path, f"value {value!r} contains template or control "
                                      "characters: not allowed in a literal")
            bad = _invisible(value)
            if bad:
                raise self.fail(path, f"value {value!r} contains template or control "
                                      f"characters ({bad}): not allowed in a literal")
            if len(value) > 200:
                raise self.fail(path, "string literal longer than 200 characters")
            return value
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            if not INT64[0] <= value <= INT64[1]:
                raise self.fail(path, "whole numbers must fit in a 64-bit integer "
                                      f"({INT64[0]} to {INT64[1]})")
            return value
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise self.fail(path, "numbers must be finite")
            return value
        if isinstance(value, (date, datetime)):  # an unquoted YAML date
            return value
        raise self.fail(path, f"value {value!r} must be a string, number or boolean")

    def text(self, value: Any, path: str, multiline: bool = False) -> str:
        """Free text kept in docs and comments (description, owner): no braces, so no
        template delimiter can form; no control characters but newlines if allowed."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"{path} must be a non-empty string")
        if "{" in value or "}" in value:
            raise self.fail(path, f"{path} may not contain {{ or }} (template syntax)")
        bad = _invisible(value.replace("\n", "") if multiline else value)
        if bad:
            raise self.fail(path, f"{path} contains control characters ({bad})")
        if len(value) > 2000:
            raise self.fail(path, f"{path} is longer than 2000 characters")
        return value

    def parse(self, node: Any, path: str) -> Condition:
        if not isinstance(node, dict) or not node:
            raise self.fail(path, "a condition must be a mapping such as {trait: …}, "
                                  "{event: …}, {all: [...]}")
        kinds = [k for k in ("all", "any", "not", "trait", "event", "message", "sequence",
                             "in_segment") if k in node]
        if len(kinds) != 1:
            raise self.fail(path, "a condition needs exactly one of all, any, not, trait, "
                                  f"event, message, sequence, in_segment (got {sorted(node)})")
        kind = kinds[0]
        return getattr(self, f"_{kind}")(node, f"{path}.{kind}" if path else kind)

    def _all(self, node: dict, path: str) -> Condition:
        return All(self._children(node, "all", path))

    def _any(self, node: dict, path: str) -> Condition:
        return Any_(self._children(node, "any", path))

    def _children(self, node: dict, key: str, path: str) -> tuple:
        self.keys(node, path, {key}, {key})
        items = node[key]
        if not isinstance(items, list) or not items:
            raise self.fail(path, f"'{key}' needs a non-empty list of conditions")
        return tuple(self.parse(c, f"{path}[{i}]") for i, c in enumerate(items))

    def _not(self, node: dict, path: str) -> Condition:
        self.keys(node, path, {"not"}, {"not"})
        return Not(self.parse(node["not"], path))

    def _trait(self, node: dict, path: str) -> Condition:
        self.keys(node, path, {"trait", "op", "value"}, {"trait", "op"})
        column = node["trait"]
        if column not in self.traits:
            raise self.fail(path, f"unknown trait {column!r}{_score_hint(column)} (known: "
                                  f"{', '.join(sorted(self.traits))})")
        kind = self.traits[column]
        op = str(node["op"]).strip().lower()
        if op not in TRAIT_OPS:
            raise self.fail(path + ".op", f"unknown operator {node['op']!r} (use one of "
                                          f"{', '.join(TRAIT_OPS)})")
        if op in ("is null", "is not null"):
            if "value" in node:
                raise self.fail(path, f"'{op}' takes no value")
            return Trait(column, op, None, kind, self.relation_of(column))
        if "value" not in node:
            raise self.fail(path, f"'{op}' needs a value")
        value = node["value"]
        vpath = path + ".value"
        if op in ("in", "not in"):
            if not isinstance(value, list) or not value:
                raise self.fail(vpath, f"'{op}' needs a non-empty list")
            value = tuple(self.typed(v, kind, f"{vpath}[{i}]", column) for i, v in
                          enumerate(value))
        elif op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise self.fail(vpath, "'between' needs [low, high]")
            if kind not in ("numeric", "temporal"):
                raise self.fail(path, f"'between' needs a numeric or date trait; {column} is "
                                      f"{kind}")
            value = tuple(self.typed(v, kind, f"{vpath}[{i}]", column) for i, v in
                          enumerate(value))
            if type(value[0]) is type(value[1]) and value[0] > value[1]:
                raise self.fail(vpath, f"'between' low {value[0]} is above high {value[1]}")
        elif op == "contains":
            if kind != "string":
                raise self.fail(path, f"'contains' needs a text trait; {column} is {kind}")
            value = self.typed(value, kind, vpath, column)
        else:
            if kind == "boolean" and op not in ("=", "!="):
                raise self.fail(path + ".op", f"{column} is boolean: use = or !=")
            value = self.typed(value, kind, vpath, column)
        return Trait(column, op, value, kind, self.relation_of(column))

    def relation_of(self, column: str) -> str:
        return "attributes" if column in getattr(self.traits, "attributes", ()) else "profile"

    def typed(self, value: Any, kind: str, path: str, column: str) -> Any:
        if kind == "temporal" and isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in ("days_ago", "hours_ago"):
                raise self.fail(path, "a relative time is {days_ago: N} or {hours_ago: N}")
            (key, amount), = value.items()
            if not isinstance(amount, int) or isinstance(amount, bool) or not (
                    0 <= amount <= MAX_WINDOW_DAYS * (24 if key == "hours_ago" else 1)):
                raise self.fail(path, f"bad relative time {value!r}")
            return Ago(amount, key.split("_")[0][:-1])
        value = self.literal(value, path)
        if kind == "temporal":
            return self.timestamp(value, path, column)
        ok = {
            "numeric": isinstance(value, (int, float)) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
        }[kind]
        if not ok:
            expected = {"numeric": "a number", "string": "a string", "boolean": "true or false",
                        "temporal": "a date 'YYYY-MM-DD' or {days_ago: N}"}[kind]
            raise self.fail(path, f"{column} is {kind}: expected {expected}, got {value!r}")
        return value

    def timestamp(self, value: Any, path: str, column: str) -> str:
        """A real calendar date (or date and time) in range, as 'YYYY-MM-DD[ HH:MM:SS]'."""
        parsed: datetime | None = None
        if isinstance(value, datetime):
            parsed = value.replace(tzinfo=None)
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            for fmt in DATE_FORMATS:
                try:
                    parsed = datetime.strptime(value, fmt)
                    break
                except ValueError:
                    continue
        if parsed is None:
            raise self.fail(path, f"{column} is temporal: expected a real date 'YYYY-MM-DD' "
                                  f"(or 'YYYY-MM-DD HH:MM[:SS]') or {{days_ago: N}}, got {value!r}")
        if not DATE_RANGE[0] <= parsed <= DATE_RANGE[1]:
            raise self.fail(path, f"date {parsed:%Y-%m-%d} is outside 1900-01-01..2999-12-31")
        if parsed.time() == datetime.min.time() and not (isinstance(value, str) and " " in value):
            return f"{parsed:%Y-%m-%d}"
        return f"{parsed:%Y-%m-%d %H:%M:%S}"

    def window(self, node: Any, path: str) -> Window:
        if not isinstance(node, dict):
            raise self.fail(path, "a window is {last: N, unit: days|hours|minutes} or "
                                  "{between_days_ago: [A, B]}")
        if "between_days_ago" in node:
            self.keys(node, path, {"between_days_ago"}, {"between_days_ago"})
            pair = node["between_days_ago"]
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)):
                raise self.fail(path, "between_days_ago needs [A, B], whole days")
            a, b = pair
            if not 0 <= a < b <= MAX_WINDOW_DAYS:
                raise self.fail(path, f"bad window: need 0 <= A < B <= {MAX_WINDOW_DAYS}, "
                                      f"got [{a}, {b}]")
            return Window("between", from_days=a, to_days=b)
        self.keys(node, path, {"last", "unit"}, {"last", "unit"})
        amount, unit = node["last"], str(node["unit"]).lower()
        if unit not in UNITS:
            raise self.fail(path + ".unit", f"bad window unit {node['unit']!r} "
                                            "(minutes, hours or days)")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise self.fail(path + ".last", f"bad window: 'last' must be a positive whole "
                                            f"number, got {amount!r}")
        unit = UNITS[unit]
        if amount * UNIT_MINUTES[unit] > MAX_WINDOW_DAYS * 1440:
            raise self.fail(path, f"bad window: longer than {MAX_WINDOW_DAYS} days")
        return Window("last", amount=amount, unit=unit)

    def event_type(self, value: Any, path: str) -> str:
        if value not in EVENT_TYPES:
            raise self.fail(path, f"unknown event type {value!r} (known: "
                                  f"{', '.join(EVENT_TYPES)})")
        return value

    def count(self, node: Any, path: str) -> tuple[str, int]:
        if not isinstance(node, dict) or len(node) != 1:
            raise self.fail(path, "count is {'>=': N} (one comparison)")
        (op, value), = node.items()
        if op not in COMPARISONS:
            raise self.fail(path, f"unknown count operator {op!r}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(path, f"count needs a whole number >= 0, got {value!r}")
        if value > INT64[1]:
            raise self.fail(path, f"count must fit in a 64-bit integer (at most {INT64[1]})")
        return op, value

    def _event(self, node: dict, path: str) -> Condition:
        self.keys(node, path, {"event", "did", "where", "count", "within"}, {"event", "within"})
        etype = self.event_type(node["event"], path)
        did = node.get("did", True)
        if not isinstance(did, bool):
            raise self.fail(path + ".did", "did must be true or false")
        op, value = self.count(node.get("count", {">=": 1}), path + ".count")
        filters = []
        where = node.get("where", {})
        if not isinstance(where, dict):
            raise self.fail(path + ".where", "where is a mapping of property: value")
        for prop, cond in where.items():
            ppath = f"{path}.where.{prop}"
            if prop not in EVENT_PROPERTIES:
                raise self.fail(ppath, f"unknown event property {prop!r} (known: "
                                       f"{', '.join(EVENT_PROPERTIES)})")
            if isinstance(cond, list):
                if not cond:
                    raise self.fail(ppath, "empty list")
                filters.append(PropertyFilter(prop, "in", tuple(
                    self.typed(v, "string", f"{ppath}[{i}]", prop) for i, v in enumerate(cond))))
            else:
                filters.append(PropertyFilter(prop, "=", self.typed(cond, "string", ppath, prop)))
        return Event(etype, did, op, value, self.window(node["within"], path + ".within"),
                     tuple(filters))

    def _message(self, node: dict, path: str) -> Condition:
        self.keys(node, path, {"message", "count", "of_last"}, {"message", "count", "of_last"})
        action = {"opened": "open", "clicked": "click"}.get(node["message"])
        if action is None:
            raise self.fail(path, f"message must be 'opened' or 'clicked', got "
                                  f"{node['message']!r}")
        n = node["of_last"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
            raise self.fail(path + ".of_last", f"of_last must be 1..100, got {n!r}")
        op, value = self.count(node["count"], path + ".count")
        if value > n:
            raise self.fail(path + ".count", f"cannot {node['message']} {value} of the last {n}")
        return Message(action, op, value, n)

    def _sequence(self, node: dict, path: str) -> Condition:
        self.keys(node, path, {"sequence", "lookback"}, {"sequence", "lookback"})
        seq = node["sequence"]
        if not isinstance(seq, dict):
            raise self.fail(path, "sequence is {first: E, then_not: [E…], within: window}")
        self.keys(seq, path, {"first", "then_not", "within"}, {"first", "then_not", "within"})
        first = self.event_type(seq["first"], path + ".first")
        then_not = seq["then_not"] if isinstance(seq["then_not"], list) else [seq["then_not"]]
        then = tuple(self.event_type(e, f"{path}.then_not[{i}]") for i, e in enumerate(then_not))
        within = self.window(seq["within"], path + ".within")
        if within.kind != "last":
            raise self.fail(path + ".within", "a sequence window is {last: N, unit: …}")
        lookback = self.window(node["lookback"], path + ".lookback")
        if lookback.kind != "last":
            raise self.fail(path + ".lookback", "lookback is {last: N, unit: …}")
        return Sequence(first, then, within, lookback)

    def _in_segment(self, node: dict, path: str) -> Condition:
        self.keys(node, path, {"in_segment", "holdout"}, {"in_segment"})
        name = node["in_segment"]
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise self.fail(path, f"bad segment name {name!r}")
        holdout = node.get("holdout")
        if holdout is not None and not isinstance(holdout, bool):
            raise self.fail(path + ".holdout", "holdout must be true or false")
        return InSegment(name, holdout)


def parse_segment(raw: Any, file: str, traits: dict[str, str],
                  reserved: frozenset[str] = frozenset()) -> Segment:
    """``reserved``: names of the project's own dbt nodes, which a segment may not take."""
    if not isinstance(raw, dict):
        raise SegmentDefinitionError(file, None, "", "each segment must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise SegmentDefinitionError(file, None, "name", f"bad segment name {name!r}: a "
                                     "segment name is lower case letters, digits and _ "
                                     "(starting with a letter, at most 63 characters)")
    if name in reserved:
        raise SegmentDefinitionError(file, name, "name", f"{name!r} is already a dbt model, "
                                     "seed or snapshot of this project: choose another name")
    p = _Parser(file, name, traits)
    p.keys(raw, "", SEGMENT_KEYS, {"name", "description", "owner", "rule"})

    def number(key: str, default: float, lo: float, hi: float, integer: bool = True) -> Any:
        v = raw.get(key, default)
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and
                                                                      not isinstance(v, int))
                or not lo <= v <= hi):
            raise p.fail(key, f"{key} must be a {'whole ' if integer else ''}number in "
                              f"[{lo}, {hi}], got {v!r}")
        return v

    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(x, str) and TAG_RE.fullmatch(x)
                                             for x in tags):
        raise p.fail("tags", "tags must be a list of lower-case words (letters, digits, _ "
                             f"and -), got {tags!r}")
    settings = _destinations(p, raw.get("destinations", ["file"]))
    fields = _fields(p, raw.get("fields", []), "fields")
    dests = [d.name for d in settings]
    salt = raw.get("holdout_salt", name)
    if not isinstance(salt, str) or not SALT_RE.fullmatch(salt):
        raise p.fail("holdout_salt", f"holdout_salt must be 1-64 letters, digits, _ or -, "
                                     f"got {salt!r}")
    description = p.text(raw["description"], "description", multiline=True)
    owner = p.text(raw["owner"], "owner")
    return Segment(
        name=name, description=description.strip(), owner=owner, tags=tags,
        priority=number("priority", 100, 1, 10_000), min_size=number("min_size", 1, 0, 10**9),
        holdout_pct=float(number("holdout_pct", 0, 0, 50, integer=False)),
        holdout_salt=str(salt), destinations=dests, rule=p.parse(raw["rule"], "rule"),
        file=file, raw=raw, destination_settings={d.name: d for d in settings},
        fields=fields, variants=_variants(p, raw.get("variants")),
    )


def _variants(p: _Parser, value: Any) -> tuple[tuple[str, int], ...]:
    """``variants: {subject_a: 45, subject_b: 45, control: 10}``: 2 to 10 variant names
    (lower-case identifiers) with whole-percent weights summing to 100."""
    if value is None:
        return ()
    if not isinstance(value, dict) or not 2 <= len(value) <= MAX_VARIANTS:
        raise p.fail("variants", f"variants must map 2 to {MAX_VARIANTS} variant names to "
                                 f"weights, got {value!r}")
    out = []
    for name, weight in value.items():
        if not isinstance(name, str) or not VARIANT_RE.fullmatch(name):
            raise p.fail("variants", f"variant name {name!r} must be lower case letters, "
                                     "digits and _ (starting with a letter, at most 30)")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 99:
            raise p.fail("variants", f"variant {name!r}: the weight must be a whole "
                                     f"percentage from 1 to 99, got {weight!r}")
        out.append((name, weight))
    total = sum(w for _, w in out)
    if total != 100:
        raise p.fail("variants", f"variant weights must sum to 100, got {total}")
    return tuple(out)


def _fields(p: _Parser, value: Any, path: str) -> tuple[str, ...]:
    """``fields``: traits (customer_profile columns or custom attributes) sent with each
    member as personal fields, e.g. ``[rfm_segment, engagement_tier]``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise p.fail(path, "fields must be a list of trait names")
    if len(value) > MAX_FIELDS:
        raise p.fail(path, f"at most {MAX_FIELDS} fields")
    for i, name in enumerate(value):
        if name not in p.traits:
            raise p.fail(f"{path}[{i}]", f"unknown trait {name!r} (known: "
                                         f"{', '.join(sorted(p.traits))})")
        if value.index(name) != i:
            raise p.fail(f"{path}[{i}]", f"{name!r} is listed twice")
    return tuple(value)


def _destinations(p: _Parser, value: Any) -> list[DestinationSettings]:
    """``destinations``: names, or mappings with a sync ``mode`` and guard thresholds."""
    if not isinstance(value, list):
        raise p.fail("destinations", "destinations must be a list")
    out: list[DestinationSettings] = []
    for i, item in enumerate(value):
        path = f"destinations[{i}]"
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise p.fail(path, "a destination is a name or a mapping with a name")
        p.keys(entry, path, DESTINATION_KEYS, {"name"})
        name = entry["name"]
        if name not in DESTINATION_NAMES:
            raise p.fail(path + ".name", f"unknown destination {name!r} (known: "
                                         f"{', '.join(DESTINATION_NAMES)})")
        if any(d.name == name for d in out):
            raise p.fail(path + ".name", f"destination {name!r} is listed twice")
        mode = entry.get("mode", "upsert")
        if mode not in SYNC_MODES:
            raise p.fail(path + ".mode", f"mode must be one of {', '.join(SYNC_MODES)}, "
                                         f"got {mode!r}")
        if name == "file" and set(entry) - {"name"}:
            raise p.fail(path, "the file export has no sync mode or guards")
        floor = entry.get("min_size")
        if floor is not None and (isinstance(floor, bool) or not isinstance(floor, int)
                                  or not 0 <= floor <= 10**9):
            raise p.fail(f"{path}.min_size", f"min_size must be a whole number >= 0, got {floor!r}")
        pcts = {}
        for key in ("max_removal_pct", "max_size_change_pct"):
            v = entry.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not 0 <= v <= 1000):
                raise p.fail(f"{path}.{key}", f"{key} must be a number in [0, 1000], got {v!r}")
            pcts[key] = None if v is None else float(v)
        fields = _fields(p, entry["fields"], f"{path}.fields") if "fields" in entry else None
        if name == "file" and fields is not None:
            raise p.fail(path, "the file export writes every member column; no fields")
        out.append(DestinationSettings(name, mode, **pcts, min_size=floor, fields=fields))
    return out


def dbt_node_names(project_dir: Path) -> frozenset[str]:
    """Names of the project's own models, seeds, snapshots and singular tests (not the
    compiled segments): a segment named like one of them would break the dbt project."""
    compiled = project_dir / "models" / "segments" / "compiled"
    names = {p.stem for p in (project_dir / "models").rglob("*")
             if p.suffix in (".sql", ".py") and compiled not in p.parents}
    names |= {p.stem for p in (project_dir / "seeds").rglob("*.csv")}
    names |= {p.stem for p in (project_dir / "tests").glob("*.sql")}
    for path in (project_dir / "snapshots").rglob("*"):
        if path.suffix == ".sql":
            names.add(path.stem)
        elif path.suffix in (".yml", ".yaml"):
            doc = yaml.safe_load(path.read_text()) or {}
            names |= {s["name"] for s in doc.get("snapshots", []) if "name" in s}
    return frozenset(names)


def _invisible(text: str) -> str:
    """The control, format (zero-width, bidi) and unassigned characters in ``text``."""
    bad = sorted({f"U+{ord(ch):04X}" for ch in text
                  if unicodedata.category(ch).startswith("C")})
    return ", ".join(bad[:5])


def load_definitions(folder: Path, traits: dict[str, str], root: Path | None = None,
                     project_dir: Path | None = None) -> list[Segment]:
    """Parse every ``*.yml`` in ``folder``; check names are unique (and, with
    ``project_dir``, not taken by one of its dbt nodes), references exist and there is no
    cycle. Returns the segments in a dependency-safe order."""
    segments: dict[str, Segment] = {}
    reserved = dbt_node_names(project_dir) if project_dir else frozenset()
    files = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
    if not files:
        raise SegmentDefinitionError(str(folder), None, "", "no segment definitions (*.yml)")
    for path in files:
        label = (str(path.relative_to(root)) if root and path.is_relative_to(root)
                 else str(path))
        if not FILE_LABEL_RE.fullmatch(label):  # the label is kept in SQL comments and docs
            raise SegmentDefinitionError(repr(label), None, "", "a definition file's path may "
                                         "only hold letters, digits, space and _ . / : - \\")
        try:
            doc = strict_yaml.load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, strict_yaml.StrictYAMLError, UnicodeDecodeError) as exc:
            raise SegmentDefinitionError(label, None, "", f"not valid YAML: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("segments"), list):
            raise SegmentDefinitionError(label, None, "", "expected a top-level 'segments:' list")
        unknown = sorted(map(str, set(doc) - TOP_LEVEL_KEYS))
        if unknown:
            raise SegmentDefinitionError(label, None, "", f"unknown top-level key(s) {unknown} "
                                         f"(allowed: {sorted(TOP_LEVEL_KEYS)})")
        for raw in doc["segments"]:
            seg = parse_segment(raw, label, traits, reserved)
            if seg.name in segments:
                raise SegmentDefinitionError(label, seg.name, "name",
                                             f"duplicate segment name (also in "
                                             f"{segments[seg.name].file})")
            segments[seg.name] = seg
    for seg in segments.values():
        for ref in seg.referenced_segments():
            if ref not in segments:
                raise SegmentDefinitionError(seg.file, seg.name, "rule",
                                             f"in_segment refers to unknown segment {ref!r}")
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name):], name])
            seg = segments[name]
            raise SegmentDefinitionError(seg.file, seg.name, "rule",
                                         f"segment reference cycle: {cycle}")
        state[name] = 1
        for ref in sorted(segments[name].referenced_segments()):
            visit(ref, [*trail, name])
        state[name] = 2
        order.append(name)

    for name in sorted(segments):
        visit(name, [])
    return [segments[n] for n in order]
