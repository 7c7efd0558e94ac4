with base as (
    select * from {{ ref('base_web__events') }}
),

final as (
    select
        event_id,
        anonymous_id,
        customer_id,
        event_type,
        occurred_at,
        device,
        product_id,
        category,
        page_duration_s,
        scroll_depth_pct,
        order_id,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
