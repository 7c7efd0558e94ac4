-- One row per period a customer was in a segment (from the SCD2 snapshot).
with snapshot as (
    select * from {{ ref('segment_membership_snapshot') }}
),

final as (
    select
        dbt_scd_id as membership_period_id,
        customer_id,
        segment_name,
        cast(dbt_valid_from as timestamp) as valid_from,
        cast(dbt_valid_to as timestamp) as valid_to,
        dbt_valid_to is null as is_current,
        rule_version,
        is_holdout,
        variant
    from snapshot
)

select * from final
