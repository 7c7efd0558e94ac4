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

unioned as (
    select
        {{ dbt.concat(["'web:'", 'event_id']) }} as customer_event_id,
        customer_id,
        event_type,
        occurred_at,
        category,
        product_id,
        device,
        cast(null as {{ dbt.type_string() }}) as campaign_id
    from web_events
    where customer_id is not null

    union all

    select
        {{ dbt.concat(["'order:'", 'order_id']) }} as customer_event_id,
        customer_id,
        'order' as event_type,
        ordered_at as occurred_at,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as device,
        cast(null as {{ dbt.type_string() }}) as campaign_id
    from orders

    union all

    select
        {{ dbt.concat(["'email:'", 'email_event_id']) }} as customer_event_id,
        customer_id,
        {{ dbt.concat(["'email_'", 'event_type']) }} as event_type,
        occurred_at,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_string() }}) as product_id,
        cast(null as {{ dbt.type_string() }}) as device,
        campaign_id
    from email_events
    where occurred_at < {{ segwise.as_of_ts() }}
),

final as (
    select
        customer_event_id,
        customer_id,
        event_type,
        occurred_at,
        category,
        product_id,
        device,
        campaign_id
    from unioned
)

select * from final
