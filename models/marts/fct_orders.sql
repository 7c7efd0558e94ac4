-- One row per valid order placed before the as-of time.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

items_per_order as (
    select
        order_id,
        count(*) as items_count,
        sum(quantity) as units_count,
        sum(line_amount) as items_amount
    from order_items
    group by order_id
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.order_status,
        orders.currency,
        orders.order_total as order_amount,
        coalesce(items_per_order.items_count, 0) as items_count,
        coalesce(items_per_order.units_count, 0) as units_count,
        orders.country
    from orders
    left join items_per_order
        on orders.order_id = items_per_order.order_id
    where orders.ordered_at < {{ segwise.as_of_ts() }}
)

select * from final
