{{ config(materialized=segwise.incremental_materialization(), unique_key='history_id') }}
-- One row per build, source table and rejection reason: the quarantine counts of every
-- build kept (quarantine_summary holds only the latest), so the report can show the trend.
with summary as (
    select * from {{ ref('quarantine_summary') }}
),

final as (
    select
        {{ dbt.concat(['source_reason_id', "'@'", 'cast(' ~ segwise.run_started_ts() ~ ' as ' ~ dbt.type_string() ~ ')']) }} as history_id,
        source_table,
        reason,
        rows_quarantined,
        {{ segwise.run_started_ts() }} as computed_at
    from summary
)

select * from final
