-- One row per raw email event: cleaned columns plus the reason it is rejected (or null).
with source as (
    select * from {{ source('email', 'email_events') }}
),

synonyms as (
    select * from {{ ref('email_event_type_synonyms') }}
),

cleaned as (
    select
        {{ segwise.clean_id('email_event_id') }} as email_event_id,
        {{ segwise.clean_id('campaign_id') }} as campaign_id,
        {{ segwise.clean_id('customer_id') }} as customer_id,
        {{ segwise.clean_code('email') }} as email,
        {{ segwise.clean_code('event_type') }} as event_type,
        {{ segwise.to_utc('occurred_at') }} as occurred_at,
        _loaded_at,
        {{ segwise.raw_payload(['email_event_id', 'campaign_id', 'customer_id', 'event_type', 'occurred_at']) }} as _raw_payload
    from source
),

typed as (
    -- ESPs spell types differently (spamreport, Unsubscribed, hard_bounce): the seed maps
    -- them, so a withdrawal is a withdrawal whatever its spelling
    select
        cleaned.email_event_id,
        cleaned.campaign_id,
        cleaned.customer_id,
        cleaned.email,
        coalesce(synonyms.event_type, cleaned.event_type) as event_type,
        cleaned.occurred_at,
        cleaned._loaded_at,
        cleaned._raw_payload
    from cleaned
    left join synonyms
        on replace(replace(cleaned.event_type, ' ', '_'), '-', '_') = synonyms.raw_event_type
),

row_checks as (
    select
        *,
        case
            when email_event_id is null then 'missing_event_id'
            when customer_id is null then 'missing_customer_id'
            when occurred_at is null then 'null_timestamp'
            when {{ segwise.is_future('occurred_at') }} then 'future_timestamp'
            when {{ segwise.is_implausible_ts('occurred_at') }} then 'implausible_timestamp'
            when event_type is null
                or event_type not in ({{ "'" ~ var('email_event_types') | join("', '") ~ "'" }})
                then 'unknown_event_type'
        end as _row_reason
    from typed
),

ranked as (
    select
        *,
        row_number() over (
            partition by email_event_id, _row_reason
            order by _loaded_at desc, occurred_at desc
        ) as _event_rank
    from row_checks
),

final as (
    select
        email_event_id,
        campaign_id,
        customer_id,
        email,
        event_type,
        occurred_at,
        _loaded_at,
        _raw_payload,
        case
            when _row_reason is not null then _row_reason
            when _event_rank > 1 then 'duplicate_event'
        end as _quarantine_reason
    from ranked
)

select * from final
