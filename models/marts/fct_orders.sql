-- One row per valid order (a purchase) placed before the as-of time.
with orders as (
    select * from {{ ref('int_orders_validated') }}
),

final as (
    select
        order_id,
        customer_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        order_status,
        currency,
        order_total as order_amount,
        items_count,
        units_count,
        country
    from orders
    where _quarantine_reason is null
        and ordered_at < {{ segwise.as_of_ts() }}
)

select * from final
