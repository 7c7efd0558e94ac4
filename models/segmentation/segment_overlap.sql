-- One row per ordered pair of segments sharing at least one member: the shared count and
-- the share of the first segment's members that are also in the second.
with memberships as (
    select * from {{ ref('segment_memberships') }}
),

sizes as (
    select segment_name, count(*) as members from memberships group by segment_name
),

pairs as (
    select
        a.segment_name as segment_a,
        b.segment_name as segment_b,
        count(*) as shared_members
    from memberships as a
    inner join memberships as b
        on a.customer_id = b.customer_id
        and a.segment_name <> b.segment_name
    group by a.segment_name, b.segment_name
),

final as (
    select
        {{ dbt.concat(['pairs.segment_a', "'|'", 'pairs.segment_b']) }} as pair_id,
        pairs.segment_a,
        pairs.segment_b,
        pairs.shared_members,
        cast(pairs.shared_members as {{ dbt.type_float() }}) / sizes.members as share_of_a
    from pairs
    inner join sizes
        on pairs.segment_a = sizes.segment_name
)

select * from final
