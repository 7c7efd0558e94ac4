-- One row per raw web event: cleaned columns plus the reason it is rejected (or null).
-- Incremental (macros/incremental_events.sql): a run judges only what landed since.
{{ config(materialized=segwise.incremental_materialization(), unique_key='_row_key', incremental_strategy='delete+insert', on_schema_change='fail', pre_hook="{{ segwise.forget_changed_loads('event_id', source('web', 'web_events')) }}") }}
{%- set raw = ['event_id', 'anonymous_id', 'customer_id', 'event_type', 'occurred_at', 'product_id', 'category'] %}  {#- the raw columns a rejected row's payload shows #}
with source as (
    select * from {{ source('web', 'web_events') }}
    {{- segwise.rejudged_rows('event_id', source('web', 'web_events')) }}
),

cleaned as (
    select
        {{ segwise.clean_id('event_id') }} as event_id,
        {{ segwise.clean_id('anonymous_id') }} as anonymous_id,
        {{ segwise.clean_id('customer_id') }} as customer_id,
        {{ segwise.clean_code('event_type') }} as event_type,
        {{ segwise.to_utc('occurred_at') }} as occurred_at,
        {{ segwise.clean_code('device') }} as device,
        {{ segwise.clean_id('product_id') }} as product_id,
        {{ segwise.clean_code('category') }} as category,
        {{ segwise.range_checked('page_duration_s', 0, var('max_page_duration_s'), dbt.type_float()) }},
        {{ segwise.range_checked('scroll_depth_pct', 0, 100, dbt.type_float()) }},
        {{ segwise.clean_id('order_id') }} as order_id,
        _loaded_at,
        {{ segwise.raw_columns(raw) }}
    from source
),

row_checks as (
    select
        *,
        case
            when event_id is null then 'missing_event_id'
            when occurred_at is null then 'null_timestamp'
            when {{ segwise.is_future('occurred_at') }} then 'future_timestamp'
            when {{ segwise.is_implausible_ts('occurred_at') }} then 'implausible_timestamp'
            when event_type is null
                or event_type not in ({{ "'" ~ var('web_event_types') | join("', '") ~ "'" }})
                then 'unknown_event_type'
            when anonymous_id is null and customer_id is null then 'missing_identity'
            when _is_page_duration_s_invalid then 'invalid_page_duration'
            when _is_scroll_depth_pct_invalid then 'invalid_scroll_depth'
        end as _row_reason
    from cleaned
),

ranked as (
    select
        *,
        row_number() over (
            partition by event_id, _row_reason
            order by _loaded_at desc, occurred_at desc
        ) as _event_rank
    from row_checks
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
        _loaded_at,
        -- the raw row is kept for rejected rows only (quarantine_rows reads it)
        case when _row_reason is not null or _event_rank > 1 then {{ segwise.raw_payload(raw, prefix='_raw__') }} end as _raw_payload,
        case
            when _row_reason is not null then _row_reason
            when _event_rank > 1 then 'duplicate_event'
        end as _quarantine_reason,
        {{ segwise.event_row_key('event_id', segwise.raw_payload(raw, prefix='_raw__')) }} as _row_key,
        {{ segwise.raw_key('event_id') }} as _raw_key
    from ranked
)

select * from final
