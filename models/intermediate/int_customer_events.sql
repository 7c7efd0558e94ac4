-- One row per customer event before the as-of time, from every source, in one shape —
-- what the segment rule language's event, message and sequence conditions read.
-- event_type: the web event types, 'order' (a valid order, from fct_orders) and the email
-- events prefixed 'email_' (email_sent, email_open, email_click, …).
with web_events as (
    select * from {{ ref('int_web_events_identified') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

email_events as (
    select * from {{ ref('stg_email__events') }}
),

final as (
    {{ segwise.customer_events_union('web_events', 'orders', 'email_events') }}
)

select * from final
