with base as (
    select * from {{ ref('base_experiments__units') }}
),

final as (
    select
        {{ dbt.concat(['experiment_id', "':'", 'unit_id']) }} as experiment_unit_id,
        experiment_id,
        unit_id,
        arm,
        visited,
        converted,
        coalesce(revenue, 0) as revenue,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
