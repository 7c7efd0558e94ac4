-- One row per segment definition: current size, holdout size and whether it is large
-- enough to activate (size >= min_size).
with catalog as (
    select * from {{ ref('segment_catalog') }}
),

memberships as (
    select * from {{ ref('segment_memberships') }}
),

counts as (
    select
        segment_name,
        count(*) as members,
        sum(case when is_holdout then 1 else 0 end) as holdout_members
    from memberships
    group by segment_name
),

final as (
    select
        catalog.segment_name,
        catalog.priority,
        catalog.min_size,
        coalesce(counts.members, 0) as members,
        coalesce(counts.holdout_members, 0) as holdout_members,
        coalesce(counts.members, 0) >= catalog.min_size as is_activatable,
        catalog.rule_version,
        {{ segwise.run_started_ts() }} as computed_at
    from catalog
    left join counts
        on catalog.segment_name = counts.segment_name
)

select * from final
