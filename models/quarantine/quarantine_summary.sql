-- One row per source table and rejection reason, with the number of rows rejected.
with quarantine as (
    select * from {{ ref('quarantine_rows') }}
),

final as (
    select
        {{ dbt.concat(['source_table', "':'", 'reason']) }} as source_reason_id,
        source_table,
        reason,
        count(*) as rows_quarantined
    from quarantine
    group by source_table, reason
)

select * from final
