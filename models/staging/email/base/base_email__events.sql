-- One row per raw email event: cleaned columns plus the reason it is rejected (or null).
-- Incremental (macros/incremental_events.sql): a run judges only what landed since.
{{ config(materialized=segwise.incremental_materialization(), unique_key='_row_key', incremental_strategy='delete+insert', on_schema_change='fail', pre_hook="{{ segwise.forget_changed_loads('email_event_id', source('email', 'email_events')) }}") }}
{%- set raw = segwise.email_event_raw_columns() %}
with typed as (
    -- what base_email__events_typed holds, of the rows this run judges
    {{ segwise.email_events_typed(segwise.rejudged_rows('email_event_id', source('email', 'email_events'))) | indent(4) }}
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
        end as _quarantine_reason,
        {{ segwise.event_row_key('email_event_id', segwise.raw_payload(raw, prefix='_raw__')) }} as _row_key,
        {{ segwise.raw_key('email_event_id') }} as _raw_key
    from ranked
)

select * from final
