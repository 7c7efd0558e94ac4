with base as (
    select * from {{ ref('base_experiments__unit_attributes') }}
),

final as (
    select
        {{ dbt.concat(['experiment_id', "':'", 'unit_id', "':'", 'attribute']) }} as experiment_unit_attribute_id,
        experiment_id,
        unit_id,
        attribute,
        attribute_value,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
