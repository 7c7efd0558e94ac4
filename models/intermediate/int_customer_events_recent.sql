-- int_customer_events for the last var('recent_events_hours') hours before the as-of time:
-- what the trigger segments read, so that a trigger refresh (segwise refresh) rebuilds
-- this instead of the whole stream. The same rows as int_customer_events in that window:
-- a web event without a customer gets the latest login of its anonymous id, looked up
-- among that visitor's events of every time, as int_identity_map does.
{%- set since = segwise.window_start('hour', var('recent_events_hours')) %}
with window_web_events as (
    select * from {{ ref('stg_web__events') }}
    where occurred_at >= {{ since }}
        and occurred_at < {{ segwise.as_of_ts() }}
),

visitors as (
    select distinct anonymous_id
    from window_web_events
    where customer_id is null
        and anonymous_id is not null
),

visitor_events as (
    select * from {{ ref('stg_web__events') }}
    where anonymous_id in (select anonymous_id from visitors)
),

identity_map as (
    {{ segwise.latest_logins('visitor_events') }}
),

web_events as (
    select
        window_web_events.event_id,
        coalesce(window_web_events.customer_id, identity_map.customer_id) as customer_id,
        window_web_events.event_type,
        window_web_events.occurred_at,
        window_web_events.category,
        window_web_events.product_id,
        window_web_events.device
    from window_web_events
    left join identity_map
        on window_web_events.anonymous_id = identity_map.anonymous_id
),

orders as (
    select * from {{ ref('fct_orders') }}
    where ordered_at >= {{ since }}
),

email_events as (
    select * from {{ ref('stg_email__events') }}
    where occurred_at >= {{ since }}
),

final as (
    {{ segwise.customer_events_union('web_events', 'orders', 'email_events') }}
)

select * from final
