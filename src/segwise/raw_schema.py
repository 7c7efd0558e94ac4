"""The raw contract: the tables a source system lands in the warehouse, declared once.

Every raw table's source, grain, key, columns (type, required or optional, meaning) and
freshness live here. The generator, the real-data loaders and the loader into the
warehouse read it; ``segwise contract render`` writes it into the dbt sources YAML
(``models/staging/<source>/_<source>__sources.yml``: columns with ``data_type`` and
descriptions, so ``dbt docs`` shows the contract) and into the README's "Bring your own
data" section; a test keeps both current.

Timestamps are naive; their zone is the source's (``source_timezone`` dbt var, UTC for
generated data) and staging converts to UTC. Where the raw tables live is configurable per
source (``SEGWISE_<SOURCE>_SCHEMA``, e.g. ``SEGWISE_SHOP_SCHEMA``, else
``SEGWISE_RAW_SCHEMA``, else ``raw``; dbt vars ``<source>_schema`` / ``raw_schema`` for
dbt alone), so segwise can read tables another loader landed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pyarrow as pa

from segwise.errors import ConfigurationError

TS = pa.timestamp("us")

# the type each Arrow type is declared as in the dbt sources (dbt's portable type names)
DATA_TYPES = {pa.string(): "varchar", TS: "timestamp", pa.bool_(): "boolean",
              pa.float64(): "double precision", pa.int64(): "bigint"}


@dataclass(frozen=True)
class RawColumn:
    name: str
    type: pa.DataType
    description: str
    # required: a file must carry the column, and a row without a value is quarantined;
    # optional: may be absent from what lands (then null) or null in a row
    required: bool = False
    pii: bool = False


@dataclass(frozen=True)
class RawTable:
    name: str
    source: str
    description: str
    key: str  # the column that identifies a row (duplicates are quarantined)
    columns: tuple[RawColumn, ...]
    # an optional table may be absent altogether (a business without web tracking)
    required: bool = False

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.type) for c in self.columns])


@dataclass(frozen=True)
class RawSource:
    name: str
    description: str
    warn_after_days: int
    error_after_days: int


def _c(name: str, type_: pa.DataType, description: str, required: bool = False,
       pii: bool = False) -> RawColumn:
    return RawColumn(name, type_, description, required, pii)


S, F, B, I = pa.string(), pa.float64(), pa.bool_(), pa.int64()  # noqa: E741

SOURCES: tuple[RawSource, ...] = (
    RawSource("shop", "E-commerce platform tables: orders, their lines, the product "
              "catalogue.", 1, 3),
    RawSource("crm", "CRM export of contacts (one row per contact record as the CRM last "
              "sent it).", 2, 7),
    RawSource("web", "Behavioural events from the site tracker.", 1, 3),
    RawSource("email", "Email service provider exports: campaigns and message events.", 1, 3),
)

CONTRACT: tuple[RawTable, ...] = (
    RawTable("crm_contacts", "crm", "Contacts with consent flags per channel, one row per "
             "contact record as the CRM sent it; may hold several rows per customer (the "
             "latest `updated_at` wins) and dirt.", "customer_id", (
                 _c("customer_id", S, "The customer's id in your systems (the key every "
                    "table joins on).", required=True),
                 _c("email", S, "Email address; invalid addresses are quarantined.", pii=True),
                 _c("first_name", S, "Given name.", pii=True),
                 _c("last_name", S, "Family name.", pii=True),
                 _c("country", S, "Country code or name."),
                 _c("signup_at", TS, "When the customer signed up."),
                 _c("loyalty_tier", S, "Loyalty programme tier (e.g. bronze, silver, gold)."),
                 _c("email_consent", B, "Marketing email consent as the CRM holds it "
                    "(absent or null: no consent)."),
                 _c("email_consent_at", TS, "When email consent was given."),
                 _c("sms_consent", B, "SMS consent (absent or null: no consent)."),
                 _c("sms_consent_at", TS, "When SMS consent was given."),
                 _c("updated_at", TS, "When the CRM last changed the record; the latest row "
                    "per customer wins, and a later withdrawal beats an earlier consent."),
             ), required=True),
    RawTable("crm_contact_attributes", "crm", "Custom contact attributes, one row per "
             "customer and attribute as the CRM sent it (long: a wide export is unpivoted by "
             "`segwise load`); only attributes declared in the dbt var `custom_attributes` "
             "are kept, each parsed as its declared type, and the latest `updated_at` per "
             "customer and attribute wins.", "customer_id, attribute", (
                 _c("customer_id", S, "The customer the value belongs to.", required=True),
                 _c("attribute", S, "The attribute's name, as declared in "
                    "`custom_attributes` (case-insensitive).", required=True),
                 _c("value", S, "The value as text (null: the attribute is cleared); "
                    "parsed as the declared type, unparseable values are quarantined.",
                    pii=True),
                 _c("updated_at", TS, "When the CRM last changed the value; the latest "
                    "row per customer and attribute wins."),
             )),
    RawTable("orders", "shop", "One row per order (invoice) as exported; cancellations have "
             "status 'cancelled'.", "order_id", (
                 _c("order_id", S, "Order (invoice) id.", required=True),
                 _c("customer_id", S, "Who ordered (an order without one is quarantined).",
                    required=True),
                 _c("ordered_at", TS, "When the order was placed.", required=True),
                 _c("status", S, "Order status; 'cancelled' orders are not purchases."),
                 _c("currency", S, "ISO currency code of the amounts."),
                 _c("order_total", F, "Order amount (zero: a free order; negative: "
                    "quarantined).", required=True),
                 _c("country", S, "Country the order was shipped to."),
             ), required=True),
    RawTable("order_items", "shop", "One row per order line.", "order_item_id", (
        _c("order_item_id", S, "Order line id.", required=True),
        _c("order_id", S, "The order the line belongs to.", required=True),
        _c("product_id", S, "The product sold."),
        _c("quantity", I, "Units (must be positive).", required=True),
        _c("unit_price", F, "Price per unit (must be positive).", required=True),
    )),
    RawTable("products", "shop", "Product catalogue.", "product_id", (
        _c("product_id", S, "Product id.", required=True),
        _c("product_name", S, "Product name."),
        _c("category", S, "Product category (feeds favourite-category traits)."),
        _c("list_price", F, "Catalogue price."),
    )),
    RawTable("web_events", "web", "One row per tracked event (page_view, product_view, "
             "add_to_cart, remove_from_cart, checkout_started, purchase); customer_id is set "
             "once the visitor is logged in.", "event_id", (
                 _c("event_id", S, "Event id.", required=True),
                 _c("anonymous_id", S, "The tracker's visitor id (one of it or customer_id "
                    "is needed)."),
                 _c("customer_id", S, "The logged-in customer."),
                 _c("event_type", S, "One of page_view, product_view, add_to_cart, "
                    "remove_from_cart, checkout_started, purchase.", required=True),
                 _c("occurred_at", TS, "When it happened.", required=True),
                 _c("device", S, "Device class (desktop, mobile, tablet)."),
                 _c("product_id", S, "The product viewed or carted."),
                 _c("category", S, "The product's category."),
                 _c("page_duration_s", F, "Seconds on the page."),
                 _c("scroll_depth_pct", F, "How far the page was scrolled, 0-100."),
                 _c("order_id", S, "The order a purchase event completed."),
             )),
    RawTable("email_campaigns", "email", "One row per campaign send.", "campaign_id", (
        _c("campaign_id", S, "Campaign id.", required=True),
        _c("campaign_name", S, "Campaign name."),
        _c("subject", S, "Subject line."),
        _c("sent_at", TS, "When the campaign was sent."),
    )),
    RawTable("email_events", "email", "One row per message event (sent, delivered, open, "
             "click, bounce, unsubscribe, complaint; ESP spellings such as spamreport are "
             "mapped).", "email_event_id", (
                 _c("email_event_id", S, "Event id (a duplicate whose type conflicts: the "
                    "suppressing type wins).", required=True),
                 _c("campaign_id", S, "The campaign the message belonged to."),
                 _c("customer_id", S, "The recipient (a row without one is quarantined, "
                    "but a withdrawal known only by its address still counts).",
                    required=True),
                 _c("email", S, "The recipient's address.", pii=True),
                 _c("event_type", S, "sent, delivered, open, click, bounce, unsubscribe or "
                    "complaint (or an ESP's spelling of one).", required=True),
                 _c("occurred_at", TS, "When it happened.", required=True),
             )),
)

CONTRACT_BY_NAME: dict[str, RawTable] = {t.name: t for t in CONTRACT}
_IDENT = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def raw_schema_of(table: str) -> str:
    """The schema a raw table lives in: ``SEGWISE_<SOURCE>_SCHEMA``, else
    ``SEGWISE_RAW_SCHEMA``, else ``raw`` — the same rule the dbt sources apply."""
    source = CONTRACT_BY_NAME[table].source
    schema = (os.environ.get(f"SEGWISE_{source.upper()}_SCHEMA")
              or os.environ.get("SEGWISE_RAW_SCHEMA") or "raw")
    if not _IDENT.match(schema):
        raise ConfigurationError(f"schema {schema!r} for raw.{table} (SEGWISE_"
                                 f"{source.upper()}_SCHEMA / SEGWISE_RAW_SCHEMA) is not a "
                                 "plain identifier")
    return schema


def raw_relation(table: str) -> str:
    """``<schema>.<table>`` of a raw table, where it lives in this warehouse."""
    return f"{raw_schema_of(table)}.{table}"


def resolve_raw(sql: str) -> str:
    """Point ``raw.<table>`` references of hand-written SQL (the GX batch queries) at
    where each raw table lives."""
    return re.sub(r"\braw\.([a-z_]+)\b",
                  lambda m: raw_relation(m.group(1)) if m.group(1) in CONTRACT_BY_NAME
                  else m.group(0), sql)
RAW_TABLES: dict[str, pa.Schema] = {t.name: t.schema for t in CONTRACT}

# The raw columns that hold an email address: an erased address's rows are deleted from
# them (segwise forget), and again after every load (the source may still send them).
EMAIL_COLUMNS = {"crm_contacts": "email", "email_events": "email"}

WEB_EVENT_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "purchase",
)
EMAIL_EVENT_TYPES = ("sent", "delivered", "open", "click", "bounce", "unsubscribe", "complaint")
