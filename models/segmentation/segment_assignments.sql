-- One row per customer in at least one segment: the primary segment by priority
-- (1 = first), among memberships outside their segment's holdout, plus all memberships.
with memberships as (
    select * from {{ ref('segment_memberships') }}
),

ranked as (
    select
        customer_id,
        segment_name,
        priority,
        row_number() over (
            partition by customer_id
            order by case when is_holdout then 1 else 0 end, priority, segment_name
        ) as assignment_rank
    from memberships
),

all_memberships as (
    select
        customer_id,
        count(*) as segments_count,
        sum(case when is_holdout then 1 else 0 end) as holdout_count
    from memberships
    group by customer_id
),

final as (
    select
        ranked.customer_id,
        ranked.segment_name as primary_segment,
        ranked.priority as primary_priority,
        all_memberships.segments_count,
        all_memberships.holdout_count,
        all_memberships.holdout_count = all_memberships.segments_count as is_holdout_only
    from ranked
    inner join all_memberships
        on ranked.customer_id = all_memberships.customer_id
    where ranked.assignment_rank = 1
)

select * from final
