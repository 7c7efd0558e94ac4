-- One row per customer who viewed a product in the last var('abandonment_lookback_days')
-- days and neither added to cart nor ordered within var('browse_abandon_window_hours') hours
-- of that view (the window must have elapsed).
with web_events as (
    select * from {{ ref('int_web_events_identified') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

views as (
    select
        customer_id,
        occurred_at as viewed_at
    from web_events
    where customer_id is not null
        and event_type = 'product_view'
        and occurred_at >= {{ segwise.window_start('day', var('abandonment_lookback_days')) }}
        and occurred_at <= {{ segwise.window_start('hour', var('browse_abandon_window_hours')) }}
),

unconverted as (
    select
        views.customer_id,
        views.viewed_at
    from views
    where not exists (
        select 1
        from web_events as later
        where later.customer_id = views.customer_id
            and later.event_type = 'add_to_cart'
            and later.occurred_at >= views.viewed_at
            and later.occurred_at <= {{ dbt.dateadd('hour', var('browse_abandon_window_hours'), 'views.viewed_at') }}
    )
    and not exists (
        select 1
        from orders
        where orders.customer_id = views.customer_id
            and orders.ordered_at >= views.viewed_at
            and orders.ordered_at <= {{ dbt.dateadd('hour', var('browse_abandon_window_hours'), 'views.viewed_at') }}
    )
),

per_customer as (
    select
        customer_id,
        count(*) as unconverted_views,
        max(viewed_at) as last_viewed_at
    from unconverted
    group by customer_id
),

final as (
    select
        customer_id,
        'browsed_not_bought_48h' as segment_name,
        {{ dbt.concat(["'unconverted_product_views='", 'cast(unconverted_views as ' ~ dbt.type_string() ~ ')', "'; last_product_view_at='", 'cast(last_viewed_at as ' ~ dbt.type_string() ~ ')', "'; no add_to_cart or order within " ~ var('browse_abandon_window_hours') ~ "h'"]) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from per_customer
)

select * from final
