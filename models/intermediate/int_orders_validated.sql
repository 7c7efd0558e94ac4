-- One row per staged order with its line-level validity: an order whose source has lines
-- but none of them valid (e.g. an invoice holding only a zero-price line) is not a
-- purchase. Such orders get `_quarantine_reason = 'no_valid_items'`: fct_orders leaves
-- them out and quarantine_rows lists them. Orders from sources without lines (CDNOW) are
-- judged on the order alone.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

all_lines as (
    select * from {{ ref('base_shop__order_items') }}
),

valid_lines as (
    select * from {{ ref('stg_shop__order_items') }}
),

lines_per_order as (
    select
        order_id,
        count(*) as source_lines_count
    from all_lines
    group by order_id
),

valid_lines_per_order as (
    select
        order_id,
        count(*) as items_count,
        sum(quantity) as units_count
    from valid_lines
    group by order_id
),

final as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_status,
        orders.currency,
        orders.order_total,
        orders.country,
        coalesce(lines_per_order.source_lines_count, 0) as source_lines_count,
        coalesce(valid_lines_per_order.items_count, 0) as items_count,
        coalesce(valid_lines_per_order.units_count, 0) as units_count,
        orders._loaded_at,
        {{ segwise.raw_payload(['orders.order_id', 'orders.customer_id', 'orders.ordered_at', 'orders.order_total']) }} as _raw_payload,
        case
            when coalesce(lines_per_order.source_lines_count, 0) > 0
                and coalesce(valid_lines_per_order.items_count, 0) = 0
                then 'no_valid_items'
        end as _quarantine_reason
    from orders
    left join lines_per_order
        on orders.order_id = lines_per_order.order_id
    left join valid_lines_per_order
        on orders.order_id = valid_lines_per_order.order_id
)

select * from final
