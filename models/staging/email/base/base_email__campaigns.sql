-- One row per raw campaign row: cleaned columns plus the reason it is rejected (or null).
with source as (
    select * from {{ source('email', 'email_campaigns') }}
),

cleaned as (
    select
        {{ segwise.clean_id('campaign_id') }} as campaign_id,
        {{ segwise.clean_text('campaign_name') }} as campaign_name,
        {{ segwise.clean_text('subject') }} as subject,
        {{ segwise.to_utc('sent_at') }} as sent_at,
        _loaded_at,
        {{ segwise.raw_payload(['campaign_id', 'campaign_name', 'sent_at']) }} as _raw_payload
    from source
),

row_checks as (
    select
        *,
        case
            when campaign_id is null then 'missing_campaign_id'
            when {{ segwise.is_future('sent_at') }} then 'future_timestamp'
            when {{ segwise.is_implausible_ts('sent_at') }} then 'implausible_timestamp'
        end as _row_reason
    from cleaned
),

ranked as (
    select
        *,
        row_number() over (
            partition by campaign_id, _row_reason
            order by _loaded_at desc, sent_at desc
        ) as _campaign_rank
    from row_checks
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
            when _row_reason is not null then _row_reason
            when _campaign_rank > 1 then 'duplicate_campaign'
        end as _quarantine_reason
    from ranked
)

select * from final
