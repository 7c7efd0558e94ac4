-- One row per customer with at least var('repeat_buyer_min_orders') valid orders in the last var('recent_purchase_days') days.
with orders as (
    select * from {{ ref('fct_orders') }}
),

recent as (
    select
        customer_id,
        count(*) as recent_orders
    from orders
    where ordered_at >= {{ segwise.window_start('day', var('recent_purchase_days')) }}
    group by customer_id
),

final as (
    select
        customer_id,
        'repeat_buyers_30d' as segment_name,
        {{ dbt.concat(["'orders_" ~ var('recent_purchase_days') ~ "d='", 'cast(recent_orders as ' ~ dbt.type_string() ~ ')', "' >= " ~ var('repeat_buyer_min_orders') ~ "'"]) }} as reason,
        {{ segwise.run_started_ts() }} as computed_at
    from recent
    where recent_orders >= {{ var('repeat_buyer_min_orders') }}
)

select * from final
