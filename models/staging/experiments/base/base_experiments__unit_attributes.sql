-- One row per imported unit attribute: cleaned, with the reason it is rejected (or null).
with source as (
    select * from {{ source('experiments', 'experiment_unit_attributes') }}
),

cleaned as (
    select
        {{ segwise.clean_code('experiment_id') }} as experiment_id,
        {{ segwise.clean_id('unit_id') }} as unit_id,
        {{ segwise.clean_code('attribute') }} as attribute,
        {{ segwise.clean_text('value') }} as attribute_value,
        imported_at as _loaded_at,
        {{ segwise.raw_payload(['experiment_id', 'unit_id', 'attribute', 'value']) }} as _raw_payload
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by experiment_id, unit_id, attribute
            order by _loaded_at desc, attribute_value
        ) as _attribute_rank
    from cleaned
),

final as (
    select
        experiment_id,
        unit_id,
        attribute,
        attribute_value,
        _loaded_at,
        _raw_payload,
        case
            when experiment_id is null then 'missing_experiment_id'
            when unit_id is null then 'missing_unit_id'
            when attribute is null then 'missing_attribute'
            -- 'all' is the whole-experiment row of every breakdown
            when attribute = 'all' then 'reserved_attribute'
            when _attribute_rank > 1 then 'duplicate_attribute'
        end as _quarantine_reason
    from ranked
)

select * from final
