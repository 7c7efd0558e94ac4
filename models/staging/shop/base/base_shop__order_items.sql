-- One row per raw order line: cleaned columns plus the reason it is rejected (or null).
-- A line inherits its order's rejection (a line of a cancelled or customer-less invoice is
-- not a purchase); a line whose order does not exist at all is an orphan. The join stays
-- inside the shop source: it checks referential integrity, it adds no business logic.
{%- set raw = ['order_item_id', 'order_id', 'product_id', 'quantity', 'unit_price'] %}  {#- the raw columns a rejected row's payload shows #}
with source as (
    select * from {{ source('shop', 'order_items') }}
),

orders as (
    select * from {{ ref('base_shop__orders') }}
),

order_status as (
    select
        order_id,
        -- a valid copy of the order wins; otherwise the first rejection reason
        min(case when _quarantine_reason is null then '0' else '1' || _quarantine_reason end) as _order_check
    from orders
    group by order_id
),

cleaned as (
    select
        {{ segwise.clean_id('order_item_id') }} as order_item_id,
        {{ segwise.clean_id('order_id') }} as order_id,
        {{ segwise.clean_id('product_id') }} as product_id,
        {{ segwise.range_checked('quantity', -var('max_quantity'), var('max_quantity'), dbt.type_int()) }},
        {{ segwise.range_checked('unit_price', -var('max_amount'), var('max_amount'), dbt.type_numeric()) }},
        _loaded_at,
        {{ segwise.raw_columns(raw) }}
    from source
),

row_checks as (
    select
        cleaned.*,
        case
            when cleaned.order_item_id is null then 'missing_order_item_id'
            when order_status._order_check is null then 'orphan_order_item'
            when order_status._order_check <> '0' then substr(order_status._order_check, 2)
            when cleaned._is_quantity_invalid then 'invalid_quantity'
            when cleaned.quantity is null or cleaned.quantity <= 0 then 'non_positive_quantity'
            when cleaned._is_unit_price_invalid then 'invalid_price'
            when cleaned.unit_price is null or cleaned.unit_price <= 0 then 'non_positive_price'
        end as _row_reason
    from cleaned
    left join order_status
        on cleaned.order_id = order_status.order_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by order_item_id, _row_reason
            order by _loaded_at desc
        ) as _item_rank
    from row_checks
),

final as (
    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        _loaded_at,
        -- the raw row is kept for rejected rows only (quarantine_rows reads it)
        case when _row_reason is not null or _item_rank > 1 then {{ segwise.raw_payload(raw, prefix='_raw__') }} end as _raw_payload,
        case
            when _row_reason is not null then _row_reason
            when _item_rank > 1 then 'duplicate_order_item'
        end as _quarantine_reason
    from ranked
)

select * from final
