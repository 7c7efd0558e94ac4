{{ config(materialized=segwise.incremental_materialization(), unique_key='size_id', on_schema_change='append_new_columns') }}
-- One row per segment per run: size, the change since the previous run, and an alert
-- flag when it moved more than var('segment_size_alert_pct') percent.
with sizes as (
    select * from {{ ref('segment_sizes') }}
),

{% if is_incremental() %}
previous_runs as (
    select
        segment_name,
        members,
        row_number() over (partition by segment_name order by computed_at desc) as _rank
    from {{ this }}
    where computed_at < {{ segwise.run_started_ts() }}
),

previous as (
    select segment_name, members from previous_runs where _rank = 1
),
{% else %}
previous as (
    select
        cast(null as {{ dbt.type_string() }}) as segment_name,
        cast(null as {{ dbt.type_bigint() }}) as members
    where 1 = 0
),
{% endif %}

final as (
    select
        {{ dbt.concat(['sizes.segment_name', "'@'", 'cast(sizes.computed_at as ' ~ dbt.type_string() ~ ')']) }} as size_id,
        sizes.segment_name,
        sizes.computed_at,
        sizes.members,
        previous.members as previous_members,
        sizes.members - previous.members as size_delta,
        case
            when previous.members > 0
                then 100.0 * (sizes.members - previous.members) / previous.members
        end as size_delta_pct,
        coalesce(
            (previous.members = 0 and sizes.members > 0)
            or abs(100.0 * (sizes.members - previous.members) / nullif(previous.members, 0))
                > {{ var('segment_size_alert_pct') }},
            false
        ) as is_alert,
        sizes.rule_version
    from sizes
    left join previous
        on sizes.segment_name = previous.segment_name
)

select * from final
