with base as (
    select * from {{ ref('base_email__events') }}
),

final as (
    select
        email_event_id,
        campaign_id,
        customer_id,
        email,
        event_type,
        occurred_at,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
