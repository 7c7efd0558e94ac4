with base as (
    select * from {{ ref('base_shop__orders') }}
),

final as (
    select
        order_id,
        customer_id,
        ordered_at,
        order_status,
        currency,
        order_total,
        country,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
