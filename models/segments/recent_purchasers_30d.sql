-- One row per customer with at least one valid order in the last var('recent_purchase_days') days.
with orders as (
    select * from {{ ref('fct_orders') }}
),

recent as (
    select
        customer_id,
        count(*) as recent_orders,
        max(ordered_at) as last_ordered_at
    from orders
    where ordered_at >= {{ segwise.window_start('day', var('recent_purchase_days')) }}
    group by customer_id
),

final as (
    select
        customer_id,
        'recent_purchasers_30d' as segment_name,
        {{ dbt.concat(["'orders_" ~ var('recent_purchase_days') ~ "d='", 'cast(recent_orders as ' ~ dbt.type_string() ~ ')', "' >= 1; last_order_at='", 'cast(last_ordered_at as ' ~ dbt.type_string() ~ ')']) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from recent
)

select * from final
