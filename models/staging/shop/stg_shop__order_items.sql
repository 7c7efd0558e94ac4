with base as (
    select * from {{ ref('base_shop__order_items') }}
),

final as (
    select
        order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        quantity * unit_price as line_amount,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
