-- One row per anonymous_id ever seen logged in: the customer it belongs to (the latest
-- customer that logged in on it, as of the as-of time).
with events as (
    select * from {{ ref('stg_web__events') }}
),

logged_in as (
    select
        anonymous_id,
        customer_id,
        row_number() over (
            partition by anonymous_id
            order by occurred_at desc, event_id desc
        ) as _rank
    from events
    where anonymous_id is not null
        and customer_id is not null
        and occurred_at < {{ segwise.as_of_ts() }}
),

final as (
    select
        anonymous_id,
        customer_id
    from logged_in
    where _rank = 1
)

select * from final
