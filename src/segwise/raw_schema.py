"""The raw tables a source system lands in the warehouse (schema ``raw``).

One place for their columns, so the generator, the real-data loaders and the loader
into the warehouse agree. Timestamps are naive; their zone is the source's
(``source_timezone`` dbt var, UTC for generated data) and staging converts to UTC.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us")

RAW_TABLES: dict[str, pa.Schema] = {
    "crm_contacts": pa.schema(
        [
            ("customer_id", pa.string()),
            ("email", pa.string()),
            ("first_name", pa.string()),
            ("last_name", pa.string()),
            ("country", pa.string()),
            ("signup_at", TS),
            ("loyalty_tier", pa.string()),
            ("email_consent", pa.bool_()),
            ("email_consent_at", TS),
            ("sms_consent", pa.bool_()),
            ("sms_consent_at", TS),
            ("updated_at", TS),
        ]
    ),
    "web_events": pa.schema(
        [
            ("event_id", pa.string()),
            ("anonymous_id", pa.string()),
            ("customer_id", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", TS),
            ("device", pa.string()),
            ("product_id", pa.string()),
            ("category", pa.string()),
            ("page_duration_s", pa.float64()),
            ("scroll_depth_pct", pa.float64()),
            ("order_id", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("ordered_at", TS),
            ("status", pa.string()),
            ("currency", pa.string()),
            ("order_total", pa.float64()),
            ("country", pa.string()),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_item_id", pa.string()),
            ("order_id", pa.string()),
            ("product_id", pa.string()),
            ("quantity", pa.int64()),
            ("unit_price", pa.float64()),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", pa.string()),
            ("product_name", pa.string()),
            ("category", pa.string()),
            ("list_price", pa.float64()),
        ]
    ),
    "email_campaigns": pa.schema(
        [
            ("campaign_id", pa.string()),
            ("campaign_name", pa.string()),
            ("subject", pa.string()),
            ("sent_at", TS),
        ]
    ),
    "email_events": pa.schema(
        [
            ("email_event_id", pa.string()),
            ("campaign_id", pa.string()),
            ("customer_id", pa.string()),
            ("email", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", TS),
        ]
    ),
}

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
