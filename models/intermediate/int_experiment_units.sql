-- One row per experiment unit and breakdown it counts in (dimension 'all' for the whole
-- experiment, then one per unit attribute), with its arm and outcomes as numbers. The
-- measurement marts aggregate it per arm. Imported experiments (segwise experiments
-- import) are randomised by whoever ran them.
with units as (
    select * from {{ ref('stg_experiments__units') }}
),

catalog as (
    select * from {{ ref('stg_experiments__catalog') }}
),

attributes as (
    select * from {{ ref('stg_experiments__unit_attributes') }}
),

imported as (
    select
        units.experiment_id,
        cast('imported' as {{ dbt.type_string() }}) as experiment_kind,
        units.unit_id,
        units.arm,
        units.arm = catalog.control_arm as is_control,
        cast(case when units.converted then 1 else 0 end as {{ segwise.type_double() }}) as converted,
        cast(case when units.visited then 1 when not units.visited then 0 end as {{ segwise.type_double() }}) as visited,
        cast(null as {{ segwise.type_double() }}) as orders,
        cast(units.revenue as {{ segwise.type_double() }}) as revenue
    from units
    inner join catalog on units.experiment_id = catalog.experiment_id
),

breakdowns as (
    select
        imported.*,
        cast('all' as {{ dbt.type_string() }}) as dimension,
        cast('all' as {{ dbt.type_string() }}) as dimension_value
    from imported
    union all
    select
        imported.*,
        attributes.attribute as dimension,
        coalesce(attributes.attribute_value, '(missing)') as dimension_value
    from imported
    inner join attributes
        on imported.experiment_id = attributes.experiment_id
        and imported.unit_id = attributes.unit_id
),

final as (
    select
        {{ dbt.concat(['experiment_id', "':'", 'dimension', "':'", 'unit_id']) }} as experiment_unit_dimension_id,
        experiment_id,
        experiment_kind,
        dimension,
        dimension_value,
        unit_id,
        arm,
        is_control,
        converted,
        visited,
        orders,
        revenue
    from breakdowns
)

select * from final
