-- One row per membership that changed in this run: 'added' (entered a segment),
-- 'removed' (left it) or 'updated' (same member, new rule_version or holdout). This is
-- what the ESP sync consumes. Built after the snapshot in the same `dbt build`, so the
-- run's changes are the periods opened or closed at this build's stamp
-- (segwise.membership_stamp(), later than every earlier stamp).
with history as (
    select * from {{ ref('segment_membership_history') }}
),

opened as (
    select customer_id, segment_name, rule_version, is_holdout
    from history
    where valid_from >= {{ segwise.membership_stamp() }}
),

closed as (
    select customer_id, segment_name
    from history
    where valid_to >= {{ segwise.membership_stamp() }}
),

final as (
    select
        {{ dbt.concat(['coalesce(opened.segment_name, closed.segment_name)', "'|'", 'coalesce(opened.customer_id, closed.customer_id)']) }} as change_id,
        coalesce(opened.customer_id, closed.customer_id) as customer_id,
        coalesce(opened.segment_name, closed.segment_name) as segment_name,
        case
            when closed.customer_id is null then 'added'
            when opened.customer_id is null then 'removed'
            else 'updated'
        end as change_type,
        opened.rule_version,
        opened.is_holdout,
        {{ segwise.run_started_ts() }} as changed_at
    from opened
    full outer join closed
        on opened.customer_id = closed.customer_id
        and opened.segment_name = closed.segment_name
)

select * from final
