-- One row per raw campaign row: cleaned columns plus the reason it is rejected (or null).
with source as (
    select * from {{ source('email', 'email_campaigns') }}
),

cleaned as (
    select
        {{ segwise.clean_text('campaign_id') }} as campaign_id,
        {{ segwise.clean_text('campaign_name') }} as campaign_name,
        {{ segwise.clean_text('subject') }} as subject,
        {{ segwise.to_utc('sent_at') }} as sent_at,
        _loaded_at,
        {{ segwise.raw_payload(['campaign_id', 'campaign_name', 'sent_at']) }} as _raw_payload
    from source
),

ranked as (
    select
        *,
        row_number() over (partition by campaign_id order by _loaded_at desc, sent_at desc) as _campaign_rank
    from cleaned
),

final as (
    select
        campaign_id,
        campaign_name,
        subject,
        sent_at,
        _loaded_at,
        _raw_payload,
        case
            when campaign_id is null then 'missing_campaign_id'
            when _campaign_rank > 1 then 'duplicate_campaign'
        end as _quarantine_reason
    from ranked
)

select * from final
