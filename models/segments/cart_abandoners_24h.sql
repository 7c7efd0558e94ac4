-- One row per customer who added to cart in the last var('abandonment_lookback_days') days
-- and placed no order within var('cart_abandon_window_hours') hours of that add (the
-- window must have elapsed: a cart added an hour ago is not abandoned yet).
with web_events as (
    select * from {{ ref('int_web_events_identified') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

cart_adds as (
    select
        customer_id,
        occurred_at as added_at
    from web_events
    where customer_id is not null
        and event_type = 'add_to_cart'
        and occurred_at >= {{ segwise.window_start('day', var('abandonment_lookback_days')) }}
        and occurred_at <= {{ segwise.window_start('hour', var('cart_abandon_window_hours')) }}
),

abandoned as (
    select
        cart_adds.customer_id,
        cart_adds.added_at
    from cart_adds
    where not exists (
        select 1
        from orders
        where orders.customer_id = cart_adds.customer_id
            and orders.ordered_at >= cart_adds.added_at
            and orders.ordered_at <= {{ dbt.dateadd('hour', var('cart_abandon_window_hours'), 'cart_adds.added_at') }}
    )
),

per_customer as (
    select
        customer_id,
        count(*) as abandoned_adds,
        max(added_at) as last_abandoned_at
    from abandoned
    group by customer_id
),

final as (
    select
        customer_id,
        'cart_abandoners_24h' as segment_name,
        {{ dbt.concat(["'abandoned_cart_adds='", 'cast(abandoned_adds as ' ~ dbt.type_string() ~ ')', "'; last_add_to_cart_at='", 'cast(last_abandoned_at as ' ~ dbt.type_string() ~ ')', "'; no order within " ~ var('cart_abandon_window_hours') ~ "h'"]) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from per_customer
)

select * from final
