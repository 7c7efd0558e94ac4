-- One row per raw email event: cleaned columns plus the reason it is rejected (or null).
{%- set raw = ['email_event_id', 'campaign_id', 'customer_id', 'event_type', 'occurred_at'] %}  {#- the raw columns a rejected row's payload shows #}
with typed as (
    select * from {{ ref('base_email__events_typed') }}
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
        -- the raw row is kept for rejected rows only (quarantine_rows reads it)
        case when _row_reason is not null or _event_rank > 1 then {{ segwise.raw_payload(raw, prefix='_raw__') }} end as _raw_payload,
        case
            when _row_reason is not null then _row_reason
            when _event_rank > 1 then 'duplicate_event'
        end as _quarantine_reason
    from ranked
)

select * from final
