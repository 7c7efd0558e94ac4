with base as (
    select * from {{ ref('base_shop__products') }}
),

final as (
    select
        product_id,
        product_name,
        category,
        list_price,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
