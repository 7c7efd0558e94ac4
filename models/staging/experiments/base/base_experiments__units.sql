-- One row per imported experiment unit: cleaned, with the reason it is rejected (or null).
with source as (
    select * from {{ source('experiments', 'experiment_units') }}
),

catalog as (
    select * from {{ ref('stg_experiments__catalog') }}
),

cleaned as (
    select
        {{ segwise.clean_code('experiment_id') }} as experiment_id,
        {{ segwise.clean_id('unit_id') }} as unit_id,
        {{ segwise.clean_text('arm') }} as arm,
        visited,
        converted,
        {{ segwise.range_checked('revenue', 0, var('max_amount'), segwise.type_double()) }},
        imported_at as _loaded_at,
        {{ segwise.raw_payload(['experiment_id', 'unit_id', 'arm', 'visited', 'converted', 'revenue']) }} as _raw_payload
    from source
),

ranked as (
    select
        cleaned.*,
        catalog.experiment_id is not null as _is_catalogued,
        row_number() over (
            partition by cleaned.experiment_id, cleaned.unit_id
            order by cleaned._loaded_at desc, cleaned.arm
        ) as _unit_rank
    from cleaned
    left join catalog on cleaned.experiment_id = catalog.experiment_id
),

final as (
    select
        experiment_id,
        unit_id,
        arm,
        visited,
        converted,
        revenue,
        _loaded_at,
        _raw_payload,
        case
            when experiment_id is null then 'missing_experiment_id'
            when not _is_catalogued then 'unknown_experiment'
            when unit_id is null then 'missing_unit_id'
            when arm is null then 'missing_arm'
            when converted is null then 'missing_outcome'
            when _is_revenue_invalid then 'invalid_amount'
            when _unit_rank > 1 then 'duplicate_unit'
        end as _quarantine_reason
    from ranked
)

select * from final
