-- One row per customer who bought or viewed a categorised product in the 90 days before
-- the as-of time: the category they bought most units of, then viewed most, then the
-- first by name (deterministic) — the profile's favourite_category trait.
with orders as (
    select * from {{ ref('fct_orders') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

products as (
    select * from {{ ref('stg_shop__products') }}
),

events as (
    select * from {{ ref('int_customer_events') }}
),

purchased as (
    select
        orders.customer_id,
        products.category,
        sum(order_items.quantity) as units_90d,
        0 as views_90d
    from orders
    inner join order_items
        on orders.order_id = order_items.order_id
    inner join products
        on order_items.product_id = products.product_id
    where products.category is not null
        and orders.ordered_at >= {{ segwise.window_start('day', 90) }}
    group by orders.customer_id, products.category
),

viewed as (
    select
        customer_id,
        category,
        0 as units_90d,
        count(*) as views_90d
    from events
    where event_type = 'product_view'
        and category is not null
        and occurred_at >= {{ segwise.window_start('day', 90) }}
    group by customer_id, category
),

scored as (
    select
        customer_id,
        category,
        sum(units_90d) as units_90d,
        sum(views_90d) as views_90d
    from (
        select * from purchased
        union all
        select * from viewed
    ) as both_signals
    group by customer_id, category
),

ranked as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by units_90d desc, views_90d desc, category
        ) as category_rank
    from scored
),

final as (
    select
        customer_id,
        category as favourite_category,
        units_90d as favourite_category_units_90d,
        views_90d as favourite_category_views_90d
    from ranked
    where category_rank = 1
)

select * from final
