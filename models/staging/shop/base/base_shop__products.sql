-- One row per raw product row: cleaned columns plus the reason it is rejected (or null).
with source as (
    select * from {{ source('shop', 'products') }}
),

cleaned as (
    select
        {{ segwise.clean_id('product_id') }} as product_id,
        {{ segwise.clean_text('product_name') }} as product_name,
        coalesce({{ segwise.clean_code('category') }}, 'uncategorized') as category,
        {{ segwise.range_checked('list_price', 0, var('max_amount'), dbt.type_numeric()) }},
        _loaded_at,
        {{ segwise.raw_payload(['product_id', 'product_name', 'category', 'list_price']) }} as _raw_payload
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by product_id, _is_list_price_invalid
            order by _loaded_at desc, product_name
        ) as _product_rank
    from cleaned
),

final as (
    select
        product_id,
        product_name,
        category,
        list_price,
        _loaded_at,
        _raw_payload,
        case
            when product_id is null then 'missing_product_id'
            when _is_list_price_invalid then 'invalid_list_price'
            when _product_rank > 1 then 'duplicate_product'
        end as _quarantine_reason
    from ranked
)

select * from final
