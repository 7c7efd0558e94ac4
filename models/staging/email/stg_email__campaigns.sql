with base as (
    select * from {{ ref('base_email__campaigns') }}
),

final as (
    select
        campaign_id,
        campaign_name,
        subject,
        sent_at,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
