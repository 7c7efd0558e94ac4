-- One row per raw order: cleaned columns plus the reason it is rejected (or null).
-- Reasons are checked in a fixed order; a row gets the first that applies.
{%- set raw = ['order_id', 'customer_id', 'ordered_at', 'status', 'order_total'] %}  {#- the raw columns a rejected row's payload shows #}
with source as (
    select * from {{ source('shop', 'orders') }}
),

cleaned as (
    select
        {{ segwise.clean_id('order_id') }} as order_id,
        {{ segwise.clean_id('customer_id') }} as customer_id,
        {{ segwise.to_utc('ordered_at') }} as ordered_at,
        coalesce({{ segwise.clean_code('status') }}, 'completed') as order_status,
        upper({{ segwise.clean_text('currency') }}) as currency,
        {{ segwise.range_checked('order_total', -var('max_amount'), var('max_amount'), dbt.type_numeric()) }},
        upper({{ segwise.clean_text('country') }}) as country,
        _loaded_at,
        {{ segwise.raw_columns(raw) }}
    from source
),

row_checks as (
    select
        *,
        case
            when order_id is null then 'missing_order_id'
            when customer_id is null then 'missing_customer_id'
            when order_status = 'cancelled' then 'cancelled_order'
            when ordered_at is null then 'null_timestamp'
            when {{ segwise.is_future('ordered_at') }} then 'future_timestamp'
            when {{ segwise.is_implausible_ts('ordered_at') }} then 'implausible_timestamp'
            when _is_order_total_invalid then 'invalid_amount'
            when order_total is null then 'missing_amount'
            when order_total < 0 then 'negative_amount'
        end as _row_reason
    from cleaned
),

ranked as (
    select
        *,
        row_number() over (
            partition by order_id, _row_reason
            order by _loaded_at desc, ordered_at desc
        ) as _order_rank
    from row_checks
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
        _loaded_at,
        -- the raw row is kept for rejected rows only (quarantine_rows reads it)
        case when _row_reason is not null or _order_rank > 1 then {{ segwise.raw_payload(raw, prefix='_raw__') }} end as _raw_payload,
        case
            when _row_reason is not null then _row_reason
            when _order_rank > 1 then 'duplicate_order'
        end as _quarantine_reason
    from ranked
)

select * from final
